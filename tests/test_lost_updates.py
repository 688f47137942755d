"""Two members of staff with the same record open: the second save never silently overwrites
the first, and the second person's typing is not thrown away."""

from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from plans.models import AdverseEvent, Assessment, Session
from tests.factories import (
    NEEDLING_OK,
    PatientFactory,
    ScarSiteFactory,
    at,
    browser_form,
    course,
    frozen,
    make_plan,
)

pytestmark = pytest.mark.django_db

STALE_PATIENT = "Someone else saved this record while you were editing it."
STALE_SESSION = "This session was changed by someone else while you were editing it."


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def first(front_desk):
    """The browser of the person who saves first."""
    browser = Client()
    browser.force_login(front_desk)
    return browser


@pytest.fixture
def second(clinician):
    """The browser of the person who saves second."""
    browser = Client()
    browser.force_login(clinician)
    return browser


# --- patient details -------------------------------------------------------------------------


@pytest.fixture
def patient():
    return PatientFactory(
        first_name="Hester",
        last_name="Pryce",
        phone="0161 000 0000",
        email="hester@example.org",
        medications="None",
    )


@pytest.fixture
def both_editing(patient, first, second):
    url = reverse("patient_edit", args=[patient.pk])
    return url, browser_form(first.get(url)), browser_form(second.get(url))


def test_the_second_patient_save_is_refused_and_the_first_is_intact(
    patient, first, second, both_editing
):
    url, first_form, second_form = both_editing
    assert first.post(url, first_form | {"phone": "0161 111 1111"}).status_code == 302
    second_typed = {"email": "hester.pryce@example.org", "medications": "Isotretinoin 20 mg"}
    response = second.post(url, second_form | second_typed)
    assert response.status_code == 200
    assert STALE_PATIENT in response.content.decode()
    patient.refresh_from_db()
    assert (patient.phone, patient.email, patient.medications) == (
        "0161 111 1111",
        "hester@example.org",
        "None",
    )
    kept = browser_form(response)
    assert {name: kept[name] for name in second_typed} == second_typed


def test_after_checking_the_current_record_saving_again_works(patient, first, second, both_editing):
    url, first_form, second_form = both_editing
    first.post(url, first_form | {"phone": "0161 111 1111"})
    refused = second.post(url, second_form | {"email": "hester.pryce@example.org"})
    # The message says: check the current record, then save again. They copy the new phone.
    again = browser_form(refused) | {"phone": "0161 111 1111"}
    response = second.post(url, again)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.phone, patient.email) == ("0161 111 1111", "hester.pryce@example.org")


# --- moving a session ------------------------------------------------------------------------


@pytest.fixture
def cheek(patient):
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])


@pytest.fixture
def needling(clinician, cheek):
    """Microneedling on 5 Jan, 16 Feb and 30 Mar 2026 at 09:00."""
    return make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 3, every=42)])


def _times(plan):
    return [s.scheduled_at for s in plan.sessions.order_by("pk")]


def test_the_second_move_is_refused_and_the_first_stands(first, second, needling):
    session = needling.sessions.order_by("pk").first()
    url = reverse("session_move", args=[session.pk])
    first_form, second_form = browser_form(first.get(url)), browser_form(second.get(url))
    assert first.post(url, first_form | {"date": "2026-01-07"}).status_code == 302
    response = second.post(url, second_form | {"date": "2026-01-08", "time": "14:15"})
    assert response.status_code == 200
    assert STALE_SESSION in response.content.decode()
    assert _times(needling)[0] == at(date(2026, 1, 7))
    kept = browser_form(response)
    assert (kept["date"], kept["time"]) == ("2026-01-08", "14:15")


def test_a_session_moved_along_with_another_refuses_a_form_opened_before(first, second, needling):
    one, two, _ = needling.sessions.order_by("pk")
    url_one = reverse("session_move", args=[one.pk])
    url_two = reverse("session_move", args=[two.pk])
    second_form = browser_form(second.get(url_two))
    shift = browser_form(first.get(url_one)) | {"date": "2026-01-12", "shift_following": "on"}
    assert first.post(url_one, shift).status_code == 302
    response = second.post(url_two, second_form | {"date": "2026-02-20"})
    assert STALE_SESSION in response.content.decode()
    assert _times(needling) == [
        at(date(2026, 1, 12)),
        at(date(2026, 2, 23)),
        at(date(2026, 4, 6)),
    ]


# --- logging a session -----------------------------------------------------------------------


def _typed(session, site, *, depth, notes):
    row = session.treatments.get()
    return {
        f"t{row.pk}-device": "Dermapen 4",
        f"t{row.pk}-needle_depth": depth,
        f"t{row.pk}-passes": "3",
        f"s{site.pk}-gb_qualitative-grade": "3",
        f"s{site.pk}-pain": "4",
        "ae-0-kind": "erythema",
        "ae-0-severity": "mild",
        "notes": notes,
    }


@pytest.fixture
def two_clinicians_logging(clinician, manager, needling, cheek):
    """Two clinical browsers with the log form of the first session open."""
    session = needling.sessions.order_by("pk").first()
    url = reverse("session_log", args=[session.pk])
    browsers = []
    for user in (clinician, manager):
        browser = Client()
        browser.force_login(user)
        browsers.append((browser, browser_form(browser.get(url), form_id="session-log")))
    return session, url, browsers


def test_the_second_log_of_a_session_is_refused_and_the_first_is_intact(
    two_clinicians_logging, cheek
):
    session, url, ((one, one_form), (two, two_form)) = two_clinicians_logging
    first_typed = _typed(session, cheek, depth="1.5", notes="First clinician's notes.")
    assert one.post(url, one_form | first_typed).status_code == 302
    response = two.post(url, two_form | _typed(session, cheek, depth="2", notes="Second."))
    assert response.status_code in (200, 302)
    session.refresh_from_db()
    assert (session.status, session.notes) == (Session.Status.COMPLETED, "First clinician's notes.")
    assert session.treatments.get().parameters == NEEDLING_OK
    assert sorted(Assessment.objects.values_list("instrument", "total")) == [
        ("gb_qualitative", 3),
        ("pain", 4),
    ]
    assert AdverseEvent.objects.count() == 1


def test_the_second_clinician_logging_a_logged_session_keeps_what_they_typed(
    two_clinicians_logging, cheek
):
    session, url, ((one, one_form), (two, two_form)) = two_clinicians_logging
    one.post(url, one_form | _typed(session, cheek, depth="1.5", notes="First."))
    second_typed = _typed(session, cheek, depth="2", notes="Second clinician's notes.")
    response = two.post(url, two_form | second_typed)
    assert response.status_code == 200
    assert "Not saved" in response.content.decode()
    kept = browser_form(response, form_id="session-log")
    assert {name: kept[name] for name in second_typed} == second_typed


def test_a_session_moved_while_being_logged_refuses_the_log_and_keeps_the_typing(
    first, second, needling, cheek
):
    session = needling.sessions.order_by("pk").first()
    log_url = reverse("session_log", args=[session.pk])
    log_form = browser_form(second.get(log_url), form_id="session-log")
    move_url = reverse("session_move", args=[session.pk])
    moved = first.post(move_url, browser_form(first.get(move_url)) | {"time": "11:00"})
    assert moved.status_code == 302
    typed = _typed(session, cheek, depth="1.5", notes="Typed while it was moved.")
    response = second.post(log_url, log_form | typed)
    assert response.status_code == 200
    assert STALE_SESSION in response.content.decode()
    session.refresh_from_db()
    assert (session.status, session.scheduled_at) == (
        Session.Status.SCHEDULED,
        at(date(2026, 1, 5), 11),
    )
    assert not Assessment.objects.exists()
    kept = browser_form(response, form_id="session-log")
    assert {name: kept[name] for name in typed} == typed
