"""The appointment book's rules, pure: opening hours, closures, working patterns, absences and
clashes in, problems and free slots out. No database, no requests (plans.diary loads the facts).

Times are aware datetimes; hours, spans and the 15-minute grid are the clinic's wall clock, so
that 09:00 stays 09:00 on the days the clocks change. An appointment holds its clinician, room,
device and patient over [start, end): one that ends at 10:00 does not clash with one that
starts at 10:00.
"""

from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cached_property

RESOURCE_NAMES = {
    "clinician": "the clinician",
    "room": "the room",
    "device": "the device",
    "patient": "the patient",
}
WEEKDAYS = ["Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"]
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Busy:
    """An existing appointment holding one resource."""

    kind: str  # "clinician" | "room" | "device" | "patient"
    id: int
    start: datetime
    end: datetime
    label: str  # how to name the appointment to a user
    appointment: int | None = None


@dataclass(frozen=True)
class Availability:
    """What one location's diary knows for a period."""

    tz: tzinfo
    opening: Mapping[int, Sequence[tuple[time, time]]]
    closures: Sequence[tuple[date, date, str]]
    working: Mapping[int, Mapping[int, Sequence[tuple[time, time]]]]
    absences: Mapping[int, Sequence[tuple[date, date, str]]]
    busy: Sequence[Busy]
    location_name: str = ""

    @cached_property
    def index(self) -> dict[tuple[str, int], tuple[list[datetime], list[Busy]]]:
        """Busy rows per resource, sorted by start, for bisecting."""
        grouped: dict[tuple[str, int], list[Busy]] = {}
        for row in self.busy:
            grouped.setdefault((row.kind, row.id), []).append(row)
        result = {}
        for key, rows in grouped.items():
            rows.sort(key=lambda r: r.start)
            result[key] = ([r.start for r in rows], rows)
        return result

    @cached_property
    def longest(self) -> timedelta:
        return max((r.end - r.start for r in self.busy), default=timedelta(0))

    def holding(self, kind: str, id: int, start: datetime, end: datetime, ignore=()) -> Busy | None:
        """The first appointment holding this resource somewhere in [start, end)."""
        found = self.index.get((kind, id))
        if not found:
            return None
        starts, rows = found
        # Anything overlapping starts before `end` and no earlier than start - longest, counted
        # in real time: on the wall clock a night across the clocks going forward is an hour short.
        first = bisect_left(starts, start.astimezone(UTC) - self.longest)
        last = bisect_left(starts, end)
        for row in rows[first:last]:
            if row.end > start and row.appointment not in ignore:
                return row
        return None


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    clinician: int | None
    room: int | None
    device: int | None


@dataclass(frozen=True)
class Problem:
    code: str  # "clash" | "closed" | "closure" | "outside_hours" | "not_working" | "absent"
    message: str
    overridable: bool  # a manager may book anyway with a reason; never for a clash


def local(day: date, at: time, tz) -> datetime:
    """Wall-clock time on a local date as an aware datetime."""
    return datetime.combine(day, at).replace(tzinfo=tz)


def tolerance_days(interval_days: int) -> int:
    """How far a course's visit may move to find a free day: a tenth of its interval, rounded
    (3 for a 28-day course), at least 1; a one-off visit may move 3 days."""
    if interval_days <= 0:
        return 3
    return max(1, round(interval_days / 10))


def _hm(moment: time) -> str:
    return f"{moment:%H:%M}"


def _spans_text(spans) -> str:
    return " and ".join(f"{_hm(a)}–{_hm(b)}" for a, b in spans)


def _within(spans, first: time, last: time, same_day: bool) -> bool:
    """Whether [first, last] lies inside one span (last is the end's wall-clock time)."""
    return same_day and any(a <= first and last <= b for a, b in spans)


def _on(day: date, periods):
    return next((p for p in periods if p[0] <= day <= p[1]), None)


def problems(
    av: Availability,
    slot: Slot,
    *,
    patient: int | None,
    ignore: Collection[int] = (),
    names: Mapping[tuple[str, int], str] | None = None,
) -> list[Problem]:
    """Everything wrong with booking `slot` for `patient`; clashes first."""
    names = names or {}
    found = []
    for kind, value in (
        ("clinician", slot.clinician),
        ("room", slot.room),
        ("device", slot.device),
        ("patient", patient),
    ):
        if value is None:
            continue
        other = av.holding(kind, value, slot.start, slot.end, ignore)
        if other is not None:
            who = names.get((kind, value), RESOURCE_NAMES[kind])
            found.append(
                Problem(
                    "clash",
                    f"{who[0].upper()}{who[1:]} already has {other.label} at that time.",
                    False,
                )
            )
    start, end = slot.start.astimezone(av.tz), slot.end.astimezone(av.tz)
    day, first, last = start.date(), start.time(), end.time()
    same_day = end.date() == day or (end.date() == day + timedelta(days=1) and last == time(0))
    if last == time(0):
        last = time(23, 59, 59)
    weekday = day.weekday()
    where = av.location_name or "The clinic"
    closure = _on(day, av.closures)
    if closure is not None:
        found.append(
            Problem("closure", f"{where} is closed on {day:%-d %b %Y} ({closure[2]}).", True)
        )
    else:
        spans = av.opening.get(weekday, ())
        if not spans:
            found.append(Problem("closed", f"{where} is closed on {WEEKDAYS[weekday]}.", True))
        elif not _within(spans, first, last, same_day):
            found.append(
                Problem(
                    "outside_hours",
                    f"{where} is open {_spans_text(spans)} on {WEEKDAYS[weekday]}; "
                    f"{_hm(first)}–{_hm(end.time())} is outside those hours.",
                    True,
                )
            )
    if slot.clinician is not None:
        who = names.get(("clinician", slot.clinician), "The clinician")
        who = f"{who[0].upper()}{who[1:]}"
        away = _on(day, av.absences.get(slot.clinician, ()))
        working = av.working.get(slot.clinician, {}).get(weekday, ())
        if away is not None:
            found.append(Problem("absent", f"{who} is away on {day:%-d %b %Y} ({away[2]}).", True))
        elif not working:
            found.append(
                Problem("not_working", f"{who} does not work here on {WEEKDAYS[weekday]}.", True)
            )
        elif not _within(working, first, last, same_day):
            found.append(
                Problem(
                    "not_working",
                    f"{who} works {_spans_text(working)} on {WEEKDAYS[weekday]} here; "
                    f"{_hm(first)}–{_hm(end.time())} is outside those hours.",
                    True,
                )
            )
    return found


def _first_free(av, kind, candidates, start, end, ignore):
    """The first candidate not held in [start, end); None when all are taken."""
    for candidate in candidates:
        if av.holding(kind, candidate, start, end, ignore) is None:
            return candidate
    return None


def _day_starts(av: Availability, day: date, duration: timedelta, clinician: int, step, between):
    """Local wall-clock start times on `day` inside an opening span and a working span."""
    if _on(day, av.closures) or _on(day, av.absences.get(clinician, ())):
        return
    weekday = day.weekday()
    opening = av.opening.get(weekday, ())
    working = av.working.get(clinician, {}).get(weekday, ())
    minutes = int(duration.total_seconds() // 60)
    step_minutes = max(1, int(step.total_seconds() // 60))
    for open_from, open_to in opening:
        for work_from, work_to in working:
            lo = max(_minutes(open_from), _minutes(work_from))
            hi = min(_minutes(open_to), _minutes(work_to))
            if between is not None:
                lo, hi = max(lo, _minutes(between[0])), min(hi, _minutes(between[1]))
            first = -(-lo // step_minutes) * step_minutes
            yield from range(first, hi - minutes + 1, step_minutes)


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _slot_at(av, day, minute, duration, clinician, rooms, devices, patient, ignore):
    """A Slot for this clinician at `minute` on `day` if they, a room, a device and the patient
    are all free; else None."""
    start = local(day, time(minute // 60, minute % 60), av.tz)
    end = start + duration
    if av.holding("clinician", clinician, start, end, ignore) is not None:
        return None
    if patient is not None and av.holding("patient", patient, start, end, ignore) is not None:
        return None
    room = device = None
    if rooms is not None:
        room = _first_free(av, "room", rooms, start, end, ignore)
        if room is None:
            return None
    if devices is not None:
        device = _first_free(av, "device", devices, start, end, ignore)
        if device is None:
            return None
    return Slot(start, end, clinician, room, device)


def free_slots(
    av: Availability,
    *,
    duration: timedelta,
    clinicians: Sequence[int],
    rooms: Sequence[int] | None,
    devices: Sequence[int] | None,
    patient: int | None,
    after: datetime,
    until: datetime,
    limit: int = 3,
    step: timedelta = STEP,
    weekdays: Collection[int] | None = None,
    between: tuple[time, time] | None = None,
    ignore: Collection[int] = (),
) -> list[Slot]:
    """The first `limit` free slots from `after` to `until`, earliest first; between clinicians
    at the same time, the first in list order wins."""
    found: list[Slot] = []
    after_local, until_local = after.astimezone(av.tz), until.astimezone(av.tz)
    day = after_local.date()
    while day <= until_local.date() and len(found) < limit:
        if weekdays is None or day.weekday() in weekdays:
            candidates = []
            for order, clinician in enumerate(clinicians):
                for minute in _day_starts(av, day, duration, clinician, step, between):
                    candidates.append((minute, order, clinician))
            for minute, _, clinician in sorted(set(candidates)):
                start = local(day, time(minute // 60, minute % 60), av.tz)
                if start < after or start + duration > until:
                    continue
                slot = _slot_at(
                    av, day, minute, duration, clinician, rooms, devices, patient, ignore
                )
                if slot is not None and (not found or found[-1].start != slot.start):
                    found.append(slot)
                    if len(found) == limit:
                        break
        day += timedelta(days=1)
    return found


def place(
    av: Availability,
    *,
    day: date,
    preferred: time,
    duration: timedelta,
    clinician: int,
    rooms: Sequence[int] | None,
    devices: Sequence[int] | None,
    patient: int | None,
    tolerance_days: int,
    ignore: Collection[int] = (),
) -> Slot | None:
    """A concrete slot for a planned visit: on `day` the first free one at or after
    `preferred` (else the last one before it), else the same on the nearest day within
    ±tolerance_days (+1, -1, +2, -2, ...). None when nothing fits."""
    wanted = _minutes(preferred)
    offsets = [0]
    for n in range(1, tolerance_days + 1):
        offsets += [n, -n]
    for offset in offsets:
        current = day + timedelta(days=offset)
        starts = list(_day_starts(av, current, duration, clinician, STEP, None))
        later = [m for m in starts if m >= wanted]
        earlier = [m for m in starts if m < wanted][::-1]
        for minute in later + earlier:
            slot = _slot_at(
                av, current, minute, duration, clinician, rooms, devices, patient, ignore
            )
            if slot is not None:
                return slot
    return None
