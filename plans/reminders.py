"""Appointment reminders by e-mail (`manage.py send_reminders`).

A reminder is claimed before it is sent: a Reminder row, unique on (session, start time), is
inserted first, so of two runs at once only one gets the row and sends; the other sees the
claim and moves on. The row is marked sent once the mail server has taken the e-mail. A run
that dies between claiming and sending leaves a claim without sent_at: the next run after
STALE_CLAIM takes it over and sends it. (A run killed in the instant between the mail server
accepting and sent_at being written would send that one again: e-mail cannot be part of a
database transaction, and a reminder twice is better than none.) A moved appointment has a
new start time, so it gets a new reminder.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.template.loader import render_to_string
from django.utils import timezone

from clinic.models import Letterhead
from patients.models import Consent
from plans.models import Reminder, Session, SessionTreatment

# A claim older than this is taken to belong to a run that died; no run takes this long.
STALE_CLAIM = timedelta(minutes=15)


@dataclass
class Outcome:
    sent: list = field(default_factory=list)
    skipped: int = 0  # already sent, or being sent by another run
    failed: list = field(default_factory=list)


def reminder_consent_in_force(day):
    """Exists(): the patient's reminder consent is in force on `day` (Consent.in_force_on)."""
    return Exists(
        Consent.objects.filter(
            patient=OuterRef("patient"),
            kind=Consent.Kind.REMINDERS,
            signed_on__lte=day,
        )
        .filter(Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gt=day))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=day))
    )


def due_sessions(now, hours):
    """Scheduled sessions starting in (now, now + hours] of patients with an e-mail address and
    reminder consent in force, not yet reminded of this start time."""
    today = timezone.localdate(now)
    already = Reminder.objects.filter(
        session=OuterRef("pk"), scheduled_at=OuterRef("scheduled_at"), sent_at__isnull=False
    )
    return (
        Session.objects.filter(
            status=Session.Status.SCHEDULED,
            scheduled_at__gt=now,
            scheduled_at__lte=now + timedelta(hours=hours),
            patient__archived_at__isnull=True,
        )
        .exclude(patient__email="")
        .filter(reminder_consent_in_force(today))
        .exclude(Exists(already))
        .select_related("patient", "location")
        .prefetch_related(
            Prefetch("treatments", queryset=SessionTreatment.objects.select_related("treatment"))
        )
        .order_by("scheduled_at", "pk")
    )


def claim(session):
    """The Reminder row this run may send, or None if it is sent or another run holds it."""
    address = session.patient.email.strip()
    now = timezone.now()
    try:
        with transaction.atomic():
            return Reminder.objects.create(
                session=session,
                scheduled_at=session.scheduled_at,
                to_address=address,
                claimed_at=now,
            )
    except IntegrityError:
        pass
    # Someone claimed it: take it over only if that claim was never sent and has gone stale.
    stale = Reminder.objects.filter(
        session=session,
        scheduled_at=session.scheduled_at,
        sent_at__isnull=True,
        claimed_at__lt=now - STALE_CLAIM,
    )
    row = stale.first()
    if row is None:
        return None
    taken = Reminder.objects.filter(pk=row.pk, sent_at__isnull=True, claimed_at=row.claimed_at)
    if taken.update(claimed_at=now, to_address=address) != 1:
        return None  # another run took it over first
    row.claimed_at, row.to_address = now, address
    return row


def still_due(session):
    """The session was not moved or cancelled since it was read."""
    return Session.objects.filter(
        pk=session.pk, status=Session.Status.SCHEDULED, scheduled_at=session.scheduled_at
    ).exists()


def message_for(session, letterhead):
    start = timezone.localtime(session.scheduled_at)
    treatments = [row.treatment for row in session.treatments.all()]
    context = {
        "patient": session.patient,
        "session": session,
        "start": start,
        "location": session.location,
        "letterhead": letterhead,
        "phone": letterhead.phone or (session.location.phone if session.location else ""),
        "advice": [
            (t.name_for_patients, t.preparation_advice) for t in treatments if t.preparation_advice
        ],
        "what": ", ".join(t.name_for_patients for t in treatments) or session.get_kind_display(),
    }
    return EmailMessage(
        subject=f"Reminder: your appointment on {start:%A} {start.day} {start:%B} at {start:%H:%M}",
        body=render_to_string("email/reminder.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[session.patient.email.strip()],
        reply_to=[letterhead.email] if letterhead.email else None,
    )


def send_reminders(*, hours=None, now=None):
    """Send each due reminder once; returns what was sent, skipped and failed."""
    hours = settings.REMINDER_HOURS if hours is None else hours
    now = now or timezone.now()
    outcome = Outcome()
    letterheads = {}
    for session in due_sessions(now, hours):
        row = claim(session)
        if row is None:
            outcome.skipped += 1
            continue
        if not still_due(session):
            Reminder.objects.filter(pk=row.pk, sent_at__isnull=True).delete()
            outcome.skipped += 1
            continue
        if session.location_id not in letterheads:
            letterheads[session.location_id] = Letterhead.for_location(session.location_id)
        try:
            message_for(session, letterheads[session.location_id]).send(fail_silently=False)
        except Exception as error:  # one refused address must not stop the run
            # Release the claim so the next run tries again at once.
            Reminder.objects.filter(pk=row.pk, sent_at__isnull=True).delete()
            outcome.failed.append((session, error))
            continue
        Reminder.objects.filter(pk=row.pk).update(sent_at=timezone.now())
        outcome.sent.append(row)
    return outcome
