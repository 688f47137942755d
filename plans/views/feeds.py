"""A clinician's private iCalendar feed of their appointments, read by calendar apps.

Calendar apps cannot log in: the secret token in the address is the credential, so the view
is exempt from the login requirement and answers 404 for anything but a live token of an
active clinician. Events name the treatment and the record number only: a phone's lock
screen is not a private place.
"""

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.utils import timezone
from icalendar import Calendar, Event

from clinic.models import CalendarFeed
from clinic.roles import CLINICIAN
from plans.models import Session
from plans.views._common import _treatment_rows

DAYS_BACK, DAYS_AHEAD = 30, 180


@login_not_required
def calendar_feed(request, token):
    feed = (
        CalendarFeed.objects.select_related("user").filter(token=token, user__is_active=True)
    ).first()
    if feed is None or not feed.user.has_role(CLINICIAN):
        raise Http404("No such calendar.")
    user = feed.user
    now = timezone.now()
    sessions = list(
        Session.objects.for_clinician(user)
        .filter(
            status__in=Session.HOLDS_TIME,
            scheduled_at__gte=now - timedelta(days=DAYS_BACK),
            scheduled_at__lt=now + timedelta(days=DAYS_AHEAD),
        )
        .select_related("patient", "location", "room")
        .prefetch_related(_treatment_rows())
        .order_by("scheduled_at", "pk")
    )
    calendar = Calendar()
    calendar.add("prodid", "-//Cicatrix//Appointment book//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Cicatrix — {user.first_name or user.username}")
    sequences = sequences_for(sessions)
    for session in sessions:
        calendar.add_component(_event(session, now, sequences.get(session.pk, 0)))
    response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = 'inline; filename="cicatrix.ics"'
    return response


def sequences_for(sessions):
    """How often each session's time changed (its iCalendar SEQUENCE), from its history: one
    per saved row whose start or end differs from the row before. A move back to an earlier
    time counts too, or calendar apps would keep the superseded copy. One query for all.

    Rows go in history_id order, not history_date: saves of one session are serialised by its
    row lock and write their history row inside that transaction, whereas a clock can step back.
    """
    rows = (
        Session.history.model.objects.filter(id__in=[s.pk for s in sessions])
        .order_by("id", "history_id")
        .values_list("id", "scheduled_at", "ends_at")
    )
    sequences, previous = {}, None
    for pk, *times in rows:
        if previous is not None and previous[0] == pk:
            sequences[pk] = sequences.get(pk, 0) + (times != previous[1])
        previous = pk, times
    return sequences


def _event(session, stamp, sequence):
    event = Event()
    event.add("uid", f"session-{session.pk}@cicatrix")
    event.add("dtstamp", stamp)
    event.add("dtstart", session.scheduled_at)
    event.add("dtend", session.ends_at)
    event.add("sequence", sequence)
    event.add("status", "CONFIRMED")
    if session.kind == Session.Kind.TREATMENT:
        what = " + ".join(row.treatment.name for row in session.treatments.all())
    else:
        what = session.get_kind_display()
    event.add("summary", f"{what or session.get_kind_display()} — {session.patient.record_number}")
    where = ", ".join(place.name for place in (session.location, session.room) if place is not None)
    if where:
        event.add("location", where)
    return event
