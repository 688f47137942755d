"""Calendar generation from courses: pure, no database."""

from datetime import date

import pytest

from plans.scheduling import CourseSpec, Visit, calendar, weeks

START = date(2026, 1, 5)  # a Monday


def test_cryotherapy_four_times_every_28_days_from_the_plan_start():
    visits = calendar(START, [CourseSpec("cryo", 4, interval_days=28)])

    assert visits == [
        Visit(date(2026, 1, 5), [("cryo", 1)]),
        Visit(date(2026, 2, 2), [("cryo", 2)]),
        Visit(date(2026, 3, 2), [("cryo", 3)]),
        Visit(date(2026, 3, 30), [("cryo", 4)]),
    ]


def test_weeks_turns_published_week_numbers_into_day_offsets():
    assert weeks(0, 6, 12) == [0, 42, 84]
    assert weeks(3, 9, 15) == [21, 63, 105]
    assert weeks() == []


def test_microneedling_and_peel_alternate_on_the_published_weeks():
    """Rana 2017: microneedling at weeks 0, 6, 12 and a glycolic peel at weeks 3, 9, 15."""
    needling_weeks, peel_weeks = weeks(0, 6, 12), weeks(3, 9, 15)
    microneedling = CourseSpec("mn", 3, interval_days=weeks(6)[0], offset_days=needling_weeks[0])
    peel = CourseSpec("peel", 3, interval_days=weeks(6)[0], offset_days=peel_weeks[0])

    visits = calendar(START, [microneedling, peel])

    assert [(v.on, v.items) for v in visits] == [
        (date(2026, 1, 5), [("mn", 1)]),  # week 0
        (date(2026, 1, 26), [("peel", 1)]),  # week 3
        (date(2026, 2, 16), [("mn", 2)]),  # week 6
        (date(2026, 3, 9), [("peel", 2)]),  # week 9
        (date(2026, 3, 30), [("mn", 3)]),  # week 12
        (date(2026, 4, 20), [("peel", 3)]),  # week 15
    ]
    assert [(v.on - START).days for v in visits if v.items[0][0] == "mn"] == needling_weeks
    assert [(v.on - START).days for v in visits if v.items[0][0] == "peel"] == peel_weeks


def test_peel_and_microneedling_on_the_same_day_share_one_visit():
    courses = [CourseSpec("peel", 3, interval_days=42), CourseSpec("mn", 3, interval_days=42)]

    visits = calendar(START, courses)

    assert [v.on for v in visits] == [date(2026, 1, 5), date(2026, 2, 16), date(2026, 3, 30)]
    assert [v.items for v in visits] == [
        [("peel", 1), ("mn", 1)],
        [("peel", 2), ("mn", 2)],
        [("peel", 3), ("mn", 3)],
    ]


def test_sessions_are_numbered_n_of_m_per_course_whatever_the_order_of_visits():
    late = CourseSpec("late", 2, interval_days=10, offset_days=5)
    early = CourseSpec("early", 3, interval_days=7)

    visits = calendar(START, [late, early])

    numbers = {}
    for visit in visits:
        for key, number in visit.items:
            numbers.setdefault(key, []).append(number)
    assert numbers == {"early": [1, 2, 3], "late": [1, 2]}
    assert [v.on for v in visits] == sorted(v.on for v in visits)


def test_a_single_session_course_needs_no_interval():
    assert calendar(START, [CourseSpec("once", 1, offset_days=3)]) == [
        Visit(date(2026, 1, 8), [("once", 1)])
    ]


def test_no_courses_make_an_empty_calendar():
    assert calendar(START, []) == []


@pytest.mark.parametrize(
    ("sessions", "interval", "offset", "message"),
    [
        (0, 7, 0, "at least one session"),
        (-2, 7, 0, "at least one session"),
        (2, 0, 0, "interval of at least one day"),
        (3, -7, 0, "interval of at least one day"),
        (1, 0, -1, "cannot start before its plan"),
    ],
)
def test_invalid_course_specs_are_refused(sessions, interval, offset, message):
    with pytest.raises(ValueError, match=message):
        CourseSpec("bad", sessions, interval_days=interval, offset_days=offset)
