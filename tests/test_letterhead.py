"""The letterhead and the catalogue's words for patients (issue 13.1, 13.2)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clinic.models import Letterhead, Location
from plans.catalogue import PATIENT_TEXT, ensure_patient_texts
from plans.models import Treatment, TreatmentParameter
from tests.factories import png_upload

pytestmark = pytest.mark.django_db


def test_a_site_without_its_own_letterhead_uses_the_clinics():
    north = Location.objects.create(name="North")
    south = Location.objects.create(name="South")
    Letterhead.objects.create(clinic_name="Skin Clinic", phone="555-0100")
    Letterhead.objects.create(location=north, clinic_name="Skin Clinic North", phone="555-0199")
    assert Letterhead.for_location(north.pk).phone == "555-0199"
    assert Letterhead.for_location(south.pk).clinic_name == "Skin Clinic"
    assert Letterhead.for_location(None).clinic_name == "Skin Clinic"


def test_without_any_letterhead_documents_get_an_empty_one():
    head = Letterhead.for_location(None)
    assert head.pk is None and head.clinic_name == "" and head.logo_data_uri() == ""


def test_only_one_clinic_wide_letterhead():
    Letterhead.objects.create(clinic_name="Skin Clinic")
    second = Letterhead(clinic_name="Another name")
    with pytest.raises(ValidationError, match="already has a letterhead without a site"):
        second.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_manager_edits_the_letterhead_in_the_admin(manager_client):
    response = manager_client.post(
        "/admin/clinic/letterhead/add/",
        {
            "clinic_name": "Skin Clinic",
            "address": "1 High Street",
            "phone": "555-0100",
            "email": "desk@clinic.example.org",
            "website": "",
            "footer": "Open Monday to Saturday",
            "logo": png_upload("logo.png"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    head = Letterhead.objects.get()
    assert head.history.get().history_user.username == "mgr_user"
    assert head.logo_data_uri().startswith("data:image/png;base64,")


def test_a_logo_that_is_not_an_image_is_refused_by_name(manager_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = manager_client.post(
        "/admin/clinic/letterhead/add/",
        {
            "clinic_name": "Skin Clinic",
            "logo": SimpleUploadedFile("logo.png", b"<svg onload=alert(1)>", "image/png"),
        },
    )
    assert response.status_code == 200
    assert "logo" in response.context["adminform"].form.errors
    assert not Letterhead.objects.exists()


def test_only_a_manager_changes_the_letterhead(clinician_client):
    response = clinician_client.get("/admin/clinic/letterhead/add/")
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_parameter_wording_for_patients():
    cycles = TreatmentParameter.objects.get(treatment__code="cryotherapy", code="cycles")
    assert cycles.for_patients(2) == "2 freeze cycles"
    agent = TreatmentParameter.objects.get(treatment__code="chemical_peel", code="agent")
    assert agent.for_patients("tca") == "trichloroacetic acid (TCA)"
    ph = TreatmentParameter.objects.get(treatment__code="chemical_peel", code="ph")
    assert ph.for_patients(0.6) == "", "a peel's pH is not for patients"


def test_wording_without_a_value_placeholder_is_refused():
    cycles = TreatmentParameter.objects.get(treatment__code="cryotherapy", code="cycles")
    cycles.patient_wording = "freeze cycles"
    with pytest.raises(ValidationError, match=r"\{value\}"):
        cycles.full_clean()


def test_every_catalogue_treatment_has_patient_words_and_advice():
    for treatment in Treatment.objects.filter(code__in=PATIENT_TEXT):
        assert treatment.patient_name and treatment.patient_description, treatment.code
        assert treatment.home_care_advice or treatment.aftercare_advice, treatment.code
        if treatment.in_office:
            assert treatment.preparation_advice and treatment.aftercare_advice, treatment.code
    everything = " ".join(" ".join(t.values()) for t in PATIENT_TEXT.values())
    assert "lemon juice" in everything and "Rana" not in everything


def test_filling_patient_texts_never_overwrites_a_managers_text():
    from django.apps import apps

    peel = Treatment.objects.get(code="chemical_peel")
    peel.aftercare_advice = "Our own aftercare."
    peel.preparation_advice = ""
    peel.save()
    ensure_patient_texts(apps, PATIENT_TEXT)
    peel.refresh_from_db()
    assert peel.aftercare_advice == "Our own aftercare."
    assert peel.preparation_advice == PATIENT_TEXT["chemical_peel"]["preparation_advice"]
