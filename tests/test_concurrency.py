"""Writes that arrive twice or together: a form without its version is refused, never applied
blind; a booking form submitted twice makes one appointment.

The races use real threads with their own connections, started together on a barrier
(`transaction=True`), and assert on the rows. On PostgreSQL both requests run at once; on
SQLite the IMMEDIATE transactions queue them, and neither may fail with a 500.
"""

import threading
from datetime import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from clinic.models import Location, OpeningHours, Room, WorkingPattern
from plans.models import AdverseEvent, Session
from tests.factories import (
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    course,
    frozen,
    make_plan,
)

OUT_OF_DATE = "This form is out of date or incomplete: reload the page and enter it again"
ALREADY = "This booking was already made"


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


def browser(user):
    client = Client()
    client.force_login(user)
    return client


def race(*calls):
    """Run the calls at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # a crash is a result the test reports
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def cheek():
    return ScarSiteFactory(patient=PatientFactory(), body_site="left_cheek", scar_types=["rolling"])


@pytest.fixture
def needling(clinician, cheek):
    return make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 3, every=42)])


def _log_form(client, session, cheek, notes):
    url = reverse("session_log", args=[session.pk])
    form = browser_form(client.get(url), form_id="session-log")
    row = session.treatments.get()
    return url, form | {
        f"t{row.pk}-device": "Dermapen 4",
        f"t{row.pk}-needle_depth": "1.5",
        f"t{row.pk}-passes": "3",
        f"s{cheek.pk}-pain": "4",
        "ae-0-kind": "erythema",
        "ae-0-severity": "mild",
        "notes": notes,
    }


# --- a form without its version ------------------------------------------------------------


@pytest.mark.django_db
def test_a_log_without_its_version_is_refused_and_keeps_what_was_typed(clinician, needling, cheek):
    session = needling.sessions.order_by("pk").first()
    client = browser(clinician)
    url, form = _log_form(client, session, cheek, "Typed with no version.")
    for sent in (form | {"version": ""}, {k: v for k, v in form.items() if k != "version"}):
        response = client.post(url, sent)
        assert response.status_code == 200
        assert OUT_OF_DATE in response.content.decode()
        assert browser_form(response, form_id="session-log")["notes"] == "Typed with no version."
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED
    assert not AdverseEvent.objects.exists()


@pytest.mark.django_db
def test_a_non_numeric_version_is_refused_too(clinician, needling, cheek):
    session = needling.sessions.order_by("pk").first()
    client = browser(clinician)
    url, form = _log_form(client, session, cheek, "Odd version.")
    response = client.post(url, form | {"version": "latest"})
    assert OUT_OF_DATE in response.content.decode()
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED


@pytest.mark.django_db
def test_cancelling_or_a_status_step_without_a_version_changes_nothing(
    clinician, front_desk, needling
):
    session = needling.sessions.order_by("pk").first()
    version = session.version
    client = browser(front_desk)
    response = client.post(reverse("session_cancel", args=[session.pk]), follow=True)
    assert OUT_OF_DATE in response.content.decode()
    response = client.post(
        reverse("session_status", args=[session.pk]), {"status": "arrived"}, follow=True
    )
    assert OUT_OF_DATE in response.content.decode()
    session.refresh_from_db()
    assert (session.status, session.version) == (Session.Status.SCHEDULED, version)


@pytest.mark.django_db
def test_a_patient_edit_without_its_version_is_refused_and_keeps_the_typing(front_desk):
    patient = PatientFactory(phone="0161 000 0000")
    client = browser(front_desk)
    url = reverse("patient_edit", args=[patient.pk])
    form = browser_form(client.get(url))
    del form["version"]
    response = client.post(url, form | {"phone": "0161 999 9999"})
    assert response.status_code == 200
    assert OUT_OF_DATE in response.content.decode()
    assert browser_form(response)["phone"] == "0161 999 9999"
    patient.refresh_from_db()
    assert patient.phone == "0161 000 0000"


# --- two log posts at once -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_version", [True, False])
def test_two_log_posts_at_once_complete_the_session_at_most_once(
    clinician, manager, needling, cheek, with_version
):
    session = needling.sessions.order_by("pk").first()
    posts = []
    for user in (clinician, manager):
        client = browser(user)
        url, form = _log_form(client, session, cheek, f"Logged by {user.username}.")
        if not with_version:
            del form["version"]
        posts.append(lambda client=client, url=url, form=form: client.post(url, form))
    results = race(*posts)
    assert all(getattr(r, "status_code", None) in (200, 302) for r in results), results
    session.refresh_from_db()
    completed = Session.objects.filter(pk=session.pk, status=Session.Status.COMPLETED).count()
    assert completed == (1 if with_version else 0)
    assert AdverseEvent.objects.count() == completed


# --- a booking submitted twice --------------------------------------------------------------


@pytest.fixture
def harbour(clinician):
    location = Location.objects.create(name="Harbour Street")
    OpeningHours.objects.create(location=location, weekday=0, starts=time(9), ends=time(17))
    WorkingPattern.objects.create(
        clinician=clinician, location=location, weekday=0, starts=time(9), ends=time(17)
    )
    Room.objects.create(location=location, name="Room 1")
    return location


def _extra_session_form(client, plan):
    url = reverse("session_book", args=[plan.pk])
    form = browser_form(client.get(url)) | {
        "course": str(plan.courses.get().pk),
        "date": "2026-01-07",
        "time": "10:30",
    }
    return url, form


def _appointment_form(client, patient, clinician, location):
    url = reverse("appointment_new")
    form = browser_form(client.get(url)) | {
        "patient": patient.record_number,
        "kind": "consultation",
        "date": "2026-01-05",
        "time": "11:15",
        "clinician": str(clinician.pk),
        "location": str(location.pk),
    }
    return url, form


@pytest.mark.django_db
def test_an_extra_session_submitted_twice_is_booked_once_and_the_second_says_so(
    clinician, needling
):
    client = browser(clinician)
    url, form = _extra_session_form(client, needling)
    assert client.post(url, form).status_code == 302
    response = client.post(url, form, follow=True)
    page = response.content.decode()
    assert ALREADY in page
    booked = needling.sessions.order_by("-pk").first()
    assert reverse("session_detail", args=[booked.pk]) in page
    assert needling.sessions.count() == 4


@pytest.mark.django_db
def test_an_appointment_submitted_twice_is_booked_once_and_the_second_says_so(
    front_desk, clinician, harbour
):
    patient = PatientFactory()
    client = browser(front_desk)
    url, form = _appointment_form(client, patient, clinician, harbour)
    assert client.post(url, form).status_code == 302
    response = client.post(url, form, follow=True)
    assert ALREADY in response.content.decode()
    assert Session.objects.filter(patient=patient).count() == 1


@pytest.mark.django_db
def test_two_booking_forms_opened_separately_are_two_bookings(clinician, needling):
    """The token is per form, not per page: booking twice on purpose still works."""
    client = browser(clinician)
    url, first = _extra_session_form(client, needling)
    _, second = _extra_session_form(client, needling)
    assert client.post(url, first).status_code == 302
    assert client.post(url, second | {"date": "2026-01-09"}).status_code == 302
    assert needling.sessions.count() == 5


@pytest.mark.django_db(transaction=True)
def test_an_extra_session_double_submitted_at_once_is_booked_once(clinician, needling):
    one, two = browser(clinician), browser(clinician)
    url, form = _extra_session_form(one, needling)
    results = race(lambda: one.post(url, form), lambda: two.post(url, form))
    assert [getattr(r, "status_code", r) for r in results] == [302, 302]
    assert needling.sessions.count() == 4


@pytest.mark.django_db(transaction=True)
def test_an_appointment_double_submitted_at_once_is_booked_once(front_desk, clinician, harbour):
    patient = PatientFactory()
    one, two = browser(front_desk), browser(front_desk)
    url, form = _appointment_form(one, patient, clinician, harbour)
    results = race(lambda: one.post(url, form), lambda: two.post(url, form))
    assert [getattr(r, "status_code", r) for r in results] == [302, 302]
    assert Session.objects.filter(patient=patient).count() == 1
