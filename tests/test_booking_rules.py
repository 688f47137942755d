"""plans.booking's rules as plain functions: clashes, hours, free slots and placement, no DB."""

import random
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter
from zoneinfo import ZoneInfo

import pytest

from plans.booking import Availability, Busy, Slot, free_slots, place, problems, tolerance_days

LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 1, 5)
TUESDAY = date(2026, 1, 6)
WEDNESDAY = date(2026, 1, 7)
THURSDAY = date(2026, 1, 8)
FRIDAY = date(2026, 1, 9)
SUNDAY = date(2026, 1, 11)
LABEL = "Fractional laser, CX-000042, 09:00–09:30"
HALF_HOUR = timedelta(minutes=30)


# --- builders -------------------------------------------------------------------------------


def hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def at(day: date, text: str) -> datetime:
    """A wall-clock time in London on `day`."""
    return datetime.combine(day, hm(text)).replace(tzinfo=LONDON)


def spans(*pairs: str) -> list[tuple[time, time]]:
    """spans("09:00-13:00", "14:00-18:00")"""
    return [tuple(hm(part) for part in pair.split("-")) for pair in pairs]


def weekdays(*pairs: str, days=range(5)) -> dict[int, list[tuple[time, time]]]:
    return {weekday: spans(*pairs) for weekday in days}


def availability(
    *,
    busy=(),
    opening=None,
    closures=(),
    working=None,
    absences=None,
    name="",
) -> Availability:
    """A London diary open 09:00-18:00 on weekdays where clinicians 1 and 2 work those hours."""
    week = weekdays("09:00-18:00")
    return Availability(
        tz=LONDON,
        opening=week if opening is None else opening,
        closures=list(closures),
        working={1: week, 2: week} if working is None else working,
        absences=absences or {},
        busy=list(busy),
        location_name=name,
    )


def held(kind, id, day, start, end, *, label=LABEL, appointment=None) -> Busy:
    """A busy row as the diary loads it from the database: in UTC."""
    return Busy(
        kind,
        id,
        at(day, start).astimezone(UTC),
        at(day, end).astimezone(UTC),
        label,
        appointment,
    )


def slot(day, start, end, *, clinician=1, room=None, device=None) -> Slot:
    return Slot(at(day, start), at(day, end), clinician, room, device)


def found(problem_list):
    return [(p.code, p.message, p.overridable) for p in problem_list]


def described(slots):
    """Slots as a person reads them: local start and end, clinician, room, device."""
    return [
        (
            f"{s.start.astimezone(LONDON):%Y-%m-%d %H:%M}",
            f"{s.end.astimezone(LONDON):%H:%M}",
            s.clinician,
            s.room,
            s.device,
        )
        for s in slots
    ]


def search(av, **options):
    """free_slots for a 30-minute visit with clinician 1 on Monday 5 Jan 2026 onwards."""
    arguments = {
        "duration": HALF_HOUR,
        "clinicians": [1],
        "rooms": None,
        "devices": None,
        "patient": None,
        "after": at(MONDAY, "09:00"),
        "until": at(MONDAY + timedelta(days=13), "23:59"),
    }
    arguments.update(options)
    return free_slots(av, **arguments)


# --- clashes --------------------------------------------------------------------------------

WHO = {
    "clinician": "The clinician",
    "room": "The room",
    "device": "The device",
    "patient": "The patient",
}
MINE = {"clinician": 1, "room": 10, "device": 20, "patient": 30}


@pytest.mark.parametrize("kind", ["clinician", "room", "device", "patient"])
def test_each_resource_clashes_on_its_own_and_the_message_names_the_other_appointment(kind):
    av = availability(busy=[held(kind, MINE[kind], MONDAY, "09:00", "09:30")])
    result = problems(av, slot(MONDAY, "09:15", "09:45", room=10, device=20), patient=30)
    assert found(result) == [
        ("clash", f"{WHO[kind]} already has {LABEL} at that time.", False),
    ]


@pytest.mark.parametrize("kind", ["clinician", "room", "device", "patient"])
def test_a_different_resource_busy_at_the_same_time_is_no_clash(kind):
    other = {"clinician": 2, "room": 11, "device": 21, "patient": 31}
    av = availability(busy=[held(kind, other[kind], MONDAY, "09:00", "09:30")])
    result = problems(av, slot(MONDAY, "09:15", "09:45", room=10, device=20), patient=30)
    assert result == []


def test_all_four_resources_clash_at_once_in_the_order_clinician_room_device_patient():
    av = availability(
        busy=[
            held("patient", 30, MONDAY, "09:00", "09:30", label="D"),
            held("device", 20, MONDAY, "09:00", "09:30", label="C"),
            held("room", 10, MONDAY, "09:00", "09:30", label="B"),
            held("clinician", 1, MONDAY, "09:00", "09:30", label="A"),
        ]
    )
    result = problems(av, slot(MONDAY, "09:00", "09:30", room=10, device=20), patient=30)
    assert found(result) == [
        ("clash", "The clinician already has A at that time.", False),
        ("clash", "The room already has B at that time.", False),
        ("clash", "The device already has C at that time.", False),
        ("clash", "The patient already has D at that time.", False),
    ]


@pytest.mark.parametrize("kind", ["clinician", "room", "device", "patient"])
def test_touching_appointments_do_not_clash_either_way_round(kind):
    av = availability(busy=[held(kind, MINE[kind], MONDAY, "09:30", "10:00")])
    before = slot(MONDAY, "09:00", "09:30", room=10, device=20)
    after = slot(MONDAY, "10:00", "10:30", room=10, device=20)
    assert problems(av, before, patient=30) == []
    assert problems(av, after, patient=30) == []


@pytest.mark.parametrize(
    "start,end",
    [("09:29", "09:59"), ("09:01", "09:31"), ("09:00", "09:31"), ("09:59", "10:29")],
)
def test_one_minute_of_overlap_is_a_clash(start, end):
    av = availability(busy=[held("clinician", 1, MONDAY, "09:30", "10:00")])
    result = problems(av, slot(MONDAY, start, end), patient=None)
    assert found(result) == [("clash", f"The clinician already has {LABEL} at that time.", False)]


def test_an_appointment_inside_a_longer_one_clashes():
    av = availability(busy=[held("room", 10, MONDAY, "09:00", "12:00")])
    result = problems(av, slot(MONDAY, "10:00", "10:15", room=10), patient=None)
    assert [p.code for p in result] == ["clash"]


def test_a_clash_is_found_behind_an_earlier_appointment_of_the_same_resource():
    av = availability(
        busy=[
            held("room", 11, MONDAY, "09:00", "12:00"),
            held("clinician", 1, MONDAY, "09:00", "09:30", label="first"),
            held("clinician", 1, MONDAY, "10:00", "10:30", label="second"),
        ]
    )
    result = problems(av, slot(MONDAY, "10:15", "10:45"), patient=None)
    assert found(result) == [("clash", "The clinician already has second at that time.", False)]


def test_the_appointment_being_moved_is_ignored_but_others_are_not():
    av = availability(
        busy=[
            held("clinician", 1, MONDAY, "09:00", "09:30", appointment=7),
            held("patient", 30, MONDAY, "09:00", "09:30", appointment=7),
        ]
    )
    moved = slot(MONDAY, "09:15", "09:45")
    assert problems(av, moved, patient=30, ignore={7}) == []
    assert [p.code for p in problems(av, moved, patient=30, ignore={8})] == ["clash", "clash"]


def test_names_are_used_in_the_clash_message_with_a_capital_first_letter():
    av = availability(
        busy=[
            held("clinician", 1, MONDAY, "09:00", "09:30"),
            held("room", 10, MONDAY, "09:00", "09:30"),
        ]
    )
    names = {("clinician", 1): "Dr Okafor", ("room", 10): "treatment room 2"}
    result = problems(av, slot(MONDAY, "09:00", "09:30", room=10), patient=None, names=names)
    assert found(result) == [
        ("clash", f"Dr Okafor already has {LABEL} at that time.", False),
        ("clash", f"Treatment room 2 already has {LABEL} at that time.", False),
    ]


def test_a_clash_comes_before_a_closure():
    av = availability(
        busy=[held("room", 10, MONDAY, "09:00", "09:30")],
        closures=[(MONDAY, MONDAY, "Staff training")],
    )
    result = problems(av, slot(MONDAY, "09:00", "09:30", room=10), patient=None)
    assert [(p.code, p.overridable) for p in result] == [("clash", False), ("closure", True)]


# --- hours, closures, working patterns, absences --------------------------------------------


def test_a_closure_names_its_reason_and_can_be_overridden():
    bank_holiday = date(2026, 5, 4)
    av = availability(closures=[(bank_holiday, bank_holiday, "Bank holiday")], name="Harbour")
    result = problems(av, slot(bank_holiday, "10:00", "10:30"), patient=None)
    assert found(result) == [
        ("closure", "Harbour is closed on 4 May 2026 (Bank holiday).", True),
    ]


def test_a_closure_covers_every_day_from_its_first_to_its_last():
    av = availability(closures=[(MONDAY, FRIDAY, "Refurbishment")])
    for day in (MONDAY, WEDNESDAY, FRIDAY):
        result = problems(av, slot(day, "10:00", "10:30"), patient=None)
        assert found(result) == [
            ("closure", f"The clinic is closed on {day.day} Jan 2026 (Refurbishment).", True),
        ]
    assert problems(av, slot(MONDAY + timedelta(days=7), "10:00", "10:30"), patient=None) == []


def test_a_weekday_without_opening_hours_is_closed_and_can_be_overridden():
    av = availability(working={1: weekdays("09:00-18:00", days=range(7))})
    result = problems(av, slot(SUNDAY, "10:00", "10:30"), patient=None)
    assert found(result) == [("closed", "The clinic is closed on Sundays.", True)]


def test_two_opening_spans_a_day_leave_the_lunch_break_outside_hours():
    av = availability(opening=weekdays("09:00-13:00", "14:00-18:00"))
    across_lunch = problems(av, slot(MONDAY, "12:45", "13:15"), patient=None)
    assert found(across_lunch) == [
        (
            "outside_hours",
            "The clinic is open 09:00–13:00 and 14:00–18:00 on Mondays; "
            "12:45–13:15 is outside those hours.",
            True,
        )
    ]
    assert [p.code for p in problems(av, slot(MONDAY, "13:00", "14:00"), patient=None)] == [
        "outside_hours"
    ]
    assert problems(av, slot(MONDAY, "14:00", "14:30"), patient=None) == []
    assert problems(av, slot(MONDAY, "12:30", "13:00"), patient=None) == []


def test_before_opening_and_after_closing_are_outside_hours():
    av = availability(working={1: weekdays("08:00-20:00")})
    early = problems(av, slot(MONDAY, "08:45", "09:15"), patient=None)
    late = problems(av, slot(MONDAY, "17:45", "18:15"), patient=None)
    assert [(p.code, p.overridable) for p in early] == [("outside_hours", True)]
    assert [(p.code, p.overridable) for p in late] == [("outside_hours", True)]
    assert problems(av, slot(MONDAY, "17:30", "18:00"), patient=None) == []


def test_a_clinician_who_does_not_work_that_weekday_can_be_overridden():
    av = availability(working={1: weekdays("09:00-18:00", days=[0, 2, 4])})
    result = problems(
        av, slot(TUESDAY, "10:00", "10:30"), patient=None, names={("clinician", 1): "Dr Okafor"}
    )
    assert found(result) == [("not_working", "Dr Okafor does not work here on Tuesdays.", True)]
    assert problems(av, slot(WEDNESDAY, "10:00", "10:30"), patient=None) == []


def test_an_absent_clinician_names_the_reason_and_can_be_overridden():
    av = availability(absences={1: [(MONDAY, FRIDAY, "Annual leave")]})
    result = problems(av, slot(WEDNESDAY, "10:00", "10:30"), patient=None)
    assert found(result) == [
        ("absent", "The clinician is away on 7 Jan 2026 (Annual leave).", True),
    ]
    assert problems(av, slot(WEDNESDAY, "10:00", "10:30", clinician=2), patient=None) == []


def test_clinician_hours_narrower_than_opening_hours_are_enforced_and_overridable():
    av = availability(working={1: weekdays("10:00-16:00")})
    early = problems(av, slot(MONDAY, "09:00", "09:30"), patient=None)
    assert found(early) == [
        (
            "not_working",
            "The clinician works 10:00–16:00 on Mondays here; 09:00–09:30 is outside those hours.",
            True,
        )
    ]
    late = problems(av, slot(MONDAY, "15:45", "16:15"), patient=None)
    assert [(p.code, p.overridable) for p in late] == [("not_working", True)]
    assert problems(av, slot(MONDAY, "15:30", "16:00"), patient=None) == []


def test_a_slot_without_a_clinician_is_only_checked_against_the_clinic():
    av = availability(working={})
    assert problems(av, slot(MONDAY, "10:00", "10:30", clinician=None), patient=None) == []


# --- free slots -----------------------------------------------------------------------------


def test_free_slots_are_the_next_three_after_a_busy_block():
    av = availability(busy=[held("clinician", 1, MONDAY, "09:00", "10:00")])
    assert described(search(av)) == [
        ("2026-01-05 10:00", "10:30", 1, None, None),
        ("2026-01-05 10:15", "10:45", 1, None, None),
        ("2026-01-05 10:30", "11:00", 1, None, None),
    ]


def test_free_slots_use_another_room_while_the_first_is_busy_and_prefer_the_first_again():
    av = availability(busy=[held("room", 10, MONDAY, "09:00", "10:00")])
    assert described(search(av, rooms=[10, 11], limit=5)) == [
        ("2026-01-05 09:00", "09:30", 1, 11, None),
        ("2026-01-05 09:15", "09:45", 1, 11, None),
        ("2026-01-05 09:30", "10:00", 1, 11, None),
        ("2026-01-05 09:45", "10:15", 1, 11, None),
        ("2026-01-05 10:00", "10:30", 1, 10, None),
    ]


def test_free_slots_wait_until_a_room_is_free_when_every_room_is_busy():
    av = availability(
        busy=[
            held("room", 10, MONDAY, "09:00", "10:00"),
            held("room", 11, MONDAY, "09:00", "10:45"),
        ]
    )
    assert [s[0] for s in described(search(av, rooms=[10, 11]))] == [
        "2026-01-05 10:00",
        "2026-01-05 10:15",
        "2026-01-05 10:30",
    ]


def test_a_visit_that_needs_a_room_gets_no_slot_when_the_location_has_none():
    assert search(availability(), rooms=[]) == []


def test_a_visit_that_needs_no_room_gets_slots_without_one():
    assert described(search(availability(), rooms=None)) == [
        ("2026-01-05 09:00", "09:30", 1, None, None),
        ("2026-01-05 09:15", "09:45", 1, None, None),
        ("2026-01-05 09:30", "10:00", 1, None, None),
    ]


def test_a_visit_that_needs_a_device_gets_no_slot_when_the_location_has_none():
    assert search(availability(), devices=[]) == []


def test_a_visit_that_needs_a_device_waits_for_it_and_gets_it():
    av = availability(busy=[held("device", 20, MONDAY, "09:00", "09:45")])
    assert described(search(av, devices=[20], rooms=[10])) == [
        ("2026-01-05 09:45", "10:15", 1, 10, 20),
        ("2026-01-05 10:00", "10:30", 1, 10, 20),
        ("2026-01-05 10:15", "10:45", 1, 10, 20),
    ]


def test_a_tuesday_afternoon_gives_only_tuesday_afternoon_slots():
    result = search(availability(), weekdays={1}, between=(hm("12:00"), hm("18:00")), limit=100)
    afternoon = [f"{12 + m // 60:02d}:{m % 60:02d}" for m in range(0, 5 * 60 + 31, 15)]
    assert [s[0] for s in described(result)] == [
        f"{day} {start}" for day in ("2026-01-06", "2026-01-13") for start in afternoon
    ]
    assert len(result) == 46
    assert {s.start.astimezone(LONDON).weekday() for s in result} == {1}


def test_a_patient_busy_elsewhere_blocks_the_slot():
    av = availability(
        busy=[
            held("patient", 30, MONDAY, "09:00", "10:30"),
            held("clinician", 2, MONDAY, "09:00", "10:30"),
            held("room", 11, MONDAY, "09:00", "10:30"),
        ]
    )
    assert [s[0] for s in described(search(av, patient=30, rooms=[10]))] == [
        "2026-01-05 10:30",
        "2026-01-05 10:45",
        "2026-01-05 11:00",
    ]
    assert described(search(av, patient=31, rooms=[10]))[0][0] == "2026-01-05 09:00"


def test_between_several_clinicians_the_earliest_free_time_wins():
    av = availability(
        busy=[
            held("clinician", 1, MONDAY, "09:00", "11:00"),
            held("clinician", 2, MONDAY, "09:00", "10:00"),
        ]
    )
    assert described(search(av, clinicians=[1, 2], limit=5)) == [
        ("2026-01-05 10:00", "10:30", 2, None, None),
        ("2026-01-05 10:15", "10:45", 2, None, None),
        ("2026-01-05 10:30", "11:00", 2, None, None),
        ("2026-01-05 10:45", "11:15", 2, None, None),
        ("2026-01-05 11:00", "11:30", 1, None, None),
    ]


@pytest.mark.parametrize("order", [[1, 2], [2, 1]])
def test_at_equal_times_the_first_clinician_in_the_list_wins(order):
    assert described(search(availability(), clinicians=order)) == [
        ("2026-01-05 09:00", "09:30", order[0], None, None),
        ("2026-01-05 09:15", "09:45", order[0], None, None),
        ("2026-01-05 09:30", "10:00", order[0], None, None),
    ]


def test_a_clinician_with_narrower_hours_is_offered_only_inside_them():
    av = availability(working={1: weekdays("10:00-16:00")})
    result = search(av, limit=100, until=at(MONDAY, "23:59"))
    assert (described(result)[0][0], described(result)[-1][0]) == (
        "2026-01-05 10:00",
        "2026-01-05 15:30",
    )
    assert len(result) == 23


def test_hours_that_start_off_the_grid_give_slots_from_the_next_quarter_hour():
    av = availability(opening=weekdays("09:10-18:00"), working={1: weekdays("09:00-17:50")})
    result = search(av, limit=100, until=at(MONDAY, "23:59"))
    assert (described(result)[0][0], described(result)[-1][0]) == (
        "2026-01-05 09:15",
        "2026-01-05 17:15",
    )
    assert len(result) == 33


def test_free_slots_skip_closures_absences_and_days_off():
    av = availability(
        closures=[(MONDAY, MONDAY, "Bank holiday")],
        absences={1: [(TUESDAY, TUESDAY, "Course")]},
        working={1: weekdays("09:00-18:00", days=[0, 1, 3])},
    )
    assert [s[0] for s in described(search(av))] == [
        "2026-01-08 09:00",
        "2026-01-08 09:15",
        "2026-01-08 09:30",
    ]


@pytest.mark.parametrize(
    "after,first",
    [("09:05", "09:15"), ("09:15", "09:15"), ("09:16", "09:30"), ("09:44", "09:45")],
)
def test_after_is_rounded_up_to_the_fifteen_minute_grid(after, first):
    result = search(availability(), after=at(MONDAY, after))
    assert [s.start for s in result] == [
        at(MONDAY, first) + step * timedelta(minutes=15) for step in range(3)
    ]


def test_an_after_given_in_utc_is_the_same_instant():
    result = search(availability(), after=at(MONDAY, "10:05").astimezone(UTC))
    assert described(result)[0][0] == "2026-01-05 10:15"


def test_nothing_is_offered_past_until():
    result = search(availability(), until=at(MONDAY, "10:00"), limit=100)
    assert [s[:2] for s in described(result)] == [
        ("2026-01-05 09:00", "09:30"),
        ("2026-01-05 09:15", "09:45"),
        ("2026-01-05 09:30", "10:00"),
    ]


def test_a_search_that_ends_before_it_starts_finds_nothing():
    assert search(availability(), until=at(MONDAY, "08:00"), limit=100) == []


# --- place ----------------------------------------------------------------------------------


def placed(av, *, day=WEDNESDAY, preferred="10:00", tolerance=2, **options):
    arguments = {
        "duration": HALF_HOUR,
        "clinician": 1,
        "rooms": None,
        "devices": None,
        "patient": None,
    }
    arguments.update(options)
    result = place(av, day=day, preferred=hm(preferred), tolerance_days=tolerance, **arguments)
    return None if result is None else described([result])[0]


def test_place_takes_the_preferred_time_when_it_is_free():
    assert placed(availability()) == ("2026-01-07 10:00", "10:30", 1, None, None)


def test_place_takes_the_next_free_time_later_that_day_when_the_preferred_one_is_busy():
    av = availability(busy=[held("clinician", 1, WEDNESDAY, "10:00", "11:30")])
    assert placed(av) == ("2026-01-07 11:30", "12:00", 1, None, None)


def test_place_picks_a_free_room_for_the_visit():
    av = availability(busy=[held("room", 10, WEDNESDAY, "10:00", "10:30")])
    assert placed(av, rooms=[10, 11]) == ("2026-01-07 10:00", "10:30", 1, 11, None)


def test_place_takes_the_latest_earlier_time_when_nothing_is_free_later_that_day():
    av = availability(busy=[held("clinician", 1, WEDNESDAY, "10:00", "18:00")])
    assert placed(av) == ("2026-01-07 09:30", "10:00", 1, None, None)


@pytest.mark.parametrize(
    "closed,expected",
    [
        ([WEDNESDAY], "2026-01-08 10:00"),
        ([WEDNESDAY, THURSDAY], "2026-01-06 10:00"),
        ([TUESDAY, WEDNESDAY, THURSDAY], "2026-01-09 10:00"),
        ([TUESDAY, WEDNESDAY, THURSDAY, FRIDAY], "2026-01-05 10:00"),
    ],
)
def test_place_moves_a_closed_day_in_the_order_plus_one_minus_one_plus_two_minus_two(
    closed, expected
):
    av = availability(closures=[(day, day, "Closed") for day in closed])
    assert placed(av, tolerance=2)[0] == expected


def test_place_gives_none_when_nothing_fits_within_the_tolerance():
    closed = [TUESDAY, WEDNESDAY, THURSDAY]
    av = availability(closures=[(day, day, "Closed") for day in closed])
    assert placed(av, tolerance=1) is None
    assert placed(availability(closures=[(WEDNESDAY, WEDNESDAY, "Closed")]), tolerance=0) is None


# --- tolerance ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interval,days",
    [(28, 3), (0, 3), (7, 1), (42, 4), (1, 1)],
)
def test_tolerance_is_a_tenth_of_the_interval_at_least_one_and_three_for_one_offs(interval, days):
    assert tolerance_days(interval) == days


# --- daylight saving ------------------------------------------------------------------------

CLOCKS_FORWARD = date(2026, 3, 29)
CLOCKS_BACK = date(2026, 10, 25)


def every_day_nine_to_five() -> Availability:
    week = weekdays("09:00-17:00", days=range(7))
    return availability(opening=week, working={1: week})


def whole_day(day):
    return search(
        every_day_nine_to_five(),
        duration=timedelta(minutes=60),
        after=at(day, "00:00"),
        until=at(day, "23:59"),
        limit=100,
    )


@pytest.mark.parametrize("day", [CLOCKS_FORWARD, CLOCKS_BACK])
def test_on_the_days_the_clocks_change_the_slots_keep_to_the_local_wall_clock(day):
    result = whole_day(day)
    assert len(result) == 29
    local_starts = [s.start.astimezone(LONDON) for s in result]
    assert local_starts[0].date() == day
    assert f"{local_starts[0]:%H:%M}" == "09:00"
    assert f"{local_starts[-1]:%H:%M}" == "16:00"
    minutes = [t.hour * 60 + t.minute for t in local_starts]
    assert [b - a for a, b in zip(minutes, minutes[1:], strict=False)] == [15] * 28
    assert {s.end.astimezone(UTC) - s.start.astimezone(UTC) for s in result} == {
        timedelta(minutes=60)
    }
    assert {f"{s.end.astimezone(LONDON):%H:%M}" for s in result[-1:]} == {"17:00"}


def test_a_nine_oclock_slot_has_a_different_utc_offset_either_side_of_the_summer():
    spring, autumn = whole_day(CLOCKS_FORWARD)[0].start, whole_day(CLOCKS_BACK)[0].start
    assert spring.utcoffset() == timedelta(hours=1)
    assert autumn.utcoffset() == timedelta(0)
    assert f"{spring.astimezone(UTC):%H:%M}" == "08:00"
    assert f"{autumn.astimezone(UTC):%H:%M}" == "09:00"


@pytest.mark.parametrize("day", [CLOCKS_FORWARD, CLOCKS_BACK])
def test_a_utc_busy_row_blocks_the_same_local_hour_on_the_days_the_clocks_change(day):
    av = every_day_nine_to_five()
    av = Availability(
        tz=av.tz,
        opening=av.opening,
        closures=av.closures,
        working=av.working,
        absences=av.absences,
        busy=[held("clinician", 1, day, "09:00", "10:00")],
    )
    assert [p.code for p in problems(av, slot(day, "09:30", "10:00"), patient=None)] == ["clash"]
    assert problems(av, slot(day, "10:00", "11:00"), patient=None) == []
    first = search(av, after=at(day, "00:00"), until=at(day, "23:59"))[0]
    assert first.start == at(day, "10:00")


# Found by a test: the lookup's lower bound was taken on the wall clock, an hour short across
# the clocks going forward, so a night appointment starting before it was never looked at.
def test_a_night_appointment_across_the_spring_forward_hour_still_clashes():
    night = Busy(
        "clinician",
        1,
        datetime(2026, 3, 28, 23, 30, tzinfo=UTC),  # 23:30 GMT
        datetime(2026, 3, 29, 2, 30, tzinfo=UTC),  # 03:30 BST, three real hours later
        "On call",
    )
    all_day = weekdays("00:00-23:59", days=range(7))
    av = availability(busy=[night], opening=all_day, working={1: all_day})
    result = problems(av, slot(CLOCKS_FORWARD, "03:00", "03:15"), patient=None)
    assert found(result) == [("clash", "The clinician already has On call at that time.", False)]


# --- performance ----------------------------------------------------------------------------


def crowded_diary() -> Availability:
    """60 days, 10 clinicians, 5 rooms, 1,000 appointments held as 2,000 busy rows."""
    chance = random.Random(2026)
    rows = []
    for appointment in range(1000):
        day = MONDAY + timedelta(days=chance.randrange(60))
        start = at(day, "09:00") + timedelta(minutes=15 * chance.randrange(33))
        end = start + timedelta(minutes=chance.choice([15, 30, 45, 60]))
        clinician, room = chance.randrange(1, 11), chance.randrange(1, 6)
        label = f"Visit {appointment}"
        rows.append(Busy("clinician", clinician, start, end, label, appointment))
        rows.append(Busy("room", room, start, end, label, appointment))
    week = weekdays("09:00-18:00", days=range(7))
    return availability(busy=rows, opening=week, working=dict.fromkeys(range(1, 11), week))


@pytest.mark.parametrize("limit", [3, 50])
def test_free_slots_over_sixty_crowded_days_is_fast(limit):
    av = crowded_diary()
    assert len(av.busy) == 2000
    started = perf_counter()
    result = free_slots(
        av,
        duration=timedelta(minutes=45),
        clinicians=list(range(1, 11)),
        rooms=list(range(1, 6)),
        devices=None,
        patient=None,
        after=at(MONDAY, "09:00"),
        until=at(MONDAY + timedelta(days=60), "18:00"),
        limit=limit,
    )
    elapsed = perf_counter() - started
    assert elapsed < 0.2, f"free_slots took {elapsed:.3f} s"
    assert len(result) == limit
    assert [s.start for s in result] == sorted({s.start for s in result})
    for found_slot in result:
        assert problems(av, found_slot, patient=None) == []
