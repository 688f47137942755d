"""The appointment book through the services and pages: clashes refused with the next free
slots, opening hours and closures, placement of plan visits, arrival steps, the day view."""

from datetime import date, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from clinic.models import (
    Absence,
    Closure,
    Device,
    DeviceKind,
    Location,
    OpeningHours,
    Room,
    WorkingPattern,
)
from clinic.roles import CLINICIAN
from plans import services
from plans.models import Session
from tests.factories import (
    TODAY,
    PatientFactory,
    UserFactory,
    course,
    frozen,
    make_plan,
)

pytestmark = pytest.mark.django_db

WEEKDAYS = range(5)


def local(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@pytest.fixture
def site():
    """A location open Monday to Friday 09:00-17:00 with two rooms, a laser and a cryo unit."""
    location = Location.objects.create(name="Harbour Street")
    for weekday in WEEKDAYS:
        OpeningHours.objects.create(
            location=location, weekday=weekday, starts=time(9), ends=time(17)
        )
    rooms = [Room.objects.create(location=location, name=f"Room {n}") for n in (1, 2)]
    laser = Device.objects.create(
        location=location, kind=DeviceKind.objects.get(code="pulsed_dye_laser"), name="V-Beam"
    )
    cryo = Device.objects.create(
        location=location, kind=DeviceKind.objects.get(code="cryotherapy_unit"), name="CryoPro"
    )
    return location, rooms, laser, cryo


def works(user, location, days=WEEKDAYS, starts=time(9), ends=time(17)):
    for weekday in days:
        WorkingPattern.objects.create(
            clinician=user, location=location, weekday=weekday, starts=starts, ends=ends
        )
    return user


@pytest.fixture
def doctor(site, clinician):
    return works(clinician, site[0])


def consult(patient, start, *, user, clinician, location, room=None, minutes=None, **extra):
    return services.appointment_book(
        patient=patient,
        kind=Session.Kind.CONSULTATION,
        start=start,
        minutes=minutes,
        clinician=clinician,
        location=location,
        room=room,
        user=user,
        **extra,
    )


MONDAY = TODAY  # 2026-01-05


# --- clashes --------------------------------------------------------------------------------


def test_a_consultation_gets_its_usual_length_and_a_free_room(site, doctor):
    location, rooms, _, _ = site
    visit = consult(
        PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=location
    )
    assert visit.ends_at - visit.scheduled_at == timedelta(minutes=30)
    assert visit.room == rooms[0]


def test_the_same_clinician_twice_at_once_is_refused_naming_the_other_and_offering_three_slots(
    site, doctor
):
    location = site[0]
    first = consult(
        PatientFactory(record_number="CX-000111"),
        local(MONDAY, 9),
        user=doctor,
        clinician=doctor,
        location=location,
    )
    with pytest.raises(services.BookingRefused) as refused:
        consult(
            PatientFactory(),
            local(MONDAY, 9, 15),
            user=doctor,
            clinician=doctor,
            location=location,
        )
    message = str(refused.value)
    assert "CX-000111" in message and "09:00" in message
    assert not refused.value.overridable
    assert [timezone.localtime(s.start).time() for s in refused.value.alternatives] == [
        time(9, 30),
        time(9, 45),
        time(10, 0),
    ]
    assert Session.objects.get() == first


@pytest.mark.parametrize("resource", ["room", "patient", "device"])
def test_a_room_a_patient_or_a_device_cannot_be_in_two_places_at_once(site, doctor, resource):
    location, rooms, laser, _ = site
    colleague = works(UserFactory(role=CLINICIAN), location)
    patient = PatientFactory()
    if resource == "device":
        make_plan(
            user=doctor,
            courses=[course("pulsed_dye_laser", 1)],
            start=MONDAY,
            location=location,
        )
        other = make_plan(
            user=colleague,
            clinician=colleague,
            courses=[course("pulsed_dye_laser", 1)],
            start=MONDAY,
            location=location,
        )
        first, second = Session.objects.order_by("scheduled_at")
        # Only one laser: the second visit waits until the first is over.
        assert first.device == second.device == laser
        assert second.scheduled_at >= first.ends_at
        assert other.sessions.get() == second
        return
    consult(
        patient, local(MONDAY, 11), user=doctor, clinician=doctor, location=location, room=rooms[0]
    )
    with pytest.raises(services.BookingRefused) as refused:
        consult(
            patient if resource == "patient" else PatientFactory(),
            local(MONDAY, 11),
            user=colleague,
            clinician=colleague,
            location=location,
            room=rooms[0] if resource == "room" else rooms[1],
        )
    assert "11:00" in str(refused.value)
    assert Session.objects.count() == 1


def test_a_chosen_room_that_is_taken_is_refused_but_no_room_chosen_takes_the_free_one(site, doctor):
    location, rooms, _, _ = site
    colleague = works(UserFactory(role=CLINICIAN), location)
    consult(PatientFactory(), local(MONDAY, 11), user=doctor, clinician=doctor, location=location)
    second = consult(
        PatientFactory(), local(MONDAY, 11), user=colleague, clinician=colleague, location=location
    )
    assert second.room == rooms[1]


def test_touching_appointments_are_not_a_clash(site, doctor):
    location = site[0]
    consult(PatientFactory(), local(MONDAY, 9), user=doctor, clinician=doctor, location=location)
    later = consult(
        PatientFactory(), local(MONDAY, 9, 30), user=doctor, clinician=doctor, location=location
    )
    assert timezone.localtime(later.scheduled_at).time() == time(9, 30)


# --- hours, closures, working patterns ------------------------------------------------------


@pytest.mark.parametrize(
    "start,why",
    [
        (local(MONDAY, 8), "outside"),
        (local(MONDAY, 16, 45), "outside"),  # 30 minutes would end after closing
        (local(MONDAY + timedelta(days=5), 10), "Saturday"),
    ],
)
def test_outside_opening_hours_is_refused_with_the_hours(site, doctor, start, why):
    with pytest.raises(services.BookingRefused) as refused:
        consult(PatientFactory(), start, user=doctor, clinician=doctor, location=site[0])
    assert refused.value.overridable
    assert refused.value.alternatives  # the next free slots
    assert not Session.objects.exists()


def test_a_closure_is_refused_naming_its_reason(site, doctor):
    Closure.objects.create(first_day=MONDAY, last_day=MONDAY, reason="Staff training day")
    with pytest.raises(services.BookingRefused, match="Staff training day"):
        consult(
            PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=site[0]
        )


def test_a_clinician_on_leave_or_not_working_that_day_is_refused(site, doctor):
    Absence.objects.create(
        clinician=doctor, first_day=MONDAY, last_day=MONDAY, reason="Annual leave"
    )
    with pytest.raises(services.BookingRefused, match="Annual leave"):
        consult(
            PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=site[0]
        )


def test_a_manager_books_outside_hours_with_a_written_reason_never_over_a_clash(
    site, doctor, manager
):
    location = site[0]
    early = consult(
        PatientFactory(),
        local(MONDAY, 8),
        user=manager,
        clinician=doctor,
        location=location,
        booking_override="Patient flies out at 10:00",
    )
    assert early.booking_override == "Patient flies out at 10:00"
    with pytest.raises(services.BookingRefused):
        consult(
            PatientFactory(),
            local(MONDAY, 8),
            user=manager,
            clinician=doctor,
            location=location,
            booking_override="Squeeze them in",
        )


def test_a_clinician_cannot_override_opening_hours(site, doctor):
    with pytest.raises(services.BookingRefused):
        consult(
            PatientFactory(),
            local(MONDAY, 8),
            user=doctor,
            clinician=doctor,
            location=site[0],
            booking_override="Early start",
        )


# --- plan activation places every visit ------------------------------------------------------


def test_cryotherapy_every_28_days_is_placed_in_slots_with_the_cryo_unit(site, doctor):
    location, _, _, cryo = site
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 4, every=28)], start=MONDAY, location=location
    )
    sessions = list(plan.sessions.order_by("scheduled_at"))
    assert [s.scheduled_on for s in sessions] == [MONDAY + timedelta(days=28 * n) for n in range(4)]
    for session in sessions:
        assert timezone.localtime(session.scheduled_at).time() == time(9)
        assert session.ends_at - session.scheduled_at == timedelta(minutes=30)
        assert (session.location, session.device, session.clinician) == (location, cryo, doctor)
        assert session.room is not None


def test_the_combined_needling_and_peel_protocol_is_placed_on_its_weeks(site, doctor):
    location = site[0]
    plan = make_plan(
        user=doctor,
        courses=[
            course("microneedling", 3, every=42),
            course("chemical_peel", 3, every=42, offset=21),
        ],
        start=MONDAY,
        location=location,
    )
    days = [s.scheduled_on for s in plan.sessions.order_by("scheduled_at")]
    assert days == [MONDAY + timedelta(weeks=w) for w in (0, 3, 6, 9, 12, 15)]
    needling = plan.sessions.filter(treatments__treatment__code="microneedling").first()
    assert needling.ends_at - needling.scheduled_at == timedelta(minutes=60)


def test_a_visit_on_a_closure_moves_to_the_nearest_open_day_within_its_tolerance(site, doctor):
    location = site[0]
    closed = MONDAY + timedelta(days=28)
    Closure.objects.create(first_day=closed, last_day=closed, reason="Bank holiday")
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 3, every=28)], start=MONDAY, location=location
    )
    days = [s.scheduled_on for s in plan.sessions.order_by("scheduled_at")]
    assert days == [MONDAY, closed + timedelta(days=1), MONDAY + timedelta(days=56)]


def test_a_full_day_puts_the_visit_in_the_first_free_slot_that_day(site, doctor):
    location = site[0]
    for hour in (9, 10):
        for minute in (0, 30):
            consult(
                PatientFactory(),
                local(MONDAY, hour, minute),
                user=doctor,
                clinician=doctor,
                location=location,
            )
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 1)], start=MONDAY, location=location
    )
    assert timezone.localtime(plan.sessions.get().scheduled_at).time() == time(11)


def test_activation_is_refused_when_no_day_within_tolerance_has_a_slot(site, doctor):
    location = site[0]
    Absence.objects.create(
        clinician=doctor,
        first_day=MONDAY - timedelta(days=7),
        last_day=MONDAY + timedelta(days=7),
        reason="Leave",
    )
    with pytest.raises(ValidationError, match="No free slot"):
        make_plan(user=doctor, courses=[course("cryotherapy", 1)], start=MONDAY, location=location)


def test_moving_a_session_into_a_clash_is_refused_and_nothing_moves(site, doctor):
    location = site[0]
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 2, every=28)], start=MONDAY, location=location
    )
    consult(PatientFactory(), local(MONDAY, 14), user=doctor, clinician=doctor, location=location)
    first = plan.sessions.order_by("scheduled_at").first()
    with pytest.raises(services.BookingRefused):
        services.session_reschedule(session=first, new_start=local(MONDAY, 14), user=doctor)
    first.refresh_from_db()
    assert timezone.localtime(first.scheduled_at).time() == time(9)


def test_shifting_the_rest_re_places_later_visits_by_the_same_rules(site, doctor):
    location = site[0]
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 2, every=28)], start=MONDAY, location=location
    )
    first, second = plan.sessions.order_by("scheduled_at")
    # Someone already has the second visit's new time: it takes the next free slot that day.
    new_day = second.scheduled_on + timedelta(days=1)
    consult(PatientFactory(), local(new_day, 10), user=doctor, clinician=doctor, location=location)
    services.session_reschedule(
        session=first,
        new_start=local(MONDAY + timedelta(days=1), 10),
        user=doctor,
        shift_following=True,
    )
    second.refresh_from_db()
    assert second.scheduled_on == new_day
    assert timezone.localtime(second.scheduled_at).time() == time(10, 30)


# --- daylight saving ---------------------------------------------------------------------------


def test_on_the_day_clocks_go_forward_a_0900_visit_is_at_0900_local(site, doctor):
    spring = date(2026, 3, 30)  # the Monday after clocks went forward (29 March)
    location = site[0]
    plan = make_plan(
        user=doctor,
        courses=[course("cryotherapy", 2, every=28)],
        start=spring - timedelta(days=28),
        location=location,
    )
    moved = plan.sessions.order_by("scheduled_at").last()
    assert timezone.localtime(moved.scheduled_at).time() == time(9)
    assert moved.scheduled_at.utcoffset() is not None


# --- arrival and did-not-attend -------------------------------------------------------------


def test_front_desk_marks_arrived_then_in_treatment_only_on_the_day(site, doctor, front_desk):
    location = site[0]
    visit = consult(
        PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=location
    )
    with frozen(MONDAY - timedelta(days=1)), pytest.raises(ValidationError, match="today"):
        services.session_set_status(session=visit, status="arrived", user=front_desk)
    with frozen(MONDAY):
        services.session_set_status(session=visit, status="arrived", user=front_desk)
        services.session_set_status(session=visit, status="in_treatment", user=front_desk)
    visit.refresh_from_db()
    assert visit.status == Session.Status.IN_TREATMENT
    with pytest.raises(ValidationError, match="cannot be marked arrived"):
        services.session_set_status(session=visit, status="arrived", user=front_desk)


def test_a_did_not_attend_frees_the_slot(site, doctor, front_desk):
    location = site[0]
    visit = consult(
        PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=location
    )
    services.session_set_status(session=visit, status="missed", user=front_desk)
    again = consult(
        PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=location
    )
    assert again.scheduled_at == visit.scheduled_at


# --- pages ------------------------------------------------------------------------------------


def test_the_day_view_shows_a_column_per_working_clinician_and_bookable_free_cells(
    site, doctor, front_desk_client
):
    location = site[0]
    consult(
        PatientFactory(first_name="Dagny"),
        local(MONDAY, 10),
        user=doctor,
        clinician=doctor,
        location=location,
    )
    with frozen(MONDAY):
        response = front_desk_client.get(reverse("diary_day"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Dagny" in page
    assert [c.title for c in response.context["columns"]] == [str(doctor)]
    cells = response.context["columns"][0].cells
    free = [c for c in cells if c.kind == "free"]
    assert len(free) == 32 - 2  # 09:00-17:00 in quarter hours, less the 30-minute visit
    first = free[0].href
    assert f"clinician={doctor.pk}" in first and "time=09%3A00" in first
    assert first.replace("&", "&amp;") in page


def test_the_day_view_by_room(site, doctor, front_desk_client):
    with frozen(MONDAY):
        response = front_desk_client.get(reverse("diary_day"), {"by": "room"})
    assert [c.title for c in response.context["columns"]] == ["Room 1", "Room 2"]


def test_booking_a_consultation_from_a_free_cell(site, doctor, front_desk_client):
    location = site[0]
    patient = PatientFactory()
    url = reverse("appointment_new")
    with frozen(MONDAY):
        response = front_desk_client.post(
            url,
            {
                "patient": patient.record_number,
                "kind": "consultation",
                "date": "2026-01-05",
                "time": "11:15",
                "clinician": doctor.pk,
                "location": location.pk,
            },
        )
    assert response.status_code == 302
    visit = Session.objects.get(patient=patient)
    assert timezone.localtime(visit.scheduled_at).time() == time(11, 15)


def test_a_refused_booking_keeps_the_form_and_offers_alternative_slots(
    site, doctor, front_desk_client
):
    location = site[0]
    consult(PatientFactory(), local(MONDAY, 11), user=doctor, clinician=doctor, location=location)
    patient = PatientFactory()
    with frozen(MONDAY):
        response = front_desk_client.post(
            reverse("appointment_new"),
            {
                "patient": patient.record_number,
                "kind": "consultation",
                "date": "2026-01-05",
                "time": "11:00",
                "clinician": doctor.pk,
                "location": location.pk,
                "notes": "Wants to discuss peels",
            },
        )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not booked" in page and "Wants to discuss peels" in page
    assert len(response.context["alternatives"]) == 3
    assert not Session.objects.filter(patient=patient).exists()


def test_an_unknown_record_number_is_named(site, doctor, front_desk_client):
    response = front_desk_client.post(
        reverse("appointment_new"),
        {
            "patient": "CX-999999",
            "kind": "review",
            "date": "2026-01-05",
            "time": "11:00",
            "clinician": doctor.pk,
            "location": site[0].pk,
        },
    )
    assert response.context["form"].errors["patient"] == [
        "No current patient has record number CX-999999."
    ]


def test_free_slot_search_finds_a_tuesday_afternoon_with_the_laser(site, doctor, front_desk_client):
    location = site[0]
    from plans.models import Treatment

    laser = Treatment.objects.get(code="pulsed_dye_laser")
    with frozen(MONDAY):
        response = front_desk_client.get(
            reverse("free_slots"),
            {
                "kind": f"treatment-{laser.pk}",
                "minutes": "45",
                "location": location.pk,
                "weekdays": ["1"],
                "part": "afternoon",
            },
        )
    slots = response.context["slots"]
    assert slots
    first = slots[0]
    assert first["start"].weekday() == 1 and first["start"].time() == time(12)
    assert first["end"] - first["start"] == timedelta(minutes=45)


def test_the_day_view_query_count_does_not_grow_with_appointments(
    site, doctor, front_desk_client, django_assert_max_num_queries
):
    location = site[0]
    colleagues = [works(UserFactory(role=CLINICIAN), location) for _ in range(12)]

    def fill(count):
        people = [doctor, *colleagues]
        made = 0
        for slot in range(32):
            for person in people:
                if made == count:
                    return
                start = local(MONDAY, 9) + timedelta(minutes=15 * slot)
                Session.objects.create(
                    kind="consultation",
                    patient=PatientFactory(),
                    scheduled_at=start,
                    ends_at=start + timedelta(minutes=15),
                    clinician=person,
                    location=location,
                )
                made += 1

    fill(10)
    with frozen(MONDAY), django_assert_max_num_queries(20) as small:
        front_desk_client.get(reverse("diary_day"))
    Session.objects.all().delete()
    fill(400)
    with frozen(MONDAY), django_assert_max_num_queries(len(small.captured_queries)):
        response = front_desk_client.get(reverse("diary_day"))
    assert (
        sum(c.kind == "appointment" for col in response.context["columns"] for c in col.cells)
        == 400
    )


def test_a_clinician_can_change_a_proposed_slot_before_activating(site, doctor, clinician_client):
    location = site[0]
    plan = make_plan(
        user=doctor,
        courses=[course("cryotherapy", 2, every=28)],
        start=MONDAY,
        location=location,
        activate=False,
    )
    with frozen(MONDAY - timedelta(days=7)):
        page = clinician_client.get(reverse("plan_detail", args=[plan.pk]))
        assert 'name="slot-0" value="2026-01-05T09:00"' in page.content.decode()
        response = clinician_client.post(
            reverse("plan_activate", args=[plan.pk]),
            {"slot-0": "2026-01-05T09:00", "slot-1": "2026-02-03T14:15"},
        )
    assert response.status_code == 302
    first, second = plan.sessions.order_by("scheduled_at")
    assert timezone.localtime(second.scheduled_at) == local(date(2026, 2, 3), 14, 15)


def test_a_chosen_slot_that_clashes_refuses_activation_naming_the_clash(site, doctor):
    location = site[0]
    consult(
        PatientFactory(record_number="CX-000777"),
        local(MONDAY, 11),
        user=doctor,
        clinician=doctor,
        location=location,
    )
    plan = make_plan(
        user=doctor,
        courses=[course("cryotherapy", 1)],
        start=MONDAY,
        location=location,
        activate=False,
    )
    with pytest.raises(ValidationError, match="CX-000777"):
        services.plan_activate(plan=plan, user=doctor, pinned={0: local(MONDAY, 11)})
    assert not plan.sessions.exists()


def test_a_home_regimen_books_only_its_review_visits(site, doctor):
    plan = make_plan(
        user=doctor, courses=[course("aha", 3, every=28)], start=MONDAY, location=site[0]
    )
    visits = list(plan.sessions.all())
    assert {v.kind for v in visits} == {Session.Kind.REVIEW}
    assert {v.ends_at - v.scheduled_at for v in visits} == {timedelta(minutes=15)}


def test_the_week_view_shows_a_clinicians_seven_days_with_their_appointments(
    site, doctor, front_desk_client
):
    location = site[0]
    consult(
        PatientFactory(record_number="CX-000444"),
        local(MONDAY + timedelta(days=2), 10),
        user=doctor,
        clinician=doctor,
        location=location,
    )
    response = front_desk_client.get(
        reverse("diary_week"), {"clinician": doctor.pk, "day": "2026-01-07"}
    )
    assert response.status_code == 200
    columns = response.context["columns"]
    assert [c.day for c in columns] == [MONDAY + timedelta(days=n) for n in range(7)]
    wednesday = [c for c in columns[2].cells if c.kind == "appointment"]
    assert [c.session.patient.record_number for c in wednesday] == ["CX-000444"]
    saturday = columns[5].cells
    assert {c.kind for c in saturday} == {"off"}  # closed at weekends: nothing to book


def test_the_week_view_of_a_room(site, doctor, front_desk_client):
    location, rooms, _, _ = site
    consult(
        PatientFactory(),
        local(MONDAY, 10),
        user=doctor,
        clinician=doctor,
        location=location,
        room=rooms[1],
    )
    response = front_desk_client.get(
        reverse("diary_week"), {"room": rooms[1].pk, "day": "2026-01-05"}
    )
    assert response.context["room"] == rooms[1]
    assert sum(c.kind == "appointment" for c in response.context["columns"][0].cells) == 1
    other = front_desk_client.get(reverse("diary_week"), {"room": rooms[0].pk, "day": "2026-01-05"})
    assert sum(c.kind == "appointment" for c in other.context["columns"][0].cells) == 0


@pytest.mark.parametrize(
    "query",
    [
        {"day": "9999-12-31"},
        {"clinician": "x"},
        {"room": "99999999999999999999"},
        {"location": "-1"},
    ],
)
def test_the_diary_pages_shrug_off_nonsense_parameters(site, doctor, front_desk_client, query):
    assert front_desk_client.get(reverse("diary_day"), query).status_code == 200
    assert front_desk_client.get(reverse("diary_week"), query).status_code == 200
    assert front_desk_client.get(reverse("appointment_new"), query).status_code == 200


def test_an_extra_session_of_a_one_session_course_is_booked(site, doctor):
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 1)], start=MONDAY, location=site[0]
    )
    extra = services.session_book(
        course=plan.courses.get(), scheduled_at=local(MONDAY + timedelta(days=28), 10), user=doctor
    )
    course_row = plan.courses.get()
    assert course_row.sessions_count == 2 and course_row.interval_days >= 1
    assert extra.treatments.get().number == 2


def test_booking_an_extra_session_shows_the_same_warnings_as_moving(site, doctor, clinician_client):
    plan = make_plan(
        user=doctor, courses=[course("cryotherapy", 1)], start=MONDAY, location=site[0]
    )
    with frozen(MONDAY):
        response = clinician_client.post(
            reverse("session_book", args=[plan.pk]),
            {"course": plan.courses.get().pk, "date": "2026-01-07", "time": "10:00"},
            follow=True,
        )
    shown = [str(m) for m in response.context["messages"]]
    assert any("minimum interval" in m for m in shown), shown
    assert plan.sessions.count() == 2


def test_the_manager_sets_how_long_a_consultation_usually_lasts(site, doctor):
    from plans.models import VisitType

    VisitType.objects.filter(kind="consultation").update(minutes=45)
    visit = consult(
        PatientFactory(), local(MONDAY, 10), user=doctor, clinician=doctor, location=site[0]
    )
    assert visit.ends_at - visit.scheduled_at == timedelta(minutes=45)
    assert set(VisitType.objects.values_list("kind", "minutes")) == {
        ("consultation", 45),
        ("review", 15),
        ("patch_test", 15),
        ("photo", 15),
    }
