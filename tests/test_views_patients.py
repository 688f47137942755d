"""Staff pages for patients: who may open what, search, registration, editing, scores."""

import re
from datetime import date

import pytest
from django.urls import reverse
from django.utils.html import escape

from patients.models import Consent, MedicalFlag, Patient, ScarSite
from plans import scales
from plans.models import Assessment
from tests.factories import (
    TODAY,
    ConsentFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    frozen,
    staff_world,
)

pytestmark = pytest.mark.django_db

ROLES = ("front_desk", "clinician", "manager")
UNKNOWN = 999_999


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


# --- who may open what -----------------------------------------------------------------------

# (url name, kwargs from the world, method, POST data, expected for front desk/clinician/manager);
# an outsider (logged in, no role) always gets 403.
ACCESS = [
    ("patient_list", lambda w: {}, "get", None, (200, 200, 200)),
    ("patient_create", lambda w: {}, "get", None, (200, 200, 200)),
    ("patient_detail", lambda w: {"pk": w.patient.pk}, "get", None, (200, 200, 200)),
    ("patient_edit", lambda w: {"pk": w.patient.pk}, "get", None, (200, 200, 200)),
    ("patient_archive", lambda w: {"pk": w.patient.pk}, "post", {}, (403, 403, 302)),
    ("flag_add", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    (
        "flag_edit",
        lambda w: {"pk": w.patient.pk, "flag_pk": w.flag.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    ("acne_add", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    ("acne_quick", lambda w: {"pk": w.patient.pk}, "post", {"state": "active"}, (403, 302, 302)),
    ("consent_add", lambda w: {"pk": w.patient.pk}, "get", None, (200, 200, 200)),
    (
        "consent_edit",
        lambda w: {"pk": w.patient.pk, "consent_pk": w.consent.pk},
        "get",
        None,
        (200, 200, 200),
    ),
    (
        "consent_file",
        lambda w: {"pk": w.patient.pk, "consent_pk": w.consent.pk},
        "get",
        None,
        (200, 200, 200),
    ),
    ("scar_site_add", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    (
        "scar_site_edit",
        lambda w: {"pk": w.patient.pk, "site_pk": w.site.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    (
        "assessment_add",
        lambda w: {"pk": w.patient.pk, "site_pk": w.site.pk},
        "get",
        None,
        (403, 200, 200),
    ),
]
ACCESS_IDS = [row[0] for row in ACCESS]


def _call(client, name, kwargs, method, data):
    response = getattr(client, method)(reverse(name, kwargs=kwargs), data or {})
    if response.streaming:
        # Reading a file response to the end closes the file the way a server would;
        # calling close() again would fire request_finished and drop the test's connection.
        b"".join(response.streaming_content)
    return response


@pytest.fixture
def staff(front_desk, clinician, manager, outsider):
    return {
        "front_desk": front_desk,
        "clinician": clinician,
        "manager": manager,
        "outsider": outsider,
    }


@pytest.mark.parametrize(("name", "kwargs", "method", "data", "allowed"), ACCESS, ids=ACCESS_IDS)
def test_each_role_gets_exactly_the_patient_pages_its_permissions_allow(
    client, staff, name, kwargs, method, data, allowed
):
    world = staff_world(staff["clinician"])
    got = {}
    for role in ("outsider", *ROLES):  # refused roles first: an allowed POST changes things
        client.force_login(staff[role])
        got[role] = _call(client, name, kwargs(world), method, data).status_code
    assert got == {"outsider": 403} | dict(zip(ROLES, allowed, strict=True))


def test_front_desk_posting_archive_breakout_or_flag_changes_nothing(front_desk_client, clinician):
    world = staff_world(clinician)
    acne_before = world.patient.acne_records.count()
    front_desk_client.post(reverse("patient_archive", args=[world.patient.pk]))
    front_desk_client.post(reverse("acne_quick", args=[world.patient.pk]), {"state": "active"})
    front_desk_client.post(
        reverse("flag_add", args=[world.patient.pk]), {"kind": "pregnancy", "detail": "x"}
    )
    world.patient.refresh_from_db()
    assert world.patient.archived_at is None
    assert world.patient.acne_records.count() == acne_before
    assert list(world.patient.flags.values_list("kind", flat=True)) == ["isotretinoin"]


# --- not found -------------------------------------------------------------------------------


class _Unknown:
    """Stands in for the world: every record it hands out has an id that does not exist."""

    pk = UNKNOWN

    def __getattr__(self, name):
        return self


WITH_IDS = [row[:4] for row in ACCESS if row[1](_Unknown())]


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "data"), WITH_IDS, ids=[r[0] for r in WITH_IDS]
)
def test_unknown_ids_are_404_on_every_patient_page(manager_client, name, kwargs, method, data):
    assert _call(manager_client, name, kwargs(_Unknown()), method, data).status_code == 404


@pytest.fixture
def two_patients(clinician):
    """Patient A (the world) and patient B with a flag, a consent and a scar site of their own."""
    world = staff_world(clinician)
    other = PatientFactory(first_name="Osric", last_name="Penhallow")
    return world, {
        "flag_pk": MedicalFlagFactory(patient=other, kind=MedicalFlag.Kind.PREGNANCY).pk,
        "consent_pk": ConsentFactory(patient=other, kind=Consent.Kind.TREATMENT).pk,
        "site_pk": ScarSiteFactory(patient=other, body_site="chin", scar_types=["keloid"]).pk,
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("flag_edit", "flag_pk"),
        ("consent_edit", "consent_pk"),
        ("consent_file", "consent_pk"),
        ("scar_site_edit", "site_pk"),
        ("assessment_add", "site_pk"),
    ],
)
def test_another_patients_record_under_this_patients_url_is_404(
    manager_client, two_patients, name, key
):
    world, others = two_patients
    url = reverse(name, kwargs={"pk": world.patient.pk, key: others[key]})
    assert manager_client.get(url).status_code == 404
    assert manager_client.post(url, {}).status_code == 404


def test_posting_to_another_patients_flag_through_this_patient_changes_nothing(
    clinician_client, two_patients
):
    world, others = two_patients
    url = reverse("flag_edit", kwargs={"pk": world.patient.pk, "flag_pk": others["flag_pk"]})
    response = clinician_client.post(url, {"kind": "isotretinoin", "detail": "moved"})
    assert response.status_code == 404
    flag = MedicalFlag.objects.get(pk=others["flag_pk"])
    assert (flag.patient.last_name, flag.kind, flag.detail) == ("Penhallow", "pregnancy", "")


# --- front desk sees no clinical content -----------------------------------------------------

CLINICAL_ON_OVERVIEW = [
    "Medical flags",
    "Isotretinoin course",
    "Oral isotretinoin 20 mg",  # the flag's detail
    "Doxycycline 100 mg daily",  # medications
    "Fitzpatrick",
    "Acne activity",
    'class="score"',
    "Goodman &amp; Baron qualitative grade",
    "Unresolved adverse events",
    "Erythema",
    "Record scores",
    "Patient report (PDF)",
]


@pytest.fixture
def overview(clinician):
    world = staff_world(clinician)
    world.patient.fitzpatrick_type = Patient.Fitzpatrick.IV
    world.patient.save()
    return reverse("patient_detail", args=[world.patient.pk])


def test_front_desk_overview_shows_no_flags_scores_medications_or_notes(
    front_desk_client, overview
):
    html = front_desk_client.get(overview).content.decode()
    assert "Wren Ashdown" in html
    assert "Needling course" in html  # the plan list is not clinical
    assert [text for text in CLINICAL_ON_OVERVIEW if text in html] == []
    assert "Clinical notes" not in html
    assert "Tolerated well" not in html


def test_clinician_overview_shows_the_clinical_record(clinician_client, overview):
    html = clinician_client.get(overview).content.decode()
    assert [text for text in CLINICAL_ON_OVERVIEW if text not in html] == []


def test_front_desk_edit_form_has_demographics_only(client, front_desk, clinician):
    world = staff_world(clinician)
    url = reverse("patient_edit", args=[world.patient.pk])
    client.force_login(front_desk)
    front_desk_fields = set(browser_form(client.get(url)))
    assert {"record_number", "first_name", "phone", "email"} <= front_desk_fields
    assert front_desk_fields & {"fitzpatrick_type", "medications", "other_allergies"} == set()
    client.force_login(clinician)
    clinician_fields = set(browser_form(client.get(url)))
    assert {"fitzpatrick_type", "medications", "other_allergies"} <= clinician_fields


def test_front_desk_saving_demographics_keeps_the_clinical_fields(front_desk_client, clinician):
    world = staff_world(clinician)
    url = reverse("patient_edit", args=[world.patient.pk])
    data = browser_form(front_desk_client.get(url)) | {"phone": "0161 496 0000"}
    response = front_desk_client.post(url, data, follow=True)
    assert "Patient details saved." in response.content.decode()
    world.patient.refresh_from_db()
    assert world.patient.phone == "0161 496 0000"
    assert world.patient.medications == "Doxycycline 100 mg daily"


# --- search ----------------------------------------------------------------------------------


def _names_listed(response):
    return re.findall(r'<a href="/patients/\d+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def registry():
    PatientFactory(
        first_name="Alinta",
        last_name="Quillfeather",
        record_number="CX-000101",
        date_of_birth=date(1990, 4, 12),
    )
    PatientFactory(
        first_name="Bexley",
        last_name="Quillon",
        record_number="CX-000102",
        date_of_birth=date(1985, 7, 1),
    )
    PatientFactory(
        first_name="Corvin",
        last_name="Stroud",
        record_number="CX-000103",
        date_of_birth=date(1972, 11, 30),
    )
    PatientFactory(
        first_name="Dagny",
        last_name="Quill",
        record_number="CX-000104",
        date_of_birth=date(1990, 4, 12),
    ).archive()


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("quill", ["Quillfeather, Alinta", "Quillon, Bexley"]),
        ("Ali Quill", ["Quillfeather, Alinta"]),
        ("illfeather", []),
        ("cx-000103", ["Stroud, Corvin"]),
        ("CX-00010", []),
        ("1990-04-12", ["Quillfeather, Alinta"]),
        ("12/04/1990", ["Quillfeather, Alinta"]),
        ("31/02/1990", []),
    ],
)
def test_search_finds_by_name_prefix_record_number_or_birth_date(
    front_desk_client, registry, query, names
):
    response = front_desk_client.get(reverse("patient_list"), {"q": query})
    assert response.status_code == 200
    assert _names_listed(response) == names


def test_archived_patients_appear_only_when_asked_for(front_desk_client, registry):
    url = reverse("patient_list")
    assert "Quill, Dagny" not in _names_listed(front_desk_client.get(url))
    assert "Quill, Dagny" not in _names_listed(front_desk_client.get(url, {"q": "quill"}))
    response = front_desk_client.get(url, {"q": "quill", "archived": "on"})
    assert _names_listed(response) == ["Quill, Dagny", "Quillfeather, Alinta", "Quillon, Bexley"]
    assert "archived</span>" in response.content.decode()


@pytest.fixture
def thirty_patients():
    for n in range(30):
        PatientFactory(first_name="Ada", last_name=f"Zed{n:02d}")


def test_patient_list_shows_25_per_page_and_page_two_has_the_rest(
    front_desk_client, thirty_patients
):
    url = reverse("patient_list")
    first = front_desk_client.get(url, {"q": "zed"})
    html = first.content.decode()
    assert "30 patients" in html
    assert "Page 1 of 2" in html
    assert _names_listed(first) == [f"Zed{n:02d}, Ada" for n in range(25)]
    assert 'href="?q=zed&amp;page=2"' in html  # the next page keeps the search
    second = front_desk_client.get(url, {"q": "zed", "page": "2"})
    assert _names_listed(second) == [f"Zed{n:02d}, Ada" for n in range(25, 30)]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "999", "1.5"])
def test_a_nonsense_page_number_shows_a_real_page(front_desk_client, thirty_patients, page):
    response = front_desk_client.get(reverse("patient_list"), {"page": page})
    assert response.status_code == 200
    assert len(_names_listed(response)) in (25, 5)


# --- registration ----------------------------------------------------------------------------

NEW_PATIENT = {
    "record_number": "cx-000778",
    "first_name": "Zebedee",
    "last_name": "Marlow",
    "date_of_birth": "1991-03-04",
    "sex": "F",
    "phone": "0700 900 123",
}


@pytest.mark.parametrize("typed", ["cx-000777", " CX-000777 ", "Cx-000777"])
def test_registering_a_taken_record_number_names_it_and_keeps_what_was_typed(
    front_desk_client, typed
):
    PatientFactory(record_number="CX-000777", first_name="Existing", last_name="Person")
    url = reverse("patient_create")
    data = browser_form(front_desk_client.get(url)) | NEW_PATIENT | {"record_number": typed}
    response = front_desk_client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Record number CX-000777 is already used by another patient." in html
    kept = browser_form(response)
    assert {k: kept[k] for k in NEW_PATIENT} == NEW_PATIENT | {"record_number": typed}
    assert Patient.objects.count() == 1


def test_registering_a_patient_shows_a_message_and_the_next_steps(front_desk_client):
    url = reverse("patient_create")
    data = browser_form(front_desk_client.get(url)) | NEW_PATIENT
    response = front_desk_client.post(url, data)
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response.url == f"{url}?registered={patient.pk}"
    assert patient.record_number == "CX-000778"
    page = front_desk_client.get(response.url).content.decode()
    assert "Registered Zebedee Marlow (CX-000778)." in page
    assert reverse("patient_detail", args=[patient.pk]) in page


def test_a_birth_date_in_the_future_is_refused(front_desk_client):
    url = reverse("patient_create")
    data = browser_form(front_desk_client.get(url)) | NEW_PATIENT | {"date_of_birth": "2026-01-06"}
    response = front_desk_client.post(url, data)
    assert "Date of birth cannot be in the future." in response.content.decode()
    assert not Patient.objects.exists()


# --- scores (assessments) --------------------------------------------------------------------


@pytest.fixture
def site():
    patient = PatientFactory(first_name="Tamsin", last_name="Greaves")
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["hypertrophic"])


def _assess_url(site):
    return reverse("assessment_add", kwargs={"pk": site.patient_id, "site_pk": site.pk})


@pytest.mark.parametrize("code", list(scales.INSTRUMENTS))
def test_the_score_form_lists_every_item_of_the_instrument_with_its_range(
    clinician_client, site, code
):
    instrument = scales.get(code)
    response = clinician_client.get(_assess_url(site), {"instrument": code})
    html = response.content.decode()
    assert escape(instrument.name) in html
    for item in instrument.items:
        assert escape(f"{item.label} ({item.minimum}-{item.maximum})") in html
    assert {f"items-{item.code}" for item in instrument.items} <= set(browser_form(response))


VSS_TYPED = {
    "items-vascularity": "1",
    "items-pigmentation": "1",
    "items-pliability": "4",
    "items-height": "2",
    "notes": "Baseline before laser",
}


def test_an_out_of_range_item_is_named_with_its_range_and_the_rest_is_kept(clinician_client, site):
    url = _assess_url(site)
    data = browser_form(clinician_client.get(url, {"instrument": "vss"}))
    response = clinician_client.post(url, data | VSS_TYPED | {"items-vascularity": "7"})
    assert response.status_code == 200
    assert "Vascularity must be a whole number from 0 to 3." in response.content.decode()
    kept = browser_form(response)
    assert {k: kept[k] for k in VSS_TYPED} == VSS_TYPED | {"items-vascularity": "7"}
    assert not Assessment.objects.exists()


def test_saving_scores_reports_the_computed_total(clinician_client, site):
    url = _assess_url(site)
    data = browser_form(clinician_client.get(url, {"instrument": "vss"})) | VSS_TYPED
    response = clinician_client.post(url, data)
    assert response.status_code == 302
    assert response.url == reverse("patient_detail", args=[site.patient_id])
    page = clinician_client.get(response.url).content.decode()
    assert "Vancouver Scar Scale for Left cheek: total 8 (range 0-13)." in page
    saved = Assessment.objects.get()
    assert (saved.total, saved.assessed_on, saved.session) == (8, TODAY, None)


def test_save_and_build_a_plan_goes_on_to_the_plan_builder(clinician_client, site):
    url = _assess_url(site)
    page = clinician_client.get(url, {"instrument": "vss"})
    assert 'name="then" value="plan"' in page.content.decode()
    response = clinician_client.post(url, browser_form(page) | VSS_TYPED | {"then": "plan"})
    assert response.status_code == 302
    assert response.url == reverse("plan_create", args=[site.patient_id])
    assert Assessment.objects.get().total == 8


def test_scores_dated_in_the_future_are_refused(clinician_client, site):
    url = _assess_url(site)
    data = browser_form(clinician_client.get(url, {"instrument": "vss"})) | VSS_TYPED
    response = clinician_client.post(url, data | {"assessed_on": "2026-01-06"})
    assert "Assessed on cannot be in the future." in response.content.decode()
    assert not Assessment.objects.exists()


def test_scoring_another_patients_site_is_404_and_saves_nothing(clinician_client, site):
    stranger = ScarSiteFactory(body_site="chin")
    url = reverse("assessment_add", kwargs={"pk": site.patient_id, "site_pk": stranger.pk})
    response = clinician_client.post(url, {"instrument": "vss"} | VSS_TYPED)
    assert response.status_code == 404
    assert not Assessment.objects.exists()
    assert ScarSite.objects.count() == 2


# --- registration that a busy desk cannot get wrong (issue 10, point 9) ----------------------


def test_sex_starts_blank_and_must_be_chosen(front_desk_client):
    url = reverse("patient_create")
    blank = browser_form(front_desk_client.get(url))
    assert blank["sex"] == ""
    response = front_desk_client.post(url, blank | NEW_PATIENT | {"sex": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["sex"] == ["This field is required."]
    assert not Patient.objects.exists()


def test_the_same_name_and_birth_date_is_shown_before_a_second_record_is_made(front_desk_client):
    existing = PatientFactory(
        first_name="Jordan", last_name="Okoye", date_of_birth=date(1994, 3, 17)
    )
    url = reverse("patient_create")
    typed = NEW_PATIENT | {
        "first_name": "jordan",
        "last_name": "OKOYE",
        "date_of_birth": "1994-03-17",
    }
    response = front_desk_client.post(url, browser_form(front_desk_client.get(url)) | typed)
    assert response.status_code == 200
    html = response.content.decode()
    assert "may already be registered" in html
    assert reverse("patient_detail", args=[existing.pk]) in html
    assert Patient.objects.count() == 1
    again = front_desk_client.post(url, browser_form(response) | {"register_anyway": "on"})
    assert again.status_code == 302
    assert Patient.objects.count() == 2


def test_the_next_record_number_is_offered(front_desk_client):
    PatientFactory(record_number="CX-000041")
    PatientFactory(record_number="CX-000107")
    form = browser_form(front_desk_client.get(reverse("patient_create")))
    assert form["record_number"] == "CX-000108"


def test_a_new_consent_starts_signed_today_and_can_carry_an_expiry(clinician_client):
    patient = PatientFactory(consented=False)
    url = reverse("consent_add", args=[patient.pk])
    with frozen():
        form = browser_form(clinician_client.get(url))
        assert form["signed_on"] == "2026-01-05"
        response = clinician_client.post(
            url, form | {"kind": "treatment", "expires_on": "2027-01-04"}
        )
    assert response.status_code == 302
    consent = patient.consents.get()
    assert (consent.signed_on, consent.expires_on) == (date(2026, 1, 5), date(2027, 1, 4))
