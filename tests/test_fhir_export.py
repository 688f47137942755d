"""FHIR R4 export of a patient's record: every demo story validates with fhir.resources (R4B
models) and round-trips; references resolve inside the bundle; codes and units are there;
the download is for clinicians and managers and is logged; the export_fhir command."""

import io
import json
import math
import os
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from patients import demo as patients_demo
from patients.models import Patient, RecordAccess
from plans import exports, fhir, scales, services
from plans.export_views import patient_bundle
from tests.factories import (
    TODAY,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    baseline,
    course,
    frozen,
    log_session,
    make_plan,
)

pytestmark = pytest.mark.django_db

UNKNOWN = 999_999
SYSTEM = "https://clinic.example.org/fhir/record-number"
STORIES = [patients_demo.record_number(n) for n in range(1, 15)]


# --- helpers -----------------------------------------------------------------------------------


def valid_r4(bundle):
    """The bundle as fhir.resources' R4B models read it: each entry as its own resource type,
    then written back, compared as JSON with what we sent. Returns the parsed Bundle."""
    text = json.dumps(bundle)
    model = Bundle.model_validate_json(text)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert json.loads(model.model_dump_json()) == json.loads(text)
    return model


def references(node):
    """Every Reference.reference in a resource tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def assert_references_resolve(bundle):
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(urls) == len(set(urls))
    assert all(url.startswith("urn:uuid:") for url in urls)
    dangling = set(references(bundle)) - set(urls)
    assert dangling == set()
    ids = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert len(ids) == len(set(ids))


def resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_url(bundle):
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def codings(concept, system):
    return [
        (c["code"], c.get("display")) for c in concept.get("coding", []) if c["system"] == system
    ]


def seed_demo(settings, patients=14):
    settings.DEBUG = True
    call_command("seed_demo", patients=patients, stdout=io.StringIO())


def history(clinician, *, plans=1):
    """A patient with a keloid on the upper back (a pulsed-dye laser plan per `plans`, every
    session logged with a score and the first with an adverse event), a forehead of rolling
    and boxcar scars, a salicylate allergy and isotretinoin."""
    patient = PatientFactory(first_name="Maren", last_name="Holt", sex="F", record_number="CX-7")
    keloid = ScarSiteFactory(patient=patient, body_site="upper_back", scar_types=["keloid"])
    forehead = ScarSiteFactory(
        patient=patient, body_site="forehead", scar_types=["rolling", "boxcar"]
    )
    baseline(keloid, "vss", 9, user=clinician, on=TODAY - timedelta(days=140))
    MedicalFlagFactory(patient=patient, kind="salicylate_allergy", detail="Aspirin: hives")
    MedicalFlagFactory(patient=patient, kind="isotretinoin")
    for n in range(plans):
        plan = make_plan(
            user=clinician,
            patient=patient,
            sites=[keloid],
            courses=[course("pulsed_dye_laser", 3, every=42)],
            start=TODAY - timedelta(days=130 + 2 * n),
            title=f"Laser course {n + 1}",
        )
        for number, session in enumerate(plan.sessions.order_by("scheduled_at")):
            events = [services.AdverseEventInput("erythema", "mild", keloid)] if not number else []
            log_session(session, clinician, scores=[(keloid, "vss", 8 - number)], events=events)
    return patient, keloid, forehead


@pytest.fixture
def pinned(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.FHIR_RECORD_NUMBER_SYSTEM = SYSTEM
    with frozen():
        yield


# --- every story patient of the demo ----------------------------------------------------------


def test_every_demo_story_bundle_validates_round_trips_and_its_references_resolve(settings):
    seed_demo(settings)
    patients = Patient.objects.filter(record_number__in=STORIES)
    assert patients.count() == 14
    kinds = set()
    for record in exports.load_records(patients.order_by("record_number")):
        bundle = fhir.build_bundle(
            record, system=settings.FHIR_RECORD_NUMBER_SYSTEM, generated_at=timezone.now()
        )
        model = valid_r4(bundle)
        assert model.type == "collection"
        assert_references_resolve(bundle)
        (patient,) = resources(bundle, "Patient")
        assert patient["identifier"] == [
            {
                "use": "usual",
                "system": settings.FHIR_RECORD_NUMBER_SYSTEM,
                "value": record.patient.record_number,
            }
        ]
        # One Condition per scar site, a CarePlan per plan, a Consent per consent ...
        sites = [c for c in resources(bundle, "Condition") if c["id"].startswith("site-")]
        assert len(sites) == len(record.sites)
        assert len(resources(bundle, "CarePlan")) == len(record.plans)
        assert len(resources(bundle, "Consent")) == len(record.consents)
        assert len(resources(bundle, "AdverseEvent")) == len(record.adverse_events)
        scores = [o for o in resources(bundle, "Observation") if o["id"].startswith("score-")]
        assert len(scores) == len(record.assessments)
        # ... and a Procedure per treatment done in a completed session.
        done = [
            row for s in record.sessions if s.status == "completed" for row in s.treatments.all()
        ]
        assert len(resources(bundle, "Procedure")) == len(done)
        kinds |= {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds >= {
        "Patient",
        "Practitioner",
        "Condition",
        "CarePlan",
        "Procedure",
        "Observation",
        "AdverseEvent",
        "Consent",
        "AllergyIntolerance",
        "MedicationStatement",
    }


def test_demo_bundles_carry_snomed_codes_and_ucum_units_where_they_exist(settings):
    seed_demo(settings)
    bundles = [
        fhir.build_bundle(r, system=SYSTEM, generated_at=timezone.now())
        for r in exports.load_records(Patient.objects.filter(record_number__in=STORIES))
    ]
    site_codes = {
        code
        for b in bundles
        for c in resources(b, "Condition")
        if c["id"].startswith("site-")
        for site in c["bodySite"]
        for code in codings(site, fhir.SNOMED)
    }
    assert site_codes and site_codes <= set(fhir.BODY_SITES.values())
    units = {
        (q["unit"], q.get("code"), q.get("system"))
        for b in bundles
        for o in resources(b, "Observation")
        if o["id"].startswith("parameters-")
        for part in o["component"]
        if (q := part.get("valueQuantity")) and "unit" in q
    }
    assert ("mm", "mm", fhir.UCUM) in units  # microneedling depth, laser spot size
    assert ("%", "%", fhir.UCUM) in units  # peel concentration
    assert ("s", "s", fhir.UCUM) in units  # seconds per freeze cycle
    assert all(code and system == fhir.UCUM for _, code, system in units)
    for bundle in bundles:
        for score in (o for o in resources(bundle, "Observation") if o["id"].startswith("score-")):
            instrument = next(
                i for i in scales.INSTRUMENTS.values() if i.name == score["code"]["text"]
            )
            (limits,) = score["referenceRange"]
            assert (limits["low"]["value"], limits["high"]["value"]) == (
                instrument.min_total,
                instrument.max_total,
            )
            assert instrument.min_total <= score["valueInteger"] <= instrument.max_total
        for consent in resources(bundle, "Consent"):
            assert codings(consent["category"][0], fhir.LOINC) == [("59284-0", "Consent Document")]


# --- what one record says ------------------------------------------------------------------------


def test_a_keloid_laser_course_is_coded_with_units_and_linked_together(pinned, clinician):
    patient, keloid, forehead = history(clinician)
    bundle = patient_bundle(patient)
    valid_r4(bundle)
    assert_references_resolve(bundle)
    urls = by_url(bundle)
    sites = {c["id"]: c for c in resources(bundle, "Condition")}
    scar = sites[f"site-{keloid.pk}"]
    assert codings(scar["code"], fhir.SNOMED) == [("49420001", "Keloid")]
    assert scar["bodySite"] == [{"text": "Upper back"}]  # no confirmed code: text only
    mixed = sites[f"site-{forehead.pk}"]
    assert codings(mixed["code"], fhir.SNOMED) == [("275322007", "Scar")]
    assert mixed["code"]["text"] == "Acne scars: Atrophic: boxcar, Atrophic: rolling"
    assert codings(mixed["bodySite"][0], fhir.SNOMED) == [("52795006", "Forehead structure")]
    assert [e["text"] for e in mixed["evidence"][0]["code"]] == [
        "Atrophic: boxcar",
        "Atrophic: rolling",
    ]

    (plan,) = resources(bundle, "CarePlan")
    assert plan["status"] == "completed"  # the last session logged completes the plan
    (activity,) = plan["activity"]
    assert activity["detail"]["status"] == "completed"
    assert activity["detail"]["scheduledTiming"]["repeat"] == {
        "count": 3,
        "period": 42,
        "periodUnit": "d",
    }
    procedures = [urls[ref["reference"]] for ref in activity["outcomeReference"]]
    assert [p["resourceType"] for p in procedures] == ["Procedure"] * 3
    first = procedures[0]
    assert first["code"] == {"text": "Pulsed-dye laser"}
    assert urls[first["performer"][0]["actor"]["reference"]]["resourceType"] == "Practitioner"
    assert urls[first["reasonReference"][0]["reference"]] is scar
    assert urls[first["basedOn"][0]["reference"]] is plan

    parameters = next(
        o
        for o in resources(bundle, "Observation")
        if o["id"] == first["id"].replace("procedure-", "parameters-")
    )
    assert urls[parameters["partOf"][0]["reference"]] is first
    values = {part["code"]["text"]: part for part in parameters["component"]}
    assert values["Fluence"]["valueQuantity"] == {
        "value": 7.5,
        "unit": "J/cm²",
        "system": fhir.UCUM,
        "code": "J/cm2",
    }
    assert values["Pulse duration"]["valueQuantity"]["code"] == "ms"
    assert values["Wavelength"]["valueQuantity"]["code"] == "nm"
    assert values["Cooling"] == {"code": {"text": "Cooling"}, "valueString": "dynamic"}

    scores = [o for o in resources(bundle, "Observation") if o["id"].startswith("score-")]
    assert [s["valueInteger"] for s in scores] == [9, 8, 7, 6]  # baseline, then each session
    assert scores[0]["code"] == {"text": "Vancouver Scar Scale"}
    assert scores[0]["referenceRange"][0]["text"] == "Scale 0 to 13; lower is better"
    assert {c["code"]["text"] for c in scores[1]["component"]} == {
        "Vascularity",
        "Pigmentation",
        "Pliability",
        "Height",
    }
    assert urls[scores[1]["partOf"][0]["reference"]] is first
    assert urls[scores[1]["focus"][0]["reference"]] is scar

    (event,) = resources(bundle, "AdverseEvent")
    assert codings(event["event"], fhir.SNOMED) == [("247441003", "Erythema")]
    assert event["severity"]["coding"][0]["code"] == "mild"
    assert event["outcome"]["coding"][0]["code"] == "ongoing"
    assert urls[event["suspectEntity"][0]["instance"]["reference"]] is first

    (allergy,) = resources(bundle, "AllergyIntolerance")
    assert allergy["code"]["text"] == "Salicylate / aspirin allergy: Aspirin: hives"
    medications = [
        m["medicationCodeableConcept"]["text"] for m in resources(bundle, "MedicationStatement")
    ]
    assert any(text.startswith("Isotretinoin course") for text in medications)
    (consent,) = resources(bundle, "Consent")
    assert (consent["status"], consent["scope"]["coding"][0]["code"]) == ("active", "treatment")


def test_identifiers_use_the_record_number_system_and_full_urls_are_stable(
    pinned, settings, clinician
):
    patient, *_ = history(clinician)
    first, again = patient_bundle(patient), patient_bundle(patient)
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    (resource,) = resources(first, "Patient")
    assert resource["identifier"][0] == {"use": "usual", "system": SYSTEM, "value": "CX-7"}
    settings.FHIR_RECORD_NUMBER_SYSTEM = "urn:oid:1.2.826.0.1.999"
    other = patient_bundle(patient)
    assert resources(other, "Patient")[0]["identifier"][0]["system"] == "urn:oid:1.2.826.0.1.999"
    # Another clinic's export of the same row ids does not collide with this one.
    assert not {e["fullUrl"] for e in first["entry"]} & {e["fullUrl"] for e in other["entry"]}


def test_archived_patients_and_sites_are_exported_as_inactive(pinned, clinician, manager):
    patient, keloid, _ = history(clinician)
    keloid.archive()
    patient.archive()
    bundle = patient_bundle(patient)
    valid_r4(bundle)
    assert resources(bundle, "Patient")[0]["active"] is False
    site = next(c for c in resources(bundle, "Condition") if c["id"] == f"site-{keloid.pk}")
    assert site["clinicalStatus"]["coding"][0]["code"] == "inactive"
    assert site["note"][-1]["text"] == "No longer tracked: archived on 2026-01-05."


def test_a_record_is_read_in_twelve_queries_and_the_full_record_in_eighteen(
    pinned, clinician, django_assert_num_queries
):
    patient, *_ = history(clinician, plans=2)
    with django_assert_num_queries(12):
        exports.load_records([patient])
    with django_assert_num_queries(18):
        exports.load_records([patient], full=True)


def test_building_the_bundle_reads_nothing_from_the_database(pinned, clinician):
    patient, *_ = history(clinician)
    (record,) = exports.load_records([patient])
    with CaptureQueriesContext(connection) as queries:
        fhir.build_bundle(record, system=SYSTEM, generated_at=timezone.now())
    assert len(queries) == 0


# --- the download ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("outsider", 403), ("front_desk", 403), ("clinician", 200), ("manager", 200)],
)
def test_the_fhir_download_is_for_clinicians_and_managers(
    pinned, client, request, clinician, role, status
):
    patient, *_ = history(clinician)
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("patient_fhir", args=[patient.pk]))
    assert response.status_code == status
    assert RecordAccess.objects.filter(what=RecordAccess.What.FHIR).count() == (status == 200)


def test_the_fhir_download_is_an_uncached_attachment_and_is_logged(
    pinned, clinician_client, clinician
):
    patient, *_ = history(clinician)
    response = clinician_client.get(reverse("patient_fhir", args=[patient.pk]))
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"] == (
        'attachment; filename="cicatrix-CX-7-fhir-2026-01-05.json"'
    )
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    valid_r4(json.loads(response.content))
    row = RecordAccess.objects.get()
    assert (row.user, row.patient, row.what) == (clinician, patient, RecordAccess.What.FHIR)


def test_an_unknown_patient_is_404_and_logs_nothing(pinned, manager_client):
    assert manager_client.get(reverse("patient_fhir", args=[UNKNOWN])).status_code == 404
    assert not RecordAccess.objects.exists()


def test_the_patient_page_offers_the_downloads_each_role_may_have(
    pinned, client, clinician, front_desk, manager
):
    patient, *_ = history(clinician)
    fhir_url = reverse("patient_fhir", args=[patient.pk])
    zip_url = reverse("patient_full_record", args=[patient.pk])
    seen = {}
    for user in (front_desk, clinician, manager):
        client.force_login(user)
        page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
        seen[user.username] = (fhir_url in page, zip_url in page)
    assert seen == {
        "fd_user": (False, False),
        "clin_user": (True, False),
        "mgr_user": (True, True),
    }


def test_the_download_runs_as_many_queries_for_ten_plans_as_for_one(
    pinned, clinician_client, clinician, django_assert_max_num_queries
):
    small, *_ = history(clinician, plans=1)
    url = reverse("patient_fhir", args=[small.pk])
    clinician_client.get(url)  # warm-up: session, permissions
    with CaptureQueriesContext(connection) as queries:
        assert clinician_client.get(url).status_code == 200
    budget = len(queries)
    Patient.objects.filter(pk=small.pk).update(record_number="CX-8")
    large, *_ = history(clinician, plans=10)
    assert large.sessions.filter(status="completed").count() == 30
    with django_assert_max_num_queries(budget):
        response = clinician_client.get(reverse("patient_fhir", args=[large.pk]))
    assert len(resources(json.loads(response.content), "Procedure")) == 30


# --- the command -------------------------------------------------------------------------------


def test_export_fhir_writes_one_patient_to_standard_output(pinned, clinician):
    patient, *_ = history(clinician)
    out = io.StringIO()
    call_command("export_fhir", patient="CX-7", stdout=out)
    bundle = json.loads(out.getvalue())
    valid_r4(bundle)
    assert resources(bundle, "Patient")[0]["identifier"][0]["value"] == "CX-7"


def test_export_fhir_writes_one_patient_to_a_private_file(pinned, clinician, tmp_path):
    history(clinician)
    target = tmp_path / "cx7.json"
    call_command("export_fhir", patient="CX-7", output=str(target), stderr=io.StringIO())
    valid_r4(json.loads(target.read_text()))
    assert os.stat(target).st_mode & 0o777 == 0o600


def test_export_fhir_refuses_an_unknown_record_number(pinned):
    with pytest.raises(CommandError, match="No patient has the record number 'CX-404'"):
        call_command("export_fhir", patient="CX-404")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"all": True}, "--all needs --output-dir"),
        ({"patient": "CX-7", "output_dir": "x"}, "--output-dir goes with --all"),
        ({"all": True, "output": "x"}, "--output goes with --patient"),
    ],
)
def test_export_fhir_explains_options_that_do_not_go_together(pinned, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_fhir", **options)


def test_export_fhir_all_writes_a_file_per_patient_in_batches(
    pinned, clinician, tmp_path, django_assert_max_num_queries
):
    history(clinician)
    PatientFactory(record_number="CX/009")  # not file-safe as it stands
    archived = PatientFactory(record_number="CX-010")
    archived.archive()
    for n in range(7):
        PatientFactory(record_number=f"CX-1{n:02d}")
    total = Patient.objects.count()
    folder = tmp_path / "fhir"
    batch = 3
    # A fixed number of queries per batch: the page of patients and 12 for their records.
    with django_assert_max_num_queries(math.ceil(total / batch) * 13 + 1):
        call_command(
            "export_fhir", all=True, output_dir=str(folder), batch=batch, stdout=io.StringIO()
        )
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == total
    odd = Patient.objects.get(record_number="CX/009")
    assert f"CX_009__{odd.pk}.fhir.json" in files
    for path in folder.iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o600
        bundle = json.loads(path.read_text())
        valid_r4(bundle)
        assert_references_resolve(bundle)
    inactive = json.loads((folder / "CX-010.fhir.json").read_text())
    assert resources(inactive, "Patient")[0]["active"] is False
    # The same files whatever the batch size.
    again = tmp_path / "again"
    call_command("export_fhir", all=True, output_dir=str(again), stdout=io.StringIO())
    assert sorted(p.name for p in again.iterdir()) == files
    assert (again / "CX-7.fhir.json").read_text() == (folder / "CX-7.fhir.json").read_text()
