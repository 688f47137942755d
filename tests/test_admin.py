"""The Django admin as the clinic manager's back office."""

import csv
import io

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Patient
from plans.models import Session

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"clinic", "patients", "plans"}
REGISTERED = sorted(
    (model._meta.app_label, model._meta.model_name)
    for model in admin.site._registry
    if model._meta.app_label in PROJECT_APPS
)


@pytest.fixture
def demo(settings, django_user_model):
    settings.DEBUG = True
    call_command("seed_demo", patients=12, stdout=io.StringIO())
    return django_user_model.objects.get(username="manager")


@pytest.fixture
def demo_manager_client(client, demo):
    client.force_login(demo)
    return client


def test_every_project_model_is_registered():
    from django.apps import apps

    models = {
        (m._meta.app_label, m._meta.model_name)
        for app in PROJECT_APPS
        for m in apps.get_app_config(app).get_models()
        if not m._meta.model_name.startswith("historical")
        # The outcomes summary is derived, rebuilt from the records it counts: nothing to edit.
        and not m._meta.model_name.startswith("outcome")
    }
    assert models - set(REGISTERED) == set()


SENDING_LOGS = {"reportdelivery", "reportlinkopening", "reminder"}


def _send_a_link_and_a_reminder(user):
    from plans.models import Reminder, ReportLinkOpening
    from plans.sending import make_link

    patient = Patient.objects.first()
    delivery, _ = make_link(patient=patient, plan=None, user=user, link_url=str)
    ReportLinkOpening.objects.create(delivery=delivery, ip="203.0.113.9")
    session = Session.objects.first()
    Reminder.objects.create(
        session=session, scheduled_at=session.scheduled_at, to_address="demo@example.org"
    )


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_manager_opens_changelist_add_and_change_pages(demo_manager_client, app_label, model_name):
    changelist = reverse(f"admin:{app_label}_{model_name}_changelist")
    response = demo_manager_client.get(changelist)
    assert response.status_code == 200
    model = next(m for m in admin.site._registry if m._meta.model_name == model_name)
    model_admin = admin.site._registry[model]
    request = response.wsgi_request
    if model_admin.has_add_permission(request):
        add = demo_manager_client.get(reverse(f"admin:{app_label}_{model_name}_add"))
        assert add.status_code == 200
    if model_name == "recordaccess":  # the access log fills only as records are opened
        demo_manager_client.get(reverse("patient_detail", args=[Patient.objects.first().pk]))
    if model_name in SENDING_LOGS:  # these fill only as reports and reminders are sent
        _send_a_link_and_a_reminder(request.user)
    if model_name == "patientimport":  # filled only by importing a CSV file
        from patients import importing

        importing.store_upload(
            data=b"first_name,last_name\nZoe,Munoz\n", file_name="p.csv", user=request.user
        )
    first = model.objects.order_by("pk").first()
    assert first is not None, f"the demo data has no {model_name}"
    change = demo_manager_client.get(
        reverse(f"admin:{app_label}_{model_name}_change", args=[first.pk])
    )
    assert change.status_code == 200
    history = demo_manager_client.get(
        reverse(f"admin:{app_label}_{model_name}_history", args=[first.pk])
    )
    assert history.status_code == 200


@pytest.mark.parametrize("client_fixture", ["clinician_client", "front_desk_client"])
def test_clinicians_and_front_desk_get_no_admin(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    for url in (reverse("admin:index"), reverse("admin:patients_patient_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_admin_is_titled_and_links_back_to_the_staff_pages(demo_manager_client):
    page = demo_manager_client.get(reverse("admin:index")).content.decode()
    assert "Cicatrix admin" in page
    assert 'href="/"' in page


def test_nobody_but_a_superuser_may_delete_clinical_records(demo_manager_client, demo):
    patient = Patient.objects.first()
    response = demo_manager_client.get(reverse("admin:patients_patient_delete", args=[patient.pk]))
    assert response.status_code == 403
    changelist = demo_manager_client.get(reverse("admin:patients_patient_changelist"))
    assert "delete_selected" not in changelist.content.decode()


def test_archive_action_archives_and_the_default_list_hides_archived(demo_manager_client):
    patient = Patient.objects.order_by("pk").first()
    url = reverse("admin:patients_patient_changelist")
    response = demo_manager_client.post(
        url, {"action": "archive_selected", "_selected_action": [patient.pk]}, follow=True
    )
    assert "Archived 1 record(s)." in response.content.decode()
    patient.refresh_from_db()
    assert patient.archived_at is not None
    shown = demo_manager_client.get(url).context["cl"].result_list
    assert patient not in list(shown)
    archived = demo_manager_client.get(url + "?archived=yes").context["cl"].result_list
    assert list(archived) == [patient]


def test_csv_export_neutralises_formula_like_cells(demo_manager_client):
    patient = Patient.objects.order_by("pk").first()
    Patient.objects.filter(pk=patient.pk).update(
        first_name="=HYPERLINK(1)", last_name="+SUM(A1)", phone="-2+3", email="@evil.org"
    )
    response = demo_manager_client.post(
        reverse("admin:patients_patient_changelist"),
        {"action": "export_csv", "_selected_action": [patient.pk]},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["record number", "last name", "first name"]
    row = rows[1]
    assert "'+SUM(A1)" in row and "'=HYPERLINK(1)" in row and "'-2+3" in row
    assert "'@evil.org" in row
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_mark_missed_action_marks_only_scheduled_sessions(demo_manager_client):
    scheduled = Session.objects.filter(status=Session.Status.SCHEDULED).first()
    completed = Session.objects.filter(status=Session.Status.COMPLETED).first()
    response = demo_manager_client.post(
        reverse("admin:plans_session_changelist"),
        {"action": "mark_missed", "_selected_action": [scheduled.pk, completed.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Marked 1 session(s) as missed." in page
    assert "1 session(s) were not scheduled" in page
    scheduled.refresh_from_db()
    completed.refresh_from_db()
    assert scheduled.status == Session.Status.MISSED
    assert completed.status == Session.Status.COMPLETED
    assert scheduled.history.first().history_user.username == "manager"


def test_computed_scores_are_read_only_in_the_admin(demo_manager_client):
    from plans.models import Assessment

    assessment = Assessment.objects.first()
    page = demo_manager_client.get(
        reverse("admin:plans_assessment_change", args=[assessment.pk])
    ).content.decode()
    assert 'name="total"' not in page
    assert f'<div class="readonly">{assessment.total}</div>' in page


def test_a_change_in_the_admin_is_kept_with_who_made_it(demo_manager_client, demo):
    from patients.models import MedicalFlag

    flag = MedicalFlag.objects.order_by("pk").first()
    url = reverse("admin:patients_medicalflag_change", args=[flag.pk])
    form = demo_manager_client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data["detail"] = "Corrected by the manager"
    response = demo_manager_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flag.refresh_from_db()
    assert flag.detail == "Corrected by the manager"
    latest = flag.history.first()
    assert latest.history_user == demo
    assert latest.history_type == "~"
    history_page = demo_manager_client.get(
        reverse("admin:patients_medicalflag_history", args=[flag.pk])
    ).content.decode()
    assert "Corrected by the manager" in history_page or "detail" in history_page.lower()
    assert "manager" in history_page.lower()


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_changelist_query_count_does_not_grow_with_rows(demo_manager_client, app_label, model_name):
    model = next(m for m in admin.site._registry if m._meta.model_name == model_name)
    model_admin = admin.site._registry[model]
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    if any(getattr(f, "parameter_name", "") == "archived" for f in model_admin.list_filter):
        url += "?archived=all"
    counts = {}
    original = model_admin.list_per_page
    try:
        for rows in (5, 50):
            model_admin.list_per_page = rows
            demo_manager_client.get(url)  # warm caches (content types, sessions)
            with CaptureQueriesContext(connection) as queries:
                response = demo_manager_client.get(url)
            shown = len(response.context["cl"].result_list)
            assert shown == min(rows, response.context["cl"].result_count)
            counts[rows] = len(queries)
    finally:
        model_admin.list_per_page = original
    assert counts[5] == counts[50], f"{model_name}: {counts}"
