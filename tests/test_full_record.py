"""A patient's full record (subject access request): one zip with the FHIR bundle, the staff
progress report, every photo and consent scan with its date, a CSV per kind of record and a
manifest of exactly what the zip holds; manager only; each export in the access log."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from patients.models import Consent, Patient, RecordAccess
from plans import exports, fhir
from plans.full_record import MANIFEST, write_full_record
from plans.models import SessionPhoto
from tests.factories import ConsentFactory, PatientFactory, frozen, staff_world, tiny_png
from tests.test_fhir_export import (
    STORIES,
    assert_references_resolve,
    history,
    resources,
    seed_demo,
    valid_r4,
)

pytestmark = pytest.mark.django_db

UNKNOWN = 999_999
TABLES = {
    "patient.csv",
    "medical_flags.csv",
    "acne_activity.csv",
    "scar_sites.csv",
    "consents.csv",
    "plans.csv",
    "plan_courses.csv",
    "sessions.csv",
    "session_treatments.csv",
    "session_parameters.csv",
    "assessments.csv",
    "assessment_items.csv",
    "adverse_events.csv",
    "photos.csv",
    "safety_overrides.csv",
    "amendments.csv",
    "reports_sent.csv",
    "access_log.csv",
}


@pytest.fixture(autouse=True)
def pinned(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def fast_pdf(monkeypatch):
    """A stand-in for WeasyPrint's layout where the PDF's content is not what is tested."""
    monkeypatch.setattr("plans.report_views.render_pdf", lambda html: b"%PDF-1.7 stand-in")


class Unpacked:
    """The archive: its folder, members by path inside it, and the manifest's rows."""

    def __init__(self, data):
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        names = self.zip.namelist()
        self.folder = names[0].split("/")[0]
        assert all(name.startswith(self.folder + "/") for name in names)
        self.paths = [name[len(self.folder) + 1 :] for name in names]
        self.manifest = self.csv(MANIFEST)

    def read(self, path):
        return self.zip.read(f"{self.folder}/{path}")

    def csv(self, path):
        return list(csv.DictReader(io.StringIO(self.read(path).decode("utf-8-sig"))))

    def check_manifest(self):
        """The manifest lists every file but itself, each with its true size and checksum."""
        assert len(self.paths) == len(set(self.paths))
        assert sorted(row["file"] for row in self.manifest) == sorted(
            p for p in self.paths if p != MANIFEST
        )
        for row in self.manifest:
            data = self.read(row["file"])
            assert int(row["bytes"]) == len(data), row["file"]
            assert row["sha256"] == hashlib.sha256(data).hexdigest(), row["file"]


def download(client, patient):
    response = client.get(reverse("patient_full_record", args=[patient.pk]))
    assert response.status_code == 200
    return response, Unpacked(b"".join(response.streaming_content))


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("outsider", 403), ("front_desk", 403), ("clinician", 403), ("manager", 200)],
)
def test_the_full_record_is_for_managers_only(client, request, clinician, fast_pdf, role, status):
    world = staff_world(clinician)
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("patient_full_record", args=[world.patient.pk]))
    assert response.status_code == status
    logged = RecordAccess.objects.filter(what=RecordAccess.What.FULL_RECORD)
    assert logged.count() == (status == 200)


def test_an_unknown_patient_is_404(manager_client):
    response = manager_client.get(reverse("patient_full_record", args=[UNKNOWN]))
    assert response.status_code == 404
    assert not RecordAccess.objects.exists()


def test_the_export_is_recorded_with_who_and_when_and_nothing_else_is(
    manager_client, manager, clinician, fast_pdf
):
    world = staff_world(clinician)
    download(manager_client, world.patient)
    row = RecordAccess.objects.get()  # one row: the PDF and photos inside are not logged apart
    assert (row.user, row.patient, row.what) == (manager, world.patient, "full_record")
    assert row.at == timezone.now()
    assert row.get_what_display() == "Full record export (subject access)"


# --- what it holds ----------------------------------------------------------------------------


def test_the_zip_holds_exactly_what_its_manifest_lists(manager_client, manager, clinician):
    world = staff_world(clinician)
    response, archive = download(manager_client, world.patient)
    assert response["Content-Type"] == "application/zip"
    number = world.patient.record_number
    assert response["Content-Disposition"] == (
        f'attachment; filename="cicatrix-{number}-full-record-2026-01-05.zip"'
    )
    assert "no-store" in response["Cache-Control"]
    assert archive.folder == f"{number}-full-record-2026-01-05"
    archive.check_manifest()
    files = set(archive.paths)
    assert {"README.txt", "record.fhir.json", "progress-report-staff.pdf", MANIFEST} <= files
    assert {p.removeprefix("csv/") for p in files if p.startswith("csv/")} == TABLES
    # Every photo and consent scan, named by its date.
    assert f"photos/2026-01-05_Left_cheek_front_photo-{world.photo.pk}.png" in files
    assert f"consents/2026-01-02_clinical_photography_consent-{world.consent.pk}.pdf" in files
    assert archive.read(
        f"consents/2026-01-02_clinical_photography_consent-{world.consent.pk}.pdf"
    ) == (b"%PDF-1.4 signed consent")
    with world.photo.image.open("rb") as handle:
        assert archive.read(f"photos/2026-01-05_Left_cheek_front_photo-{world.photo.pk}.png") == (
            handle.read()
        )
    readme = archive.read("README.txt").decode()
    assert f"Full record of Wren Ashdown (record number {number})" in readme
    assert f"Exported on 2026-01-05 at 08:00 (GMT) by {manager}." in readme


def test_the_report_inside_is_the_staff_copy_as_a_pdf(manager_client, clinician):
    world = staff_world(clinician)
    _, archive = download(manager_client, world.patient)
    pdf = archive.read("progress-report-staff.pdf")
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Wren Ashdown" in text
    assert "Tolerated well" in text  # the session's clinical note: the staff copy


def test_the_csv_tables_hold_the_records(manager_client, clinician, fast_pdf):
    world = staff_world(clinician)
    world.patient.medications = '=HYPERLINK("http://x")'  # typed as a formula
    world.patient.save()
    _, archive = download(manager_client, world.patient)
    (patient,) = archive.csv("csv/patient.csv")
    assert patient["record number"] == world.patient.record_number
    assert patient["current medications"] == '\'=HYPERLINK("http://x")'  # inert
    sessions = archive.csv("csv/sessions.csv")
    assert sorted(int(s["id"]) for s in sessions) == sorted(
        world.patient.sessions.values_list("pk", flat=True)
    )
    done = next(s for s in sessions if s["id"] == str(world.done.pk))
    assert (done["status"], done["clinical notes"]) == (
        "Completed",
        "Tolerated well; pinpoint bleeding only.",
    )
    parameters = archive.csv("csv/session_parameters.csv")
    assert {(p["parameter"], p["value"], p["unit"]) for p in parameters} >= {
        ("Needle depth", "1.5", "mm"),
        ("Passes", "3", ""),
    }
    (score,) = archive.csv("csv/assessments.csv")
    assert (score["score"], score["total"], score["scale"]) == (
        "Goodman & Baron qualitative grade",
        "3",
        "1-4",
    )
    (event,) = archive.csv("csv/adverse_events.csv")
    assert (event["event"], event["severity"], event["resolved"]) == (
        "Erythema (redness)",
        "Mild",
        "",
    )
    (photo,) = archive.csv("csv/photos.csv")
    assert (
        photo["file in this archive"]
        == f"photos/2026-01-05_Left_cheek_front_photo-{world.photo.pk}.png"
    )
    consents = {c["consent"]: c for c in archive.csv("csv/consents.csv")}
    assert consents["Clinical photography"]["scan in this archive"].startswith(
        "consents/2026-01-02_"
    )
    assert consents["Treatment"]["scan in this archive"] == ""
    (flag,) = archive.csv("csv/medical_flags.csv")
    assert flag["detail"] == "Oral isotretinoin 20 mg"


def test_the_bundle_inside_validates_and_matches_the_download(manager_client, clinician, fast_pdf):
    world = staff_world(clinician)
    _, archive = download(manager_client, world.patient)
    bundle = json.loads(archive.read("record.fhir.json"))
    valid_r4(bundle)
    assert_references_resolve(bundle)
    assert resources(bundle, "Patient")[0]["identifier"][0]["value"] == world.patient.record_number


def test_an_archived_patient_and_a_withdrawn_photo_are_still_in_the_full_record(
    manager_client, manager, clinician, fast_pdf
):
    world = staff_world(clinician)
    SessionPhoto.objects.filter(pk=world.photo.pk).update(withdrawn_at=timezone.now())
    world.patient.archive()
    _, archive = download(manager_client, world.patient)
    archive.check_manifest()
    (photo,) = archive.csv("csv/photos.csv")
    assert photo["withdrawn"] == "2026-01-05 08:00"
    assert photo["file in this archive"] in archive.paths
    (patient,) = archive.csv("csv/patient.csv")
    assert patient["archived"] == "2026-01-05 08:00"


def test_a_photo_missing_from_storage_is_named_in_its_table_and_nothing_breaks(
    manager_client, clinician, fast_pdf
):
    world = staff_world(clinician)
    world.photo.image.storage.delete(world.photo.image.name)
    _, archive = download(manager_client, world.patient)
    archive.check_manifest()
    assert not [p for p in archive.paths if p.startswith("photos/")]
    (photo,) = archive.csv("csv/photos.csv")
    assert photo["file in this archive"] == "missing from storage"


def test_every_demo_story_patient_gets_a_consistent_full_record(settings, manager, tmp_path):
    seed_demo(settings)
    patients = Patient.objects.filter(record_number__in=STORIES)
    for record in exports.load_records(patients, full=True):
        bundle = fhir.build_bundle(record, system="urn:x:y", generated_at=timezone.now())
        target = tmp_path / f"{record.patient.pk}.zip"
        with target.open("wb") as handle:
            write_full_record(
                record,
                handle,
                bundle=bundle,
                report_pdf=b"%PDF-1.7 stand-in",
                exported_by=manager,
                exported_at=timezone.now(),
            )
        archive = Unpacked(target.read_bytes())
        archive.check_manifest()
        photos = [p for p in archive.paths if p.startswith("photos/")]
        assert len(photos) == len(record.photos)
        for photo in record.photos:
            assert any(p.startswith(f"photos/{photo.taken_on:%Y-%m-%d}_") for p in photos)
        scans = [c for c in record.consents if c.scanned_file]
        assert len([p for p in archive.paths if p.startswith("consents/")]) == len(scans)
        assert len(archive.csv("csv/sessions.csv")) == len(record.sessions)
        assert len(archive.csv("csv/assessments.csv")) == len(record.assessments)


# --- cost ---------------------------------------------------------------------------------------


def test_the_full_record_runs_as_many_queries_for_ten_plans_as_for_one(
    manager_client, clinician, fast_pdf, django_assert_max_num_queries
):
    small, *_ = history(clinician, plans=1)
    ConsentFactory(
        patient=small,
        kind=Consent.Kind.CLINICAL_PHOTOGRAPHY,
        signed_on=date(2025, 1, 2),
        scanned_file=SimpleUploadedFile("scan.png", tiny_png()),
    )
    url = reverse("patient_full_record", args=[small.pk])
    manager_client.get(url)  # warm-up: session, permissions
    with CaptureQueriesContext(connection) as queries:
        assert manager_client.get(url).status_code == 200
    budget = len(queries)
    Patient.objects.filter(pk=small.pk).update(record_number="CX-8")
    large, *_ = history(clinician, plans=10)
    for n in range(10):
        ConsentFactory(
            patient=large,
            kind=Consent.Kind.CLINICAL_PHOTOGRAPHY,
            signed_on=date(2025, 1, 2 + n),
            scanned_file=SimpleUploadedFile("scan.png", tiny_png()),
        )
    with django_assert_max_num_queries(budget):
        response = manager_client.get(reverse("patient_full_record", args=[large.pk]))
    archive = Unpacked(b"".join(response.streaming_content))
    assert len(archive.csv("csv/sessions.csv")) == 30
    assert len([p for p in archive.paths if p.startswith("consents/")]) == 10


def test_the_access_log_inside_says_who_opened_the_record_and_when_but_not_from_where(
    manager_client, clinician, fast_pdf
):
    world = staff_world(clinician)
    colleague = Client()  # the role fixtures share one client
    colleague.force_login(clinician)
    url = reverse("patient_report", args=[world.patient.pk])
    assert colleague.get(url, REMOTE_ADDR="192.0.2.15").status_code == 200
    _, archive = download(manager_client, world.patient)
    (opened,) = archive.csv("csv/access_log.csv")
    assert (opened["at"], opened["staff member"], opened["opened"]) == (
        "2026-01-05 08:00",
        str(clinician),
        "Progress report (screen or print)",
    )
    assert b"192.0.2.15" not in archive.read("csv/access_log.csv")


def test_another_patient_record_is_untouched(manager_client, clinician, fast_pdf):
    world = staff_world(clinician)
    other = PatientFactory(first_name="Other", last_name="Person")
    _, archive = download(manager_client, world.patient)
    everything = b"".join(archive.read(p) for p in archive.paths)
    assert other.record_number.encode() not in everything
    assert b"Other Person" not in everything
