"""The appointment book's facts from the database, for the pure rules in plans.booking.

A location's opening hours, closures, rooms, devices, its clinicians' working patterns and
absences, and every appointment that holds a clinician, room, device or patient in a period:
a fixed number of queries, whatever the period's size.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from clinic.models import Absence, Closure, Device, Location, OpeningHours, Room, WorkingPattern
from clinic.timeutils import day_bounds
from plans import booking
from plans.catalogue import VISIT_MINUTES
from plans.models import Session, VisitType

ALL_DAY = ((time(0, 0), time(23, 45)),)


@dataclass(frozen=True)
class Needs:
    """What an appointment takes: its length, and a room and a device kind or not."""

    minutes: int
    room: bool = True
    device_kind: int | None = None

    @classmethod
    def of_treatments(cls, treatments):
        """A visit of one or more treatments: the longest length, every need of any of them."""
        treatments = list(treatments)
        if not treatments:
            return cls(VISIT_MINUTES["review"])
        kinds = [t.device_kind_id for t in treatments if t.device_kind_id]
        return cls(
            max(t.duration_minutes for t in treatments),
            any(t.needs_room for t in treatments),
            kinds[0] if kinds else None,
        )

    @classmethod
    def of_kind(cls, kind):
        """A visit outside a plan, as the manager set its type up (catalogue default else)."""
        row = VisitType.objects.filter(kind=kind).values_list("minutes", "needs_room").first()
        if row is None:
            return cls(VISIT_MINUTES.get(kind, 30))
        return cls(row[0], row[1])


def zone():
    return timezone.get_current_timezone()


def load(
    location, first_day: date, last_day: date, *, ignore=(), with_busy=True
) -> booking.Availability:
    """Everything booking needs to know about `location` from first_day to last_day.

    Without a location (a clinic that has not set its sites up yet) only clashes count: every
    day is open and every clinician working, so placing still never double-books anyone.
    `with_busy=False` leaves out the appointments (the diary pages draw them themselves).
    """
    start, end = day_bounds(first_day, (last_day - first_day).days + 1)
    busy = list(_busy(start, end, ignore)) if with_busy else []
    if location is None:
        everyone = dict.fromkeys(range(7), ALL_DAY)
        return booking.Availability(
            tz=zone(),
            opening=everyone,
            closures=(),
            working=_AllWorking(everyone),
            absences={},
            busy=busy,
        )
    opening: dict[int, list] = {}
    for row in OpeningHours.objects.filter(location=location).order_by("weekday", "starts"):
        opening.setdefault(row.weekday, []).append((row.starts, row.ends))
    closures = [
        (c.first_day, c.last_day, c.reason)
        for c in Closure.objects.filter(
            Q(location=location) | Q(location__isnull=True),
            first_day__lte=last_day,
            last_day__gte=first_day,
        )
    ]
    working: dict[int, dict[int, list]] = {}
    for row in WorkingPattern.objects.filter(location=location).order_by("weekday", "starts"):
        working.setdefault(row.clinician_id, {}).setdefault(row.weekday, []).append(
            (row.starts, row.ends)
        )
    absences: dict[int, list] = {}
    for row in Absence.objects.filter(first_day__lte=last_day, last_day__gte=first_day):
        absences.setdefault(row.clinician_id, []).append((row.first_day, row.last_day, row.reason))
    return booking.Availability(
        tz=zone(),
        opening=opening,
        closures=closures,
        working=working,
        absences=absences,
        busy=busy,
        location_name=location.name,
    )


class _AllWorking(dict):
    """Every clinician works every day (no location set up)."""

    def __init__(self, week):
        super().__init__()
        self.week = week

    def get(self, key, default=None):
        return self.week

    def __getitem__(self, key):
        return self.week

    def __contains__(self, key):
        return True


def _busy(start: datetime, end: datetime, ignore):
    """Every appointment that holds time overlapping [start, end), as Busy rows per resource."""
    rows = (
        Session.objects.filter(
            status__in=Session.HOLDS_TIME, scheduled_at__lt=end, ends_at__gt=start
        )
        .exclude(pk__in=list(ignore))
        .values_list(
            "pk",
            "kind",
            "scheduled_at",
            "ends_at",
            "clinician_id",
            "clinician__first_name",
            "clinician__last_name",
            "room_id",
            "device_id",
            "patient_id",
            "patient__record_number",
        )
        .order_by()
    )
    kinds = dict(Session.Kind.choices)
    for (
        pk,
        kind,
        starts,
        ends,
        clinician,
        first,
        last,
        room,
        device,
        patient,
        record,
    ) in rows:
        local_start, local_end = timezone.localtime(starts), timezone.localtime(ends)
        who = f" with {first} {last}".rstrip() if clinician else ""
        label = f"{kinds[kind]}, {record}, {local_start:%H:%M}–{local_end:%H:%M}{who}"
        for resource, value in (
            ("clinician", clinician),
            ("room", room),
            ("device", device),
            ("patient", patient),
        ):
            if value is not None:
                yield booking.Busy(resource, value, starts, ends, label, pk)


def rooms_for(location, needs: Needs):
    """The rooms an appointment may take at `location` (None: it needs no room)."""
    if not needs.room or location is None:
        return None
    return list(Room.objects.filter(location=location, is_active=True).values_list("pk", flat=True))


def devices_for(location, needs: Needs):
    """The devices of the kind it needs at `location` (None: it needs none)."""
    if needs.device_kind is None or location is None:
        return None
    return list(
        Device.objects.filter(
            location=location, kind_id=needs.device_kind, is_active=True
        ).values_list("pk", flat=True)
    )


def names(*, clinician=None, room=None, device=None):
    """How to call the requested clinician, room and device in messages."""
    result = {}
    if clinician is not None:
        result[("clinician", clinician.pk)] = str(clinician)
    if room is not None:
        result[("room", room.pk)] = room.name
    if device is not None:
        result[("device", device.pk)] = device.name
    return result


def default_location():
    """The only active location, if there is exactly one (a single-site clinic)."""
    active = list(Location.objects.active()[:2])
    return active[0] if len(active) == 1 else None


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def local_datetime(day: date) -> datetime:
    """The end of a local date (midnight after it), as an aware datetime."""
    return day_bounds(day)[1]


def search_window(moment: datetime, days=None) -> tuple[date, date]:
    days = days or settings.BOOKING_SEARCH_DAYS
    first = local_day(moment)
    return first, first + timedelta(days=days)
