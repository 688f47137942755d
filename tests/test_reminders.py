"""Appointment reminders (issue 13.5): `send_reminders` e-mails each appointment time once, to
patients with an address and reminder consent, even when two runs overlap or one dies."""

import threading
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import Letterhead, Location
from patients.models import Consent
from plans import reminders
from plans.models import Reminder, Session
from tests.factories import (
    TODAY,
    PatientFactory,
    SessionFactory,
    SessionTreatmentFactory,
    at,
    frozen,
    treatment,
)

TOMORROW = TODAY + timedelta(days=1)  # Tuesday 6 January 2026; the clock is 08:00 on the 5th


@pytest.fixture(autouse=True)
def pinned_clock():
    with frozen():
        yield


@pytest.fixture
def harbour(db):
    location = Location.objects.create(
        name="Harbour Street", address="12 Harbour Street\nPortwell PW1 2AB", phone="01632 960001"
    )
    Letterhead.objects.create(clinic_name="Portwell Skin Clinic", phone="01632 960999")
    return location


def patient_with(email="ada@example.org", consent=True, **consent_dates):
    patient = PatientFactory(first_name="Adaline", email=email)
    if consent:
        Consent.objects.create(
            patient=patient,
            kind=Consent.Kind.REMINDERS,
            signed_on=consent_dates.pop("signed_on", date(2025, 6, 1)),
            **consent_dates,
        )
    return patient


def booked(patient, when, location, **extra):
    session = SessionFactory(
        plan__patient=patient, patient=patient, scheduled_at=when, location=location, **extra
    )
    return session


@pytest.fixture
def appointment(harbour):
    peel = treatment("microneedling")
    peel.preparation_advice = "Stop retinoid creams five days before."
    peel.save()
    session = booked(patient_with(), at(TOMORROW, 10, 30), harbour)
    SessionTreatmentFactory(session=session, treatment=peel)
    return session


def run(*args):
    out = StringIO()
    call_command("send_reminders", *args, stdout=out)
    return out.getvalue()


def test_a_reminder_says_when_where_what_to_prepare_and_how_to_rebook(appointment):
    assert "Sent 1 reminder(s)" in run()
    [message] = mail.outbox
    assert message.to == ["ada@example.org"]
    assert message.subject == "Reminder: your appointment on Tuesday 6 January at 10:30"
    body = message.body
    for text in (
        "Dear Adaline",
        "Tuesday 6 January 2026 at 10:30",
        "Harbour Street",
        "12 Harbour Street\nPortwell PW1 2AB",
        "Stop retinoid creams five days before.",
        "please call us on 01632 960999",
        "Portwell Skin Clinic",
    ):
        assert text in body, text
    assert "&amp;" not in body and "<" not in body
    row = Reminder.objects.get()
    assert (row.session, row.scheduled_at, row.sent_at) == (
        appointment,
        appointment.scheduled_at,
        timezone.now(),
    )


def test_a_reminder_is_sent_once_across_two_runs(appointment):
    run()
    assert "Sent 0 reminder(s)" in run()
    assert len(mail.outbox) == 1
    assert Reminder.objects.count() == 1


def test_a_moved_appointment_gets_a_new_reminder(appointment):
    run()
    Session.objects.filter(pk=appointment.pk).update(
        scheduled_at=at(TOMORROW, 14), ends_at=at(TOMORROW, 15)
    )
    run()
    assert len(mail.outbox) == 2
    assert "at 14:00" in mail.outbox[1].subject
    assert Reminder.objects.filter(session=appointment).count() == 2


@pytest.mark.parametrize(
    "patient_kwargs",
    [
        {"consent": False},
        {"withdrawn_on": TODAY},
        {"withdrawn_on": date(2025, 12, 1)},
        {"expires_on": TODAY - timedelta(days=1)},
        {"signed_on": TOMORROW},
        {"email": ""},
    ],
    ids=["no-consent", "withdrawn-today", "withdrawn", "expired", "signed-later", "no-email"],
)
def test_no_reminder_without_consent_in_force_or_an_address(harbour, patient_kwargs):
    booked(patient_with(**patient_kwargs), at(TOMORROW, 10), harbour)
    run()
    assert mail.outbox == []
    assert not Reminder.objects.exists()


def test_only_appointments_within_the_next_n_hours_are_reminded(harbour, settings):
    settings.REMINDER_HOURS = 48
    patient = patient_with()
    booked(patient, timezone.now() - timedelta(hours=1), harbour)  # already past
    within = booked(patient, timezone.now() + timedelta(hours=47), harbour)
    later = booked(patient, timezone.now() + timedelta(hours=49), harbour)
    run()
    assert list(Reminder.objects.values_list("session", flat=True)) == [within.pk]
    run("--hours", "50")
    assert set(Reminder.objects.values_list("session", flat=True)) == {within.pk, later.pk}
    assert len(mail.outbox) == 2


def test_hours_is_bounded():
    with pytest.raises(CommandError):
        run("--hours", "0")


def test_cancelled_and_other_than_scheduled_appointments_are_not_reminded(harbour):
    booked(patient_with(), at(TOMORROW, 10), harbour, status=Session.Status.CANCELLED)
    run()
    assert mail.outbox == []


def test_a_claim_left_by_a_run_that_died_is_sent_by_the_next(appointment):
    Reminder.objects.create(
        session=appointment,
        scheduled_at=appointment.scheduled_at,
        to_address="ada@example.org",
        claimed_at=timezone.now() - timedelta(minutes=20),
    )
    run()
    assert len(mail.outbox) == 1
    row = Reminder.objects.get()
    assert row.sent_at == timezone.now()


def test_a_fresh_claim_of_another_run_is_left_to_it(appointment):
    Reminder.objects.create(
        session=appointment,
        scheduled_at=appointment.scheduled_at,
        to_address="ada@example.org",
        claimed_at=timezone.now() - timedelta(minutes=1),
    )
    assert "1 already sent or being sent by another run" in run()
    assert mail.outbox == []


def test_a_refused_email_is_retried_by_the_next_run(appointment, monkeypatch):
    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("mail server down")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMessage.send", refuse)
        with pytest.raises(CommandError, match="could not be sent"):
            run()
    assert not Reminder.objects.exists()
    run()
    assert len(mail.outbox) == 1


def test_the_day_view_shows_who_was_reminded(appointment, front_desk_client, harbour):
    other = booked(patient_with(email="bea@example.org"), at(TOMORROW, 12), harbour)
    run()
    Reminder.objects.filter(session=other).delete()  # as if Bea had no consent
    url = reverse("diary_day") + f"?day={TOMORROW:%Y-%m-%d}&location={harbour.pk}"
    page = front_desk_client.get(url).text
    assert page.count("Reminded Mon 08:00") == 1


def test_the_day_view_reads_reminders_without_a_query_per_row(harbour, front_desk_client):
    url = reverse("diary_day") + f"?day={TOMORROW:%Y-%m-%d}&location={harbour.pk}"
    booked(patient_with(email="one@example.org"), at(TOMORROW, 9), harbour)
    run()
    front_desk_client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as few:
        assert "Reminded" in front_desk_client.get(url).text
    for hour in (10, 11, 12, 13, 14, 15, 16):
        booked(patient_with(email=f"p{hour}@example.org"), at(TOMORROW, hour), harbour)
    run()
    with CaptureQueriesContext(connection) as many:
        assert front_desk_client.get(url).text.count("Reminded") == 8
    assert len(many) == len(few)


def test_a_moved_appointment_shows_no_badge_for_its_old_time(appointment, front_desk_client):
    run()
    Session.objects.filter(pk=appointment.pk).update(
        scheduled_at=at(TOMORROW, 15), ends_at=at(TOMORROW, 16)
    )
    url = reverse("diary_day") + f"?day={TOMORROW:%Y-%m-%d}&location={appointment.location_id}"
    assert "Reminded" not in front_desk_client.get(url).text


# --- two runs at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_one_email(harbour, monkeypatch):
    patient = patient_with()
    sessions = [
        Session.objects.create(
            kind=Session.Kind.CONSULTATION,
            patient=patient,
            scheduled_at=at(TOMORROW, hour),
            ends_at=at(TOMORROW, hour) + timedelta(minutes=30),
            location=harbour,
        )
        for hour in (9, 11, 13)
    ]
    # Both runs have read the same due sessions before either claims one.
    both_read = threading.Barrier(2)
    real_claim = reminders.claim
    waited = set()

    def claim_after_both_read(session):
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            both_read.wait(timeout=10)
        return real_claim(session)

    monkeypatch.setattr(reminders, "claim", claim_after_both_read)
    results = [None, None]

    def one_run(index):
        try:
            results[index] = reminders.send_reminders(hours=48)
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=one_run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(len(r.sent) for r in results) == 3
    assert sum(r.skipped for r in results) == 3  # each session seen by both, sent by one
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.org"] * 3
    assert len({m.subject for m in mail.outbox}) == 3
    assert Reminder.objects.filter(sent_at__isnull=False).count() == 3
    assert {r.session_id for r in Reminder.objects.all()} == {s.pk for s in sessions}
