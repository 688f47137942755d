"""Registering a patient (issue 10, point 9): the clinic's own record numbers, an explicit
skin type, and the next steps once the record exists."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from clinic.roles import MANAGER
from patients import forms as patient_forms
from patients.forms import next_record_number
from patients.models import Patient, RecordNumberFormat
from tests.factories import TODAY, PatientFactory, browser_form, frozen

pytestmark = pytest.mark.django_db

NEW_PATIENT = {
    "first_name": "Zebedee",
    "last_name": "Marlow",
    "date_of_birth": "1991-03-04",
    "sex": "F",
    "phone": "0700 900 123",
}


@pytest.fixture(autouse=True)
def pinned_clock():
    with frozen():
        yield


def register(client, **typed):
    url = reverse("patient_create")
    return client.post(url, browser_form(client.get(url)) | NEW_PATIENT | typed)


# --- the next record number -------------------------------------------------------------------


def test_without_a_format_the_first_number_is_cx_and_six_digits():
    assert next_record_number() == "CX-000001"


def test_the_next_number_follows_the_managers_format():
    RecordNumberFormat.objects.create(prefix="SK/", digits=4)
    for number in ("SK/0009", "SK/0012", "CX-000500", "SKX0100"):
        PatientFactory(record_number=number)
    assert next_record_number() == "SK/0013"


def test_the_highest_number_counts_not_the_last_registered_or_the_longest_text():
    for number in ("CX-000107", "CX-0000099", "CX-000041", "CX-12AB", "CX-"):
        PatientFactory(record_number=number)
    assert next_record_number() == "CX-000108"


def test_a_number_past_the_padding_keeps_counting():
    RecordNumberFormat.objects.create(prefix="CX-", digits=3)
    PatientFactory(record_number="CX-999")
    assert next_record_number() == "CX-1000"


def test_the_highest_number_is_found_by_the_database_not_by_reading_every_record(
    django_assert_num_queries,
):
    for n in range(1, 30):
        PatientFactory(record_number=f"CX-{n:06d}")
    with django_assert_num_queries(2):  # the format, then one aggregate over the numbers
        assert next_record_number() == "CX-000030"


def test_the_form_offers_the_formats_next_number_and_staff_may_type_another(front_desk_client):
    RecordNumberFormat.objects.create(prefix="DERM-", digits=5)
    PatientFactory(record_number="DERM-00041")
    offered = browser_form(front_desk_client.get(reverse("patient_create")))
    assert offered["record_number"] == "DERM-00042"
    response = register(front_desk_client, record_number="walk-in-7")
    assert response.status_code == 302
    assert Patient.objects.filter(record_number="WALK-IN-7").exists()


def test_two_desks_racing_for_one_number_the_second_is_told_and_nothing_breaks(
    front_desk_client, monkeypatch
):
    url = reverse("patient_create")
    form = browser_form(front_desk_client.get(url))
    assert form["record_number"] == "CX-000001"
    # The other desk's registration lands between this form's check and its save.
    PatientFactory(record_number="CX-000001", first_name="Other", last_name="Desk")
    monkeypatch.setattr(patient_forms, "record_number_taken", lambda number, pk: False)
    response = front_desk_client.post(url, form | NEW_PATIENT)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Record number CX-000001 was taken by another registration just now" in html
    assert "CX-000002" in html
    assert browser_form(response)["record_number"] == "CX-000002"
    assert Patient.objects.count() == 1
    monkeypatch.undo()
    again = front_desk_client.post(url, browser_form(response))
    assert again.status_code == 302
    assert Patient.objects.filter(record_number="CX-000002", last_name="Marlow").exists()


# --- the record number format in the admin ----------------------------------------------------


@pytest.fixture
def admin_client_of_manager(client, manager):
    assert manager.groups.filter(name=MANAGER).exists()
    manager.refresh_from_db()
    assert manager.is_staff
    client.force_login(manager)
    return client


def test_the_manager_sets_the_format_once_then_changes_it_with_history(
    admin_client_of_manager, manager
):
    client = admin_client_of_manager
    add = reverse("admin:patients_recordnumberformat_add")
    response = client.post(add, {"prefix": "sk/", "digits": "4"})
    assert response.status_code == 302
    row = RecordNumberFormat.objects.get()
    assert (row.prefix, row.digits) == ("SK/", 4)
    assert client.get(add).status_code == 403  # one row only
    change = reverse("admin:patients_recordnumberformat_change", args=[row.pk])
    page = client.get(change).content.decode()
    assert "SK/0001" in page  # the next number this format gives
    response = client.post(change, {"prefix": "CX-", "digits": "6"})
    assert response.status_code == 302
    assert [(h.prefix, h.digits, h.history_user) for h in row.history.order_by("history_id")] == [
        ("SK/", 4, manager),
        ("CX-", 6, manager),
    ]
    assert next_record_number() == "CX-000001"
    delete = reverse("admin:patients_recordnumberformat_delete", args=[row.pk])
    assert client.get(delete).status_code == 403


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ({"prefix": "CX-", "digits": "2"}, "from 3 to 10 digits"),
        ({"prefix": "CX-", "digits": "11"}, "from 3 to 10 digits"),
        ({"prefix": "CX 1", "digits": "6"}, "Use letters, digits"),
    ],
)
def test_a_format_outside_the_rules_is_refused_with_the_rule(
    admin_client_of_manager, typed, message
):
    response = admin_client_of_manager.post(reverse("admin:patients_recordnumberformat_add"), typed)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RecordNumberFormat.objects.exists()


def test_front_desk_and_clinicians_cannot_change_the_format(front_desk, clinician, client):
    row = RecordNumberFormat.objects.create(prefix="CX-", digits=6)
    for user in (front_desk, clinician):
        client.force_login(user)
        url = reverse("admin:patients_recordnumberformat_change", args=[row.pk])
        assert client.post(url, {"prefix": "HACK-", "digits": "3"}).status_code == 302  # login
    row.refresh_from_db()
    assert row.prefix == "CX-"
    assert (
        not Group.objects.get(name="Clinician")
        .permissions.filter(codename="change_recordnumberformat")
        .exists()
    )


# --- Fitzpatrick skin type --------------------------------------------------------------------


def test_a_clinician_must_choose_a_skin_type_or_not_yet_assessed(clinician_client):
    url = reverse("patient_create")
    blank = browser_form(clinician_client.get(url))
    assert blank["fitzpatrick_type"] == ""
    response = clinician_client.post(url, blank | NEW_PATIENT)
    assert response.status_code == 200
    errors = response.context["form"].errors["fitzpatrick_type"]
    assert errors == [
        "Choose the Fitzpatrick skin type: 'Not yet assessed', or I, II, III, IV, V or VI."
    ]
    assert not Patient.objects.exists()


def test_the_skin_type_choices_are_not_yet_assessed_and_i_to_vi(clinician_client):
    form = clinician_client.get(reverse("patient_create")).context["form"]
    labels = [label for _, label in form.fields["fitzpatrick_type"].choices]
    assert labels == ["Choose…", "Not yet assessed", *Patient.Fitzpatrick.labels]


@pytest.mark.parametrize(("chosen", "stored"), [("unassessed", None), ("1", 1), ("6", 6)])
def test_the_chosen_skin_type_is_stored_and_not_yet_assessed_is_empty(
    clinician_client, chosen, stored
):
    response = register(clinician_client, fitzpatrick_type=chosen)
    assert response.status_code == 302
    assert Patient.objects.get().fitzpatrick_type == stored


def test_a_skin_type_outside_the_list_is_refused(clinician_client):
    response = register(clinician_client, fitzpatrick_type="7")
    assert response.status_code == 200
    assert "Not yet assessed" in response.context["form"].errors["fitzpatrick_type"][0]
    assert not Patient.objects.exists()


def test_editing_a_patient_shows_their_skin_type_and_keeps_not_yet_assessed(clinician_client):
    unassessed = PatientFactory(fitzpatrick_type=None)
    url = reverse("patient_edit", args=[unassessed.pk])
    form = browser_form(clinician_client.get(url))
    assert form["fitzpatrick_type"] == "unassessed"
    assert clinician_client.post(url, form | {"phone": "0700 1"}).status_code == 302
    unassessed.refresh_from_db()
    assert (unassessed.phone, unassessed.fitzpatrick_type) == ("0700 1", None)
    typed = PatientFactory(fitzpatrick_type=4)
    form = browser_form(clinician_client.get(reverse("patient_edit", args=[typed.pk])))
    assert form["fitzpatrick_type"] == "4"


def test_front_desk_registers_without_the_skin_type_which_stays_not_assessed(front_desk_client):
    form = browser_form(front_desk_client.get(reverse("patient_create")))
    assert "fitzpatrick_type" not in form
    assert register(front_desk_client).status_code == 302
    assert Patient.objects.get().fitzpatrick_type is None


def test_front_desk_edits_keep_the_skin_type_a_clinician_chose(front_desk_client):
    patient = PatientFactory(fitzpatrick_type=5)
    url = reverse("patient_edit", args=[patient.pk])
    response = front_desk_client.post(url, browser_form(front_desk_client.get(url)))
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.fitzpatrick_type == 5


# --- next steps -------------------------------------------------------------------------------


def _links(html):
    return {
        name: reverse(name, args=[Patient.objects.get().pk]) in html
        for name in ("flag_add", "consent_add", "scar_site_add", "patient_detail")
    }


def test_after_registering_a_clinician_is_offered_flags_consent_and_scar_sites(clinician_client):
    response = register(clinician_client, fitzpatrick_type="3")
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response.url == f"{reverse('patient_create')}?registered={patient.pk}"
    page = clinician_client.get(response.url)
    html = page.content.decode()
    assert "Registered Zebedee Marlow (CX-000001)." in html
    assert "Next steps" in html
    assert _links(html) == dict.fromkeys(
        ("flag_add", "consent_add", "scar_site_add", "patient_detail"), True
    )
    assert "<script" not in html.split("</main>")[0]


def test_after_registering_front_desk_is_offered_only_the_consent(front_desk_client):
    response = register(front_desk_client)
    html = front_desk_client.get(response.url).content.decode()
    assert "Next steps" in html
    assert _links(html) == {
        "flag_add": False,
        "consent_add": True,
        "scar_site_add": False,
        "patient_detail": True,
    }
    assert "a clinician records" in html  # what the desk cannot do is said, not linked


def test_the_next_steps_of_an_unknown_patient_are_404(front_desk_client):
    url = reverse("patient_create")
    assert front_desk_client.get(url, {"registered": "999999"}).status_code == 404
    assert front_desk_client.get(url, {"registered": "nonsense"}).status_code == 404


def test_an_outsider_gets_no_next_steps(outsider_client):
    patient = PatientFactory()
    response = outsider_client.get(reverse("patient_create"), {"registered": patient.pk})
    assert response.status_code == 403


# --- the consent and first scar site recorded with the patient (issue 14: fewer steps) -------


def test_a_clinician_registers_with_the_signed_consent_and_a_first_scar_site(
    clinician_client, clinician
):
    from patients.models import Consent, ScarType

    rolling = ScarType.objects.get(code="rolling")
    response = register(
        clinician_client,
        fitzpatrick_type="3",
        **{
            "first-treatment_consent": "on",
            "first-body_site": "left_cheek",
            "first-scar_types": [str(rolling.pk)],
        },
    )
    patient = Patient.objects.get()
    consent = patient.consents.get()
    assert (consent.kind, consent.withdrawn_on) == (Consent.Kind.TREATMENT, None)
    assert consent.signed_on == TODAY  # the frozen clinic date
    assert consent.history.get().history_user == clinician
    site = patient.scar_sites.get()
    assert site.body_site == "left_cheek"
    assert list(site.scar_types.all()) == [rolling]
    assert site.history.first().history_user == clinician
    page = clinician_client.get(response.url).content.decode()
    assert (
        "Registered Zebedee Marlow (CX-000001), with treatment consent signed today and "
        "scar site Left cheek." in page
    )
    # The baseline of the new site is one tap away; the consent is no longer a next step.
    assert reverse("assessment_add", args=[patient.pk, site.pk]) in page
    assert "Record baseline scores: Left cheek" in page
    assert reverse("consent_add", args=[patient.pk]) not in page


def test_front_desk_may_record_the_consent_but_is_not_offered_a_scar_site(front_desk_client):
    form = front_desk_client.get(reverse("patient_create")).content.decode()
    assert 'name="first-treatment_consent"' in form
    assert 'name="first-body_site"' not in form
    # A scar site sent anyway is not a field of theirs: nothing clinical is recorded.
    register(front_desk_client, **{"first-body_site": "chin", "first-treatment_consent": "on"})
    patient = Patient.objects.get()
    assert patient.consents.count() == 1
    assert not patient.scar_sites.exists()


def test_a_half_given_scar_site_is_refused_by_field_and_nothing_is_saved(clinician_client):
    response = register(clinician_client, fitzpatrick_type="3", **{"first-body_site": "chin"})
    assert response.status_code == 200
    assert not Patient.objects.exists()
    errors = response.context["first"].errors
    assert "scar types at the first scar site" in errors["scar_types"][0]
    # What was typed is kept.
    html = response.content.decode()
    assert 'value="Zebedee"' in html
    assert '<option value="chin" selected>' in html


def test_scar_types_without_a_site_and_an_unknown_site_are_refused(clinician_client):
    from patients.models import ScarType

    response = register(
        clinician_client,
        fitzpatrick_type="3",
        **{"first-scar_types": [str(ScarType.objects.get(code="keloid").pk)]},
    )
    assert "Choose the body site" in response.context["first"].errors["body_site"][0]
    response = register(clinician_client, fitzpatrick_type="3", **{"first-body_site": "moon"})
    assert "moon is not one of the available choices" in str(
        response.context["first"].errors["body_site"]
    )
    assert not Patient.objects.exists()


def test_registering_without_the_optional_parts_records_only_the_patient(clinician_client):
    register(clinician_client, fitzpatrick_type="3")
    patient = Patient.objects.get()
    assert not patient.consents.exists()
    assert not patient.scar_sites.exists()
