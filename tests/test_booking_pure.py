"""plans.booking, the appointment book's rules, without a database."""

import time as clock
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from plans import booking

LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 1, 5)
WEEK = {wd: [(time(9), time(17))] for wd in range(5)}


def at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute)).replace(tzinfo=LONDON)


def diary(busy=(), opening=None, working=None, closures=(), absences=None, name="Harbour"):
    return booking.Availability(
        tz=LONDON,
        opening=WEEK if opening is None else opening,
        closures=list(closures),
        working={1: WEEK, 2: WEEK} if working is None else working,
        absences=absences or {},
        busy=list(busy),
        location_name=name,
    )


def held(kind, id, day, start, end, label="Cryotherapy, CX-000001, 09:00–09:30", pk=99):
    return booking.Busy(kind, id, at(day, *start), at(day, *end), label, pk)


def slot(day, start, end, clinician=1, room=10, device=None):
    return booking.Slot(at(day, *start), at(day, *end), clinician, room, device)


# --- clashes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,id",
    [("clinician", 1), ("room", 10), ("device", 20), ("patient", 30)],
)
def test_each_resource_clashes_on_its_own_naming_the_other_appointment(kind, id):
    av = diary([held(kind, id, MONDAY, (9, 0), (9, 30))])
    found = booking.problems(av, slot(MONDAY, (9, 15), (9, 45), device=20), patient=30)
    assert [(p.code, p.overridable) for p in found] == [("clash", False)]
    assert "Cryotherapy, CX-000001, 09:00–09:30" in found[0].message


def test_touching_appointments_do_not_clash_and_one_minute_of_overlap_does():
    av = diary([held("clinician", 1, MONDAY, (9, 0), (9, 30))])
    assert booking.problems(av, slot(MONDAY, (9, 30), (10, 0)), patient=None) == []
    before = booking.problems(av, slot(MONDAY, (8, 30), (9, 0)), patient=None)
    assert "clash" not in [p.code for p in before]  # only outside hours (opens 09:00)
    overlap = booking.problems(av, slot(MONDAY, (9, 29), (10, 0)), patient=None)
    assert [p.code for p in overlap] == ["clash"]


def test_the_appointment_being_moved_does_not_clash_with_itself():
    av = diary([held("clinician", 1, MONDAY, (9, 0), (9, 30), pk=7)])
    assert booking.problems(av, slot(MONDAY, (9, 15), (9, 45)), patient=None, ignore={7}) == []


def test_a_long_earlier_appointment_is_still_found():
    av = diary(
        [
            held("room", 10, MONDAY, (9, 0), (12, 0), label="Long"),
            held("room", 10, MONDAY, (12, 0), (12, 15), label="Short"),
        ]
    )
    found = booking.problems(av, slot(MONDAY, (11, 0), (11, 30), clinician=2), patient=None)
    assert [p.message for p in found] == ["The room already has Long at that time."]


def test_names_are_used_in_messages():
    av = diary([held("clinician", 1, MONDAY, (9, 0), (9, 30))])
    found = booking.problems(
        av, slot(MONDAY, (9, 0), (9, 30)), patient=None, names={("clinician", 1): "Dr Stroud"}
    )
    assert found[0].message.startswith("Dr Stroud already has")


# --- hours, closures, absences --------------------------------------------------------------


def test_a_closure_names_its_reason_and_may_be_overridden():
    av = diary(closures=[(MONDAY, MONDAY, "Bank holiday")])
    (found,) = booking.problems(av, slot(MONDAY, (10, 0), (10, 30)), patient=None)
    assert (found.code, found.overridable) == ("closure", True)
    assert found.message == "Harbour is closed on 5 Jan 2026 (Bank holiday)."


def test_a_day_without_opening_hours_is_closed():
    sunday = MONDAY - timedelta(days=1)
    codes = [
        p.code for p in booking.problems(diary(), slot(sunday, (10, 0), (10, 30)), patient=None)
    ]
    assert codes == ["closed", "not_working"]


def test_the_gap_between_two_opening_spans_is_outside_hours():
    split = {0: [(time(9), time(13)), (time(14), time(18))]}
    av = diary(opening=split, working={1: split})
    lunch = booking.problems(av, slot(MONDAY, (12, 45), (13, 15)), patient=None)
    assert lunch[0].code == "outside_hours"
    assert "09:00–13:00 and 14:00–18:00 on Mondays" in lunch[0].message
    assert booking.problems(av, slot(MONDAY, (14, 0), (14, 30)), patient=None) == []


def test_a_clinician_away_or_not_working_is_refused_with_the_reason():
    away = diary(absences={1: [(MONDAY, MONDAY, "Annual leave")]})
    (found,) = booking.problems(away, slot(MONDAY, (10, 0), (10, 30)), patient=None)
    assert (found.code, found.overridable) == ("absent", True)
    assert "Annual leave" in found.message
    part_time = diary(working={1: {0: [(time(9), time(12))]}})
    (late,) = booking.problems(part_time, slot(MONDAY, (12, 0), (12, 30)), patient=None)
    assert late.code == "not_working" and "09:00–12:00" in late.message


# --- free slots -----------------------------------------------------------------------------


def starts(slots):
    return [s.start.astimezone(LONDON).strftime("%a %H:%M") for s in slots]


def test_the_next_three_free_slots_after_a_busy_morning():
    av = diary([held("clinician", 1, MONDAY, (9, 0), (10, 0))])
    found = booking.free_slots(
        av,
        duration=timedelta(minutes=30),
        clinicians=[1],
        rooms=[10],
        devices=None,
        patient=None,
        after=at(MONDAY, 8, 50),
        until=at(MONDAY, 18),
    )
    assert starts(found) == ["Mon 10:00", "Mon 10:15", "Mon 10:30"]


def test_another_room_is_taken_when_the_first_is_busy_and_none_means_no_slot():
    av = diary([held("room", 10, MONDAY, (9, 0), (17, 0))])
    args = {
        "duration": timedelta(minutes=30),
        "clinicians": [1],
        "devices": None,
        "patient": None,
        "after": at(MONDAY, 9),
        "until": at(MONDAY, 17),
        "limit": 1,
    }
    assert [s.room for s in booking.free_slots(av, rooms=[10, 11], **args)] == [11]
    assert booking.free_slots(av, rooms=[], **args) == []
    assert booking.free_slots(av, rooms=None, **args)[0].room is None


def test_a_tuesday_afternoon_with_the_laser():
    av = diary([held("device", 20, MONDAY + timedelta(days=1), (12, 0), (13, 0))])
    found = booking.free_slots(
        av,
        duration=timedelta(minutes=45),
        clinicians=[1],
        rooms=[10],
        devices=[20],
        patient=None,
        after=at(MONDAY, 9),
        until=at(MONDAY + timedelta(days=14), 18),
        weekdays={1},
        between=(time(12), time(18)),
    )
    assert starts(found) == ["Tue 13:00", "Tue 13:15", "Tue 13:30"]
    assert {s.device for s in found} == {20}


def test_the_earliest_clinician_wins_and_the_first_listed_at_equal_times():
    def first_free(av):
        (found,) = booking.free_slots(
            av,
            duration=timedelta(minutes=30),
            clinicians=[1, 2],
            rooms=None,
            devices=None,
            patient=None,
            after=at(MONDAY, 9),
            until=at(MONDAY, 17),
            limit=1,
        )
        return found.clinician, found.start.astimezone(LONDON).time()

    assert first_free(diary()) == (1, time(9))
    assert first_free(diary([held("clinician", 1, MONDAY, (9, 0), (9, 30))])) == (2, time(9))


def test_a_busy_patient_blocks_the_slot():
    av = diary([held("patient", 30, MONDAY, (9, 0), (10, 0))])
    found = booking.free_slots(
        av,
        duration=timedelta(minutes=30),
        clinicians=[1],
        rooms=None,
        devices=None,
        patient=30,
        after=at(MONDAY, 9),
        until=at(MONDAY, 17),
        limit=1,
    )
    assert starts(found) == ["Mon 10:00"]


# --- placing planned visits -----------------------------------------------------------------


def place(av, day, hour, tolerance=3):
    return booking.place(
        av,
        day=day,
        preferred=time(hour),
        duration=timedelta(minutes=30),
        clinician=1,
        rooms=[10],
        devices=None,
        patient=None,
        tolerance_days=tolerance,
    )


def test_place_takes_the_preferred_time_else_later_else_earlier_that_day():
    assert place(diary(), MONDAY, 9).start == at(MONDAY, 9)
    busy_nine = diary([held("clinician", 1, MONDAY, (9, 0), (9, 30))])
    assert place(busy_nine, MONDAY, 9).start == at(MONDAY, 9, 30)
    late_full = diary([held("clinician", 1, MONDAY, (15, 0), (17, 0))])
    assert place(late_full, MONDAY, 16).start == at(MONDAY, 14, 30)


def test_place_tries_the_next_day_then_the_day_before_then_gives_up():
    wednesday = MONDAY + timedelta(days=2)
    closed = diary(closures=[(wednesday, wednesday, "Training")])
    assert place(closed, wednesday, 9).start == at(wednesday + timedelta(days=1), 9)
    closed_late = diary(closures=[(wednesday, wednesday + timedelta(days=1), "Training")])
    assert place(closed_late, wednesday, 9).start == at(wednesday - timedelta(days=1), 9)
    assert place(closed_late, wednesday, 9, tolerance=0) is None


@pytest.mark.parametrize(("interval", "days"), [(28, 3), (0, 3), (7, 1), (42, 4), (1, 1)])
def test_tolerance_is_a_tenth_of_the_interval(interval, days):
    assert booking.tolerance_days(interval) == days


# --- daylight saving ---------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_the_days_the_clocks_change_keep_the_wall_clock_hours(day):
    every_day = {wd: [(time(9), time(17))] for wd in range(7)}
    av = diary(opening=every_day, working={1: every_day})
    found = booking.free_slots(
        av,
        duration=timedelta(minutes=60),
        clinicians=[1],
        rooms=None,
        devices=None,
        patient=None,
        after=at(day, 0),
        until=at(day, 23, 59),
        limit=100,
    )
    local = [s.start.astimezone(LONDON) for s in found]
    assert len(found) == 29
    assert local[0].time() == time(9) and local[-1].time() == time(16)
    assert all(b - a == timedelta(minutes=15) for a, b in zip(local, local[1:], strict=False))


def test_spring_and_autumn_nine_oclock_have_different_utc_offsets():
    assert at(date(2026, 3, 29), 9).utcoffset() != at(date(2026, 10, 26), 9).utcoffset()


# --- speed -----------------------------------------------------------------------------------


def test_free_slots_over_sixty_days_of_a_busy_diary_are_quick():
    busy = []
    for n in range(2000):
        day = MONDAY + timedelta(days=n % 60)
        start = (9 + (n // 60) % 8, 15 * (n % 4))
        end_minute = start[1] + 30
        end = (start[0] + end_minute // 60, end_minute % 60)
        busy.append(held("clinician", 1 + n % 10, day, start, end, pk=n))
        busy.append(held("room", 10 + n % 5, day, start, end, pk=n))
    av = diary(busy, working=dict.fromkeys(range(1, 11), WEEK))
    for limit in (3, 50):
        started = clock.perf_counter()
        found = booking.free_slots(
            av,
            duration=timedelta(minutes=45),
            clinicians=list(range(1, 11)),
            rooms=list(range(10, 15)),
            devices=None,
            patient=None,
            after=at(MONDAY, 9),
            until=at(MONDAY + timedelta(days=60), 17),
            limit=limit,
        )
        assert len(found) == limit
        assert clock.perf_counter() - started < 0.2
