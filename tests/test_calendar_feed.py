"""A clinician's calendar feed: a secret .ics link, parsed back with icalendar."""

from datetime import datetime, time, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from clinic.models import CalendarFeed
from plans import services
from plans.models import Session
from tests.factories import (
    TODAY,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    course,
    frozen,
    make_plan,
)

pytestmark = pytest.mark.django_db


def events(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    return list(Calendar.from_ical(response.content).walk("VEVENT"))


def feed_of(user):
    return reverse("calendar_feed", args=[CalendarFeed.objects.get_or_create(user=user)[0].token])


@pytest.fixture
def plan(clinician):
    patient = PatientFactory(first_name="Wren", last_name="Ashdown", record_number="CX-000321")
    MedicalFlagFactory(patient=patient, detail="Oral isotretinoin 20 mg")
    return make_plan(
        user=clinician,
        sites=[ScarSiteFactory(patient=patient)],
        courses=[course("cryotherapy", 4, every=28)],
        start=TODAY,
    )


def test_turning_the_feed_on_renewing_and_off(clinician_client, clinician):
    page = clinician_client.get(reverse("account"))
    assert "Turn on my calendar feed" in page.content.decode()
    clinician_client.post(reverse("calendar_feed_change", args=["on"]))
    first = CalendarFeed.objects.get(user=clinician).token
    assert first in clinician_client.get(reverse("account")).content.decode()

    clinician_client.post(reverse("calendar_feed_change", args=["renew"]))
    second = CalendarFeed.objects.get(user=clinician).token
    assert second != first
    anonymous = Client()
    assert anonymous.get(reverse("calendar_feed", args=[first])).status_code == 404
    assert anonymous.get(reverse("calendar_feed", args=[second])).status_code == 200

    clinician_client.post(reverse("calendar_feed_change", args=["off"]))
    assert not CalendarFeed.objects.filter(user=clinician).exists()
    assert anonymous.get(reverse("calendar_feed", args=[second])).status_code == 404


def test_the_feed_needs_no_login_but_an_unknown_token_is_404(client):
    assert client.get(reverse("calendar_feed", args=["not-a-token"])).status_code == 404


def test_front_desk_has_no_feed_and_cannot_turn_one_on(front_desk_client, front_desk):
    page = front_desk_client.get(reverse("account")).content.decode()
    assert "Calendar feed" not in page and "Change my password" in page
    response = front_desk_client.post(reverse("calendar_feed_change", args=["on"]))
    assert response.status_code == 403
    assert not CalendarFeed.objects.exists()


def test_an_unknown_action_changes_nothing(clinician_client, clinician):
    CalendarFeed.objects.create(user=clinician)
    response = clinician_client.post(reverse("calendar_feed_change", args=["explode"]))
    assert response.status_code == 404
    assert CalendarFeed.objects.filter(user=clinician).exists()


def test_a_deactivated_clinicians_feed_stops(client, clinician, plan):
    url = feed_of(clinician)
    clinician.is_active = False
    clinician.save()
    assert client.get(url).status_code == 404


def test_events_name_the_treatment_and_record_number_only(client, clinician, plan):
    with frozen(TODAY):
        found = events(client.get(feed_of(clinician)))
    assert [str(e["summary"]) for e in found] == ["Cryotherapy — CX-000321"] * 4
    text = Client().get(feed_of(clinician)).content.decode()
    for private in ("Wren", "Ashdown", "isotretinoin", "Isotretinoin"):
        assert private not in text


def test_the_feed_covers_30_days_back_to_180_ahead(client, clinician, plan):
    # Sessions on 5 Jan, 2 Feb, 2 Mar, 30 Mar 2026.
    with frozen(TODAY + timedelta(days=50)):  # 24 Feb: 5 Jan is more than 30 days back
        found = events(client.get(feed_of(clinician)))
    assert [e.decoded("dtstart").date() for e in found] == [
        datetime(2026, 2, 2).date(),
        datetime(2026, 3, 2).date(),
        datetime(2026, 3, 30).date(),
    ]
    with frozen(TODAY - timedelta(days=170)):  # 18 Jul 2025: only 5 Jan is within 180 days
        found = events(client.get(feed_of(clinician)))
    assert [e.decoded("dtstart").date() for e in found] == [TODAY]


def test_a_moved_session_keeps_its_uid_and_raises_its_sequence(client, clinician, plan):
    with frozen(TODAY):
        before = {str(e["uid"]): e for e in events(client.get(feed_of(clinician)))}
        second = plan.sessions.order_by("scheduled_at")[1]
        services.session_reschedule(
            session=second,
            new_start=timezone.make_aware(datetime.combine(second.scheduled_on, time(11))),
            user=clinician,
        )
        services.session_set_status(
            session=plan.sessions.order_by("scheduled_at")[0], status="arrived", user=clinician
        )
        after = {str(e["uid"]): e for e in events(client.get(feed_of(clinician)))}
    assert before.keys() == after.keys()
    uid = f"session-{second.pk}@cicatrix"
    assert after[uid]["sequence"] == before[uid]["sequence"] + 1
    assert after[uid].decoded("dtstart").astimezone(timezone.get_current_timezone()).time() == (
        time(11)
    )
    first_uid = f"session-{plan.sessions.order_by('scheduled_at')[0].pk}@cicatrix"
    assert after[first_uid]["sequence"] == before[first_uid]["sequence"]  # arrived: not moved


def test_cancelled_sessions_are_not_listed(client, clinician, plan):
    services.plan_cancel(plan=plan, user=clinician)
    with frozen(TODAY - timedelta(days=1)):
        assert events(client.get(feed_of(clinician))) == []


def test_the_feed_runs_as_many_queries_for_30_sessions_as_for_3(
    client, clinician, django_assert_max_num_queries
):
    def add(n):
        for _ in range(n):
            make_plan(user=clinician, courses=[course("cryotherapy", 3, every=28)], start=TODAY)

    add(1)
    url = feed_of(clinician)
    with frozen(TODAY), django_assert_max_num_queries(10) as small:
        assert len(events(client.get(url))) == 3
    add(9)
    with frozen(TODAY), django_assert_max_num_queries(len(small.captured_queries)):
        assert len(events(client.get(url))) == 30
    assert Session.objects.count() == 30


def test_a_session_moved_back_to_its_first_time_still_raises_its_sequence(client, clinician, plan):
    second = plan.sessions.order_by("scheduled_at")[1]
    first_time = timezone.localtime(second.scheduled_at).time()
    uid = f"session-{second.pk}@cicatrix"

    def move_to(hour_minute):
        session = Session.objects.get(pk=second.pk)
        services.session_reschedule(
            session=session,
            new_start=timezone.make_aware(datetime.combine(session.scheduled_on, hour_minute)),
            user=clinician,
        )
        return {str(e["uid"]): e for e in events(client.get(feed_of(clinician)))}[uid]

    with frozen(TODAY):
        start = {str(e["uid"]): e for e in events(client.get(feed_of(clinician)))}[uid]
        moved = move_to(time(11))
        back = move_to(first_time)
    assert start["sequence"] < moved["sequence"] < back["sequence"]
    assert back.decoded("dtstart") == start.decoded("dtstart")
