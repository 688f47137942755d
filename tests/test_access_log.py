"""The access log: who opened which patient's record, report, PDF, CSV, photo or consent scan,
when and from where; append-only; and archives made in bulk keep their history (issue 11.9)."""

import os

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Consent, Patient, RecordAccess, ScarSite
from tests.factories import (
    TODAY,
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    at,
    frozen,
    staff_world,
)

pytestmark = pytest.mark.django_db

UNKNOWN = 999_999
CLINIC_PC = "192.0.2.15"
Access = RecordAccess.What


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def world(clinician):
    return staff_world(clinician)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root_user", password="x-Δ-2026-root")


def only_access():
    """The one row of the log (the test fails if there is none or several)."""
    rows = list(RecordAccess.objects.all())
    assert len(rows) == 1, rows
    return rows[0]


# --- what is recorded ------------------------------------------------------------------------


def test_a_clinician_opening_a_progress_report_is_recorded_with_who_what_when_and_where(
    clinician_client, clinician, world
):
    url = reverse("patient_report", args=[world.patient.pk])
    response = clinician_client.get(url, {"copy": "patient"}, REMOTE_ADDR=CLINIC_PC)
    assert response.status_code == 200
    row = only_access()
    assert row.user == clinician
    assert row.patient == world.patient
    assert row.what == Access.REPORT
    assert row.object_id is None
    assert row.ip == CLINIC_PC
    assert row.path == f"{url}?copy=patient"
    assert row.at == at(TODAY, 8)  # the frozen clock


# (url name, kwargs from the world, what is recorded, which object id)
DOWNLOADS = [
    ("patient_detail", lambda w: [w.patient.pk], Access.RECORD, lambda w: None),
    ("patient_report_pdf", lambda w: [w.patient.pk], Access.REPORT_PDF, lambda w: None),
    ("plan_report", lambda w: [w.patient.pk, w.plan.pk], Access.REPORT, lambda w: w.plan.pk),
    (
        "plan_report_pdf",
        lambda w: [w.patient.pk, w.plan.pk],
        Access.REPORT_PDF,
        lambda w: w.plan.pk,
    ),
    ("plan_sessions_csv", lambda w: [w.patient.pk, w.plan.pk], Access.CSV, lambda w: w.plan.pk),
    ("patient_fhir", lambda w: [w.patient.pk], Access.FHIR, lambda w: None),
    ("patient_full_record", lambda w: [w.patient.pk], Access.FULL_RECORD, lambda w: None),
    ("photo", lambda w: [w.photo.pk], Access.PHOTO, lambda w: w.photo.pk),
    (
        "consent_file",
        lambda w: [w.patient.pk, w.consent.pk],
        Access.CONSENT,
        lambda w: w.consent.pk,
    ),
]


@pytest.mark.parametrize(
    ("name", "args", "what", "object_id"), DOWNLOADS, ids=[d[0] for d in DOWNLOADS]
)
def test_each_page_and_file_about_a_patient_is_recorded(
    manager_client, manager, world, name, args, what, object_id
):
    response = manager_client.get(reverse(name, args=args(world)), REMOTE_ADDR=CLINIC_PC)
    assert response.status_code == 200
    row = only_access()
    assert (row.user, row.patient, row.what, row.object_id, row.ip) == (
        manager,
        world.patient,
        what,
        object_id(world),
        CLINIC_PC,
    )


def test_front_desk_opening_a_patient_overview_is_recorded(front_desk_client, front_desk, world):
    assert (
        front_desk_client.get(reverse("patient_detail", args=[world.patient.pk])).status_code == 200
    )
    row = only_access()
    assert (row.user, row.patient, row.what) == (front_desk, world.patient, Access.RECORD)


def test_a_manager_opening_a_patient_in_the_admin_is_recorded(manager_client, manager, world):
    url = reverse("admin:patients_patient_change", args=[world.patient.pk])
    assert manager_client.get(url).status_code == 200
    row = only_access()
    assert (row.user, row.patient, row.what) == (manager, world.patient, Access.ADMIN)


def test_a_manager_reading_a_patients_history_in_the_admin_is_recorded(
    manager_client, manager, world
):
    """The history pages show every past value of the record: a read like the change page."""
    url = reverse("admin:patients_patient_history", args=[world.patient.pk])
    assert manager_client.get(url).status_code == 200
    row = only_access()
    assert (row.user, row.patient, row.what) == (manager, world.patient, Access.ADMIN)

    version = world.patient.history.earliest()
    url = reverse(
        "admin:patients_patient_simple_history", args=[world.patient.pk, version.history_id]
    )
    assert manager_client.get(url).status_code == 200
    assert RecordAccess.objects.count() == 2
    row = RecordAccess.objects.latest("id")
    assert (row.user, row.patient, row.what, row.path) == (
        manager,
        world.patient,
        Access.ADMIN,
        url,
    )


def test_each_request_costs_one_insert_into_the_log(clinician_client, world):
    with CaptureQueriesContext(connection) as queries:
        clinician_client.get(reverse("patient_detail", args=[world.patient.pk]))
    inserts = [
        q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "patients_recordaccess"')
    ]
    assert len(inserts) == 1


def logged_in(user):
    """A client of its own (the role fixtures share one client, so one login at a time)."""
    client = Client()
    client.force_login(user)
    return client


def test_forbidden_and_unknown_addresses_record_nothing(front_desk, clinician, outsider, world):
    front_desk_client, clinician_client = logged_in(front_desk), logged_in(clinician)
    outsider_client = logged_in(outsider)
    other = PatientFactory()
    ConsentFactory(patient=world.patient, kind=Consent.Kind.TREATMENT)  # no scanned file
    unscanned = world.patient.consents.filter(scanned_file="").first()
    refused = [
        (front_desk_client, reverse("patient_report", args=[world.patient.pk]), 403),
        (front_desk_client, reverse("patient_report_pdf", args=[world.patient.pk]), 403),
        (front_desk_client, reverse("photo", args=[world.photo.pk]), 403),
        (front_desk_client, reverse("patient_fhir", args=[world.patient.pk]), 403),
        (clinician_client, reverse("patient_full_record", args=[world.patient.pk]), 403),
        (outsider_client, reverse("patient_detail", args=[world.patient.pk]), 403),
        (outsider_client, reverse("consent_file", args=[world.patient.pk, world.consent.pk]), 403),
        (clinician_client, reverse("patient_detail", args=[UNKNOWN]), 404),
        (clinician_client, reverse("patient_report", args=[UNKNOWN]), 404),
        (clinician_client, reverse("patient_fhir", args=[UNKNOWN]), 404),
        (clinician_client, reverse("plan_report", args=[other.pk, world.plan.pk]), 404),
        (clinician_client, reverse("plan_sessions_csv", args=[other.pk, world.plan.pk]), 404),
        (clinician_client, reverse("photo", args=[UNKNOWN]), 404),
        (clinician_client, reverse("consent_file", args=[other.pk, world.consent.pk]), 404),
        (clinician_client, reverse("consent_file", args=[world.patient.pk, unscanned.pk]), 404),
    ]
    for client, url, status in refused:
        assert client.get(url).status_code == status, url
    assert not RecordAccess.objects.exists()


def test_a_photo_without_photography_consent_is_refused_and_not_recorded(clinician_client, world):
    world.consent.withdrawn_on = world.consent.signed_on
    world.consent.save()
    assert clinician_client.get(reverse("photo", args=[world.photo.pk])).status_code == 403
    assert not RecordAccess.objects.exists()


# --- where from: the proxy is trusted only when the settings say so --------------------------


def overview_ip(client, world, **headers):
    RecordAccess.objects.all()._raw_delete(RecordAccess.objects.db)  # a test reset only
    client.get(reverse("patient_detail", args=[world.patient.pk]), **headers)
    return only_access().ip


def test_a_forwarded_for_header_is_ignored_unless_a_proxy_is_trusted(clinician_client, world):
    forged = {"REMOTE_ADDR": CLINIC_PC, "HTTP_X_FORWARDED_FOR": "198.51.100.9"}
    assert overview_ip(clinician_client, world, **forged) == CLINIC_PC


def test_behind_trusted_proxies_the_address_they_saw_is_recorded(settings, clinician_client, world):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forged the first entry; our one proxy appended the address it saw.
    headers = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.9, 203.0.113.50"}
    assert overview_ip(clinician_client, world, **headers) == "203.0.113.50"
    settings.TRUSTED_PROXY_COUNT = 2
    assert overview_ip(clinician_client, world, **headers) == "198.51.100.9"


def test_a_malformed_or_short_forwarded_for_falls_back_to_the_peer(
    settings, clinician_client, world
):
    settings.TRUSTED_PROXY_COUNT = 2
    short = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.50"}
    assert overview_ip(clinician_client, world, **short) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    junk = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "<script>"}
    assert overview_ip(clinician_client, world, **junk) == "10.0.0.2"


def test_a_bad_trusted_proxy_count_stops_the_server_naming_it():
    from tests.test_settings import _manage

    result = _manage("check", DEBUG="1", TRUSTED_PROXY_COUNT="-1")
    assert result.returncode == 1
    assert "TRUSTED_PROXY_COUNT=-1 must be at least 0" in result.stderr


def test_by_default_no_proxy_is_trusted():
    from django.conf import settings

    assert "TRUSTED_PROXY_COUNT" not in os.environ
    assert settings.TRUSTED_PROXY_COUNT == 0


# --- append-only -----------------------------------------------------------------------------


@pytest.fixture
def logged(clinician_client, world):
    clinician_client.get(reverse("patient_detail", args=[world.patient.pk]))
    return only_access()


def test_a_log_row_cannot_be_changed_or_deleted_by_the_model(logged, world):
    logged.ip = "198.51.100.1"
    with pytest.raises(RecordAccess.AppendOnly):
        logged.save()
    with pytest.raises(RecordAccess.AppendOnly):
        logged.save(update_fields=["ip"])
    with pytest.raises(RecordAccess.AppendOnly):
        logged.delete()
    with pytest.raises(RecordAccess.AppendOnly):
        RecordAccess.objects.filter(pk=logged.pk).update(ip="198.51.100.1")
    with pytest.raises(RecordAccess.AppendOnly):
        RecordAccess.objects.update(ip="198.51.100.1")
    with pytest.raises(RecordAccess.AppendOnly):
        RecordAccess.objects.filter(pk=logged.pk).delete()
    with pytest.raises(RecordAccess.AppendOnly):
        RecordAccess.objects.bulk_update([logged], ["ip"])
    fresh = RecordAccess.objects.get(pk=logged.pk)
    assert fresh.ip != "198.51.100.1"


def test_a_patient_or_user_with_log_rows_cannot_be_deleted_from_under_them(logged):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        logged.patient.delete()
    with pytest.raises(ProtectedError):
        logged.user.delete()
    assert RecordAccess.objects.filter(pk=logged.pk).exists()


@pytest.mark.parametrize("who", ["manager", "superuser"])
def test_nobody_adds_changes_or_deletes_log_rows_in_the_admin(request, client, who, logged):
    client.force_login(request.getfixturevalue(who))
    change = reverse("admin:patients_recordaccess_change", args=[logged.pk])
    page = client.get(change)
    assert page.status_code == 200  # shown read-only
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"ip": "198.51.100.1", "what": "csv"}).status_code == 403
    assert client.get(reverse("admin:patients_recordaccess_add")).status_code == 403
    delete = reverse("admin:patients_recordaccess_delete", args=[logged.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:patients_recordaccess_changelist")
    assert "delete_selected" not in client.get(changelist).content.decode()
    bulk = client.post(
        changelist, {"action": "delete_selected", "_selected_action": [logged.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert RecordAccess.objects.get(pk=logged.pk).ip == logged.ip


# --- who reads the log -----------------------------------------------------------------------


def test_a_manager_lists_the_log_for_one_patient(manager, clinician, world):
    manager_client, clinician_client = logged_in(manager), logged_in(clinician)
    other = PatientFactory(first_name="Odile", last_name="Fairweather")
    clinician_client.get(reverse("patient_detail", args=[world.patient.pk]))
    clinician_client.get(reverse("patient_detail", args=[other.pk]))
    clinician_client.get(reverse("patient_report", args=[world.patient.pk]))
    url = reverse("admin:patients_recordaccess_changelist")

    everything = manager_client.get(url).context["cl"].result_list
    assert len(everything) == 3
    mine = manager_client.get(url, {"patient": world.patient.pk}).context["cl"]
    assert {row.patient for row in mine.result_list} == {world.patient}
    assert [row.what for row in mine.result_list] == [Access.REPORT, Access.RECORD]  # newest first
    found = manager_client.get(url, {"q": other.record_number}).context["cl"].result_list
    assert [row.patient for row in found] == [other]
    by_user = manager_client.get(url, {"q": "clin_user"}).context["cl"].result_list
    assert len(by_user) == 3


def test_a_patients_admin_page_links_to_its_access_log(manager_client, world):
    page = manager_client.get(reverse("admin:patients_patient_change", args=[world.patient.pk]))
    link = reverse("admin:patients_recordaccess_changelist") + f"?patient={world.patient.pk}"
    assert f'href="{link}"' in page.content.decode()


@pytest.mark.parametrize("role", ["front_desk", "clinician"])
def test_front_desk_and_clinicians_cannot_read_the_log(request, role):
    client = request.getfixturevalue(f"{role}_client")
    user = request.getfixturevalue(role)
    assert not user.has_perm("patients.view_recordaccess")
    response = client.get(reverse("admin:patients_recordaccess_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_a_manager_may_read_the_log_but_holds_no_other_permission_on_it(manager):
    assert manager.has_perm("patients.view_recordaccess")
    for action in ("add", "change", "delete"):
        assert not manager.has_perm(f"patients.{action}_recordaccess")


# --- archiving keeps its history -------------------------------------------------------------


def test_the_admin_bulk_archive_leaves_a_history_row_per_patient_with_the_manager(
    manager_client, manager
):
    patients = PatientFactory.create_batch(3)
    kept = PatientFactory()
    before = {p.pk: p.history.count() for p in patients + [kept]}
    response = manager_client.post(
        reverse("admin:patients_patient_changelist"),
        {"action": "archive_selected", "_selected_action": [p.pk for p in patients]},
        follow=True,
    )
    assert "Archived 3 record(s)." in response.content.decode()
    for patient in patients:
        latest = patient.history.first()
        assert patient.history.count() == before[patient.pk] + 1
        assert latest.history_user == manager
        assert latest.history_type == "~"
        assert latest.archived_at is not None
        assert Patient.objects.get(pk=patient.pk).archived_at == latest.archived_at
    assert kept.history.count() == before[kept.pk]


def test_archiving_again_in_bulk_leaves_no_second_row(manager_client, manager):
    patient = PatientFactory()
    url = reverse("admin:patients_patient_changelist")
    data = {"action": "archive_selected", "_selected_action": [patient.pk]}
    manager_client.post(url, data)
    rows = patient.history.count()
    response = manager_client.post(url + "?archived=all", data, follow=True)
    assert "Archived 0 record(s)." in response.content.decode()
    assert patient.history.count() == rows


def test_a_scar_site_archived_in_bulk_keeps_its_scar_types_in_the_history_row(
    manager_client, manager
):
    site = ScarSiteFactory(scar_types=["rolling", "boxcar"])
    manager_client.post(
        reverse("admin:patients_scarsite_changelist"),
        {"action": "archive_selected", "_selected_action": [site.pk]},
    )
    latest = ScarSite.objects.get(pk=site.pk).history.first()
    assert latest.history_user == manager and latest.archived_at is not None
    assert sorted(t.scartype.code for t in latest.scar_types.all()) == ["boxcar", "rolling"]


def test_the_staff_archive_page_leaves_a_history_row_with_the_manager(manager_client, manager):
    patient = PatientFactory()
    rows = patient.history.count()
    manager_client.post(reverse("patient_archive", args=[patient.pk]))
    latest = patient.history.first()
    assert patient.history.count() == rows + 1
    assert latest.history_user == manager and latest.archived_at is not None


def test_a_superuser_reads_the_log_too(superuser, client, logged):
    client.force_login(superuser)
    response = client.get(reverse("admin:patients_recordaccess_changelist"))
    assert [row.pk for row in response.context["cl"].result_list] == [logged.pk]
