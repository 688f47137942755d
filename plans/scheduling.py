"""Turn a plan's courses into a dated calendar. Pure: no database, no requests."""

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True)
class CourseSpec:
    """n sessions every `interval_days`, the first `offset_days` after the plan starts."""

    key: Hashable
    sessions: int
    interval_days: int = 0
    offset_days: int = 0

    def __post_init__(self):
        if self.sessions < 1:
            raise ValueError("A course has at least one session.")
        if self.sessions > 1 and self.interval_days < 1:
            raise ValueError("Repeated sessions need an interval of at least one day.")
        if self.offset_days < 0:
            raise ValueError("A course cannot start before its plan.")

    def dates(self, start: date) -> list[date]:
        first = start + timedelta(days=self.offset_days)
        return [first + timedelta(days=self.interval_days * n) for n in range(self.sessions)]


@dataclass
class Visit:
    """One day of the calendar with the course sessions that fall on it: (key, number)."""

    on: date
    items: list[tuple[Hashable, int]] = field(default_factory=list)


def calendar(start: date, courses: Iterable[CourseSpec]) -> list[Visit]:
    """All sessions of all courses, grouped by day (same-day treatments share a visit)."""
    visits: dict[date, Visit] = {}
    for course in courses:
        for number, day in enumerate(course.dates(start), start=1):
            visits.setdefault(day, Visit(day)).items.append((course.key, number))
    return [visits[day] for day in sorted(visits)]


def weeks(*numbers: int) -> list[int]:
    """Week numbers to day offsets, for protocols published in weeks."""
    return [7 * n for n in numbers]
