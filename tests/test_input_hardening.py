"""Issue 11, points 4 and 6: input a probe sent that answered 500, and input that exhausted
the server. Each refusal is a message naming the field and what it allows; what was typed stays
in the form; nothing is ever a server error."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from patients.models import ScarSite
from plans import services
from plans.models import Plan, Session, SessionTreatment
from tests.factories import (
    TODAY,
    AssessmentFactory,
    MedicalFlagFactory,
    browser_form,
    course,
    frozen,
    make_plan,
    staff_world,
)

pytestmark = pytest.mark.django_db

RANGE = "Enter a date from 01/01/1900 to 31/12/2100."
NUL = "can’t contain null characters"


@pytest.fixture(autouse=True)
def clock():
    with frozen():
        yield


@pytest.fixture
def world(clinician):
    return staff_world(clinician)


def _no_500(client, user):
    """A client that answers a server error as a 500 response, as production would."""
    safe = Client(raise_request_exception=False)
    safe.force_login(user)
    return safe


def _text(response):
    return response.content.decode()


# --- dates at the ends of the calendar ---------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_today_opens_for_the_first_and_last_days_a_calendar_has(clinician_client, world, day):
    response = clinician_client.get(reverse("home"), {"day": day})
    assert response.status_code == 200
    assert "Today" in _text(response) or "today" in _text(response)


def test_outcomes_up_to_9999_is_a_field_error_naming_the_range(manager_client, world):
    response = manager_client.get(
        reverse("clinic_outcomes"), {"start": "2025-01-01", "end": "9999-12-31"}
    )
    assert response.status_code == 200
    assert RANGE in _text(response)
    assert response.context["form"]["end"].value() == "9999-12-31"


def test_moving_a_session_to_9999_is_a_field_error_and_moves_nothing(clinician_client, world):
    url = reverse("session_move", args=[world.session.pk])
    data = browser_form(clinician_client.get(url)) | {"date": "9999-12-31", "time": "10:00"}
    response = clinician_client.post(url, data)
    assert response.status_code == 200
    assert RANGE in _text(response)
    assert browser_form(response)["date"] == "9999-12-31"
    before = world.session.scheduled_at
    world.session.refresh_from_db()
    assert world.session.scheduled_at == before


def test_resuming_a_plan_from_9999_names_the_dates_allowed(clinician_client, clinician, world):
    services.plan_hold(plan=world.plan, user=clinician)
    response = clinician_client.post(
        reverse("plan_resume", args=[world.plan.pk]), {"restart_on": "9999-12-31"}, follow=True
    )
    assert response.status_code == 200
    assert "Restart on: give a date from 01/01/1900 to 31/12/2100" in _text(response)
    world.plan.refresh_from_db()
    assert world.plan.status == Plan.Status.ON_HOLD


def test_previewing_a_new_plan_from_9999_is_a_field_error(clinician_client, world):
    url = reverse("plan_create", args=[world.patient.pk])
    data = browser_form(clinician_client.get(url)) | {
        "title": "Late plan",
        "start_date": "9999-12-31",
        "courses-0-treatment": str(world.plan.courses.get().treatment_id),
        "courses-0-sessions_count": "3",
        "courses-0-interval_days": "42",
    }
    response = clinician_client.post(url, data)
    assert response.status_code == 200
    assert RANGE in _text(response)
    assert browser_form(response)["title"] == "Late plan"


def test_pinning_a_preview_slot_in_9999_keeps_the_proposed_one(clinician_client, world):
    response = clinician_client.post(
        reverse("plan_activate", args=[world.draft.pk]),
        {"slot-0": "9999-12-31T10:00"},
        follow=True,
    )
    assert response.status_code == 200
    assert "9999-12-31T10:00 is outside the dates the clinic works with." in _text(response)


# --- where to go next ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["1", "plans", "//evil.example/", "https://evil.example/"])
def test_resolving_an_adverse_event_with_a_bad_next_goes_back_to_the_list(clinician, world, target):
    client = _no_500(None, clinician)
    response = client.post(
        reverse("adverse_event_resolve", args=[world.event.pk]),
        {"resolved_on": str(TODAY), "next": target},
    )
    assert response.status_code == 302
    assert response.url == reverse("adverse_event_list")


@pytest.mark.parametrize("view", ["session_cancel", "session_missed", "session_status"])
def test_session_buttons_with_a_bad_next_stay_on_site(clinician, world, view):
    client = _no_500(None, clinician)
    data = {"next": "1", "version": world.session.version, "status": "arrived"}
    response = client.post(reverse(view, args=[world.session.pk]), data)
    assert response.status_code == 302
    assert response.url.startswith("/") and not response.url.startswith("//")
    assert response.url != "1"


# --- NUL bytes: PostgreSQL refuses them in text, so every text input refuses them first ------


def _log(client, session, **changes):
    url = reverse("session_log", args=[session.pk])
    if session.scheduled_on > TODAY:
        url += "?performed_today=1"
    data = browser_form(client.get(url), form_id="session-log")
    row = session.treatments.get()
    data |= {
        f"t{row.pk}-device": "Dermapen 4",
        f"t{row.pk}-needle_depth": "1.5",
        f"t{row.pk}-passes": "3",
        "notes": "Tolerated well.",
    }
    return client.post(url, data | changes)


def test_a_nul_byte_in_session_notes_is_refused_by_name_and_kept(clinician_client, world):
    response = _log(clinician_client, world.session, notes="Tolerated\x00 well.")
    assert response.status_code == 200
    assert f"Notes {NUL}" in _text(response)
    kept = browser_form(response, form_id="session-log")
    assert kept[f"t{world.session.treatments.get().pk}-device"] == "Dermapen 4"
    world.session.refresh_from_db()
    assert world.session.status == Session.Status.SCHEDULED


def test_a_nul_byte_in_a_text_parameter_is_refused_by_name(clinician_client, world):
    row = world.session.treatments.get()
    response = _log(clinician_client, world.session, **{f"t{row.pk}-device": "Derma\x00pen"})
    assert response.status_code == 200
    assert f"Device {NUL}" in _text(response)
    world.session.refresh_from_db()
    assert world.session.status == Session.Status.SCHEDULED


def test_a_nul_byte_in_amended_notes_is_refused_by_name(clinician_client, world):
    url = reverse("session_amend", args=[world.done.pk])
    data = browser_form(clinician_client.get(url), form_id="session-amend")
    data |= {"notes": "Bled\x00 a little", "reason": "Notes were incomplete."}
    response = clinician_client.post(url, data)
    assert response.status_code == 200
    assert f"Notes {NUL}" in _text(response)
    world.done.refresh_from_db()
    assert world.done.notes == "Tolerated well; pinpoint bleeding only."


def test_a_nul_byte_in_an_override_reason_is_refused_by_name(clinician, clinician_client):
    plan = make_plan(
        user=clinician, courses=[course("microneedling", 1)], activate=False, start=TODAY
    )
    MedicalFlagFactory(patient=plan.patient, kind="isotretinoin")
    response = clinician_client.post(
        reverse("plan_activate", args=[plan.pk]),
        {"override-rule:isotretinoin": "Dermatologist\x00 agreed"},
        follow=True,
    )
    assert response.status_code == 200
    assert f"Override reason {NUL}" in _text(response)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.sessions.filter(overrides__isnull=False).exists()


def test_a_nul_byte_in_an_admin_json_field_is_refused_by_name(manager_client, world):
    row = world.plan.courses.get()
    url = reverse("admin:plans_course_change", args=[row.pk])
    data = browser_form(manager_client.get(url), form_id="course_form")
    data["default_parameters"] = '{"device": "Derma\\u0000pen"}'
    response = manager_client.post(url, data)
    assert response.status_code == 200
    assert NUL in _text(response)


# --- ids past 64 bits and ids that do not exist ------------------------------------------------


def test_a_20_digit_scar_type_id_is_a_field_error(clinician, world):
    client = _no_500(None, clinician)
    url = reverse("scar_site_add", args=[world.patient.pk])
    data = browser_form(client.get(url)) | {
        "body_site": "chin",
        "scar_types": "12345678901234567890",
        "description": "Typed by hand",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Select a valid choice. 12345678901234567890 is not one of the available" in _text(
        response
    )
    assert browser_form(response)["description"] == "Typed by hand"


@pytest.mark.parametrize("value", ["12345678901234567890", "999999999", "-5"])
def test_an_admin_foreign_key_to_nothing_is_a_field_error(manager, world, value):
    client = _no_500(None, manager)
    url = reverse("admin:plans_course_change", args=[world.plan.courses.get().pk])
    data = browser_form(client.get(url), form_id="course_form") | {"plan": value}
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Select a valid choice" in _text(response)


# --- admin JSON fields: an object of the right shape, or a clear message ----------------------


@pytest.mark.parametrize("value", ["[]", "[1, 2]", '"text"', "42", "null"])
def test_planned_values_that_are_not_an_object_are_refused(manager, world, value):
    client = _no_500(None, manager)
    row = world.plan.courses.get()
    url = reverse("admin:plans_course_change", args=[row.pk])
    data = browser_form(client.get(url), form_id="course_form") | {"default_parameters": value}
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Default parameters must be a JSON object" in _text(response)
    row.refresh_from_db()
    assert isinstance(row.default_parameters, dict)


@pytest.mark.parametrize("value", ["[]", "null", '"text"'])
def test_session_parameters_that_are_not_an_object_are_refused(manager, world, value):
    client = _no_500(None, manager)
    row = world.done.treatments.get()
    url = reverse("admin:plans_sessiontreatment_change", args=[row.pk])
    data = browser_form(client.get(url), form_id="sessiontreatment_form") | {"parameters": value}
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Parameters must be a JSON object" in _text(response)
    assert isinstance(SessionTreatment.objects.get(pk=row.pk).parameters, dict)


@pytest.mark.parametrize("value", ["[1, 2]", "null", "7", "[" * 5000 + "]" * 5000])
def test_assessment_items_that_are_not_an_object_are_refused(manager, world, value):
    client = _no_500(None, manager)
    score = AssessmentFactory(scar_site=world.site)
    url = reverse("admin:plans_assessment_change", args=[score.pk])
    data = browser_form(client.get(url), form_id="assessment_form") | {"items": value}
    response = client.post(url, data)
    assert response.status_code == 200
    text = _text(response)
    # null is an empty required field; too deep does not parse; the rest is not an object.
    refusals = ("Items must be a JSON object", "This field is required.", "Enter a valid JSON")
    assert any(m in text for m in refusals)


def test_two_inline_scar_sites_on_one_body_site_are_a_form_error(manager, world):
    client = _no_500(None, manager)
    url = reverse("admin:patients_patient_change", args=[world.patient.pk])
    data = browser_form(client.get(url), form_id="patient_form")
    prefix = next(k for k in data if k.endswith("-TOTAL_FORMS") and "scar" in k).split("-")[0]
    n = int(data[f"{prefix}-TOTAL_FORMS"])
    for i in (n, n + 1):
        data |= {
            f"{prefix}-{i}-body_site": "forehead",
            f"{prefix}-{i}-scar_types": str(world.site.scar_types.get().pk),
            f"{prefix}-{i}-first_recorded_on": "2026-01-02",
            f"{prefix}-{i}-description": f"Row {i}",
        }
    data[f"{prefix}-TOTAL_FORMS"] = str(n + 2)
    response = client.post(url, data)
    assert response.status_code == 200
    assert "already has a scar site there" in _text(response) or "Please correct the dupl" in (
        _text(response)
    )
    assert not ScarSite.objects.filter(patient=world.patient, body_site="forehead").exists()


@pytest.mark.parametrize(
    "query",
    [
        {"scheduled_at__year": "99999999999"},
        {"scheduled_at__year": "2026", "scheduled_at__month": "13"},
        {"scheduled_at__year": "2026", "scheduled_at__month": "2", "scheduled_at__day": "30"},
        {"scheduled_at__year": "0"},
    ],
)
def test_an_out_of_range_date_drill_down_is_never_a_server_error(manager, world, query):
    client = _no_500(None, manager)
    response = client.get(reverse("admin:plans_session_changelist"), query)
    assert response.status_code in (200, 302, 400)


# --- resource exhaustion: formsets have a ceiling -----------------------------------------------


def test_a_log_form_claiming_100000_adverse_events_is_refused_quickly(clinician_client, world):
    started = time.monotonic()
    response = _log(clinician_client, world.session, **{"ae-TOTAL_FORMS": "100000"})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "Adverse events: at most 10 at a time." in _text(response)
    assert elapsed < 3, f"took {elapsed:.1f} s"


def test_a_plan_builder_claiming_100000_courses_is_refused_quickly(clinician_client, world):
    url = reverse("plan_create", args=[world.patient.pk])
    data = browser_form(clinician_client.get(url)) | {"courses-TOTAL_FORMS": "100000"}
    started = time.monotonic()
    response = clinician_client.post(url, data)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "Courses: at most 10 at a time." in _text(response)
    assert elapsed < 3, f"took {elapsed:.1f} s"


def test_every_formset_in_the_project_has_a_ceiling():
    from plans import forms as plan_forms

    for name in ("AdverseEventFormSet", "CourseFormSet"):
        formset = getattr(plan_forms, name)
        assert formset.max_num <= 10 and formset.absolute_max <= 20, name
        assert formset.validate_max, name


def test_an_admin_inline_claiming_100000_rows_is_never_a_server_error(manager, world):
    client = _no_500(None, manager)
    url = reverse("admin:plans_session_change", args=[world.done.pk])
    data = browser_form(client.get(url), form_id="session_form")
    for key in [k for k in data if k.endswith("-TOTAL_FORMS")]:
        data[key] = "100000"
    started = time.monotonic()
    response = client.post(url, data)
    assert response.status_code < 500
    assert time.monotonic() - started < 5
