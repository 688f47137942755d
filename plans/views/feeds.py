"""A clinician's private iCalendar feed of their appointments, read by calendar apps.

Calendar apps cannot log in: the secret token in the address is the credential, so the view
is exempt from the login requirement and answers 404 for anything but a live token of an
active clinician. Events name the treatment and the record number only: a phone's lock
screen is not a private place.
"""

from collections import Counter
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
    """How often each session's time changed (its iCalendar SEQUENCE), from its history: the
    number of distinct start-end pairs it has had, less one. One query for all of them."""
    rows = (
        Session.history.model.objects.filter(id__in=[s.pk for s in sessions])
        .values_list("id", "scheduled_at", "ends_at")
        .distinct()
        .order_by()
    )
    times = Counter(pk for pk, _, _ in rows)
    return {pk: count - 1 for pk, count in times.items()}


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
