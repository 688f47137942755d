"""Writes that span several records: plans, their calendars, safety overrides and logging."""

import io
import re
from datetime import date, datetime
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from plans import services
from plans.models import (
    AdverseEvent,
    Assessment,
    Plan,
    SafetyOverride,
    Session,
    SessionPhoto,
    SessionTreatment,
)
from plans.services import (
    AdverseEventInput,
    AssessmentInput,
    PhotoInput,
    SafetyBlocked,
    StaleEdit,
)
from tests.factories import (
    AcneActivityFactory,
    ConsentFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    at,
    course,
    make_plan,
)

pytestmark = pytest.mark.django_db

START = date(2026, 1, 5)
CRYO_OK = {"method": "spray", "cycles": 2, "seconds": 15}
NEEDLING_OK = {"device": "Dermapen 4", "needle_depth": 1.5, "passes": 3}
PEEL_OK = {"agent": "glycolic", "concentration": 70, "layers": 1, "neutralised": True}
PDL_OK = {
    "wavelength": 595,
    "fluence": 7.5,
    "spot_size": 7,
    "pulse_duration": 1.5,
    "passes": 1,
    "cooling": "dynamic",
}
DONE_FOR = {
    "cryotherapy": CRYO_OK,
    "microneedling": NEEDLING_OK,
    "chemical_peel": PEEL_OK,
    "pulsed_dye_laser": PDL_OK,
}
REASON = "Breakout is on the back only; the treated cheek is clear. Discussed with patient."


def cryo_plan():
    return [course("cryotherapy", 4, every=28)]


def rana_plan():
    return [
        course("microneedling", 3, every=42),
        course("chemical_peel", 3, every=42, offset=21, default_parameters={"agent": "glycolic"}),
    ]


def same_day_plan():
    return [
        course("chemical_peel", 3, every=42, default_parameters={"agent": "glycolic"}),
        course("microneedling", 3, every=42),
    ]


def needling_plan():
    return [course("microneedling", 3, every=42)]


@pytest.fixture
def patient():
    return PatientFactory()


@pytest.fixture
def cheek(patient):
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])


@pytest.fixture
def plan_for(clinician, cheek):
    """Build and activate a plan for the cheek: plan_for(cryo_plan, start=...)."""

    def build(courses, **kwargs):
        return make_plan(user=clinician, courses=courses(), sites=[cheek], **kwargs)

    return build


def calendar_of(plan):
    """[(local date and time, [(treatment code, number, parameters)])] of a plan's sessions."""
    return [
        (
            timezone.localtime(s.scheduled_at).strftime("%Y-%m-%d %H:%M"),
            [(t.treatment.code, t.number, t.parameters) for t in s.treatments.order_by("id")],
        )
        for s in plan.sessions.order_by("scheduled_at")
    ]


def days_of(plan, status=None):
    sessions = plan.sessions.order_by("scheduled_at")
    if status:
        sessions = sessions.filter(status=status)
    return [s.scheduled_on for s in sessions]


def nth(plan, n):
    return plan.sessions.order_by("scheduled_at")[n - 1]


def summary(checked):
    return [(c.on, c.treatment.code, c.finding.rule, c.finding.action.value) for c in checked]


def complete(session, user, **kwargs):
    """Log a session with valid parameters for each of its treatments."""
    parameters = {
        row.pk: DONE_FOR[row.treatment.code]
        for row in session.treatments.select_related("treatment")
    }
    return services.session_complete(
        session=session, user=user, parameters=kwargs.pop("parameters", parameters), **kwargs
    )


def breakout(patient, on, level="moderate"):
    return AcneActivityFactory(patient=patient, recorded_on=on, level=level)


# --- plan_create ---------------------------------------------------------------------------


def test_plan_create_makes_a_draft_with_its_courses_and_targets(clinician, cheek):
    plan = make_plan(user=clinician, courses=rana_plan(), sites=[cheek], activate=False)

    assert plan.status == Plan.Status.DRAFT
    assert list(plan.target_sites.all()) == [cheek]
    assert [
        (c.treatment.code, c.sessions_count, c.interval_days, c.offset_days, c.order)
        for c in plan.courses.all()
    ] == [
        ("microneedling", 3, 42, 0, 0),
        ("chemical_peel", 3, 42, 21, 1),
    ]
    assert not plan.sessions.exists()


def test_plan_create_refuses_another_patients_scar_site(clinician, cheek):
    stranger_site = ScarSiteFactory()

    with pytest.raises(ValidationError) as caught:
        make_plan(
            user=clinician,
            patient=cheek.patient,
            sites=[cheek, stranger_site],
            courses=cryo_plan(),
            activate=False,
        )

    assert caught.value.message_dict == {
        "target_sites": ["A plan can only target this patient's own scar sites."]
    }
    assert not Plan.objects.exists()


def test_plan_create_refuses_an_archived_scar_site(clinician, cheek):
    cheek.archive()

    with pytest.raises(ValidationError) as caught:
        make_plan(user=clinician, sites=[cheek], courses=cryo_plan(), activate=False)

    assert caught.value.message_dict == {
        "target_sites": ["Archived scar sites cannot be targeted."]
    }
    assert not Plan.objects.exists()


@pytest.mark.parametrize(
    ("courses", "field"),
    [
        (lambda: [], "courses"),
        (lambda: [course("cryotherapy", 3)], "__all__"),  # repeats without an interval
        (
            lambda: [course("microneedling", 3, every=42, default_parameters={"passes": 99})],
            "default_parameters",
        ),
    ],
    ids=["no courses", "no interval", "bad planned parameter"],
)
def test_a_refused_course_leaves_no_draft_plan_behind(clinician, cheek, courses, field):
    with pytest.raises(ValidationError) as caught:
        make_plan(user=clinician, sites=[cheek], courses=courses(), activate=False)

    assert field in caught.value.message_dict
    assert not Plan.objects.exists()


def test_plan_create_records_who_created_it(clinician, cheek):
    plan = make_plan(user=clinician, sites=[cheek], courses=cryo_plan(), activate=False)

    assert plan.history.first().history_user == clinician
    assert {c.history.first().history_user for c in plan.courses.all()} == {clinician}


# --- plan_activate -------------------------------------------------------------------------


def test_cryotherapy_four_times_every_28_days_makes_four_sessions(plan_for):
    plan = plan_for(cryo_plan)

    assert plan.status == Plan.Status.ACTIVE
    assert calendar_of(plan) == [
        ("2026-01-05 09:00", [("cryotherapy", 1, {})]),
        ("2026-02-02 09:00", [("cryotherapy", 2, {})]),
        ("2026-03-02 09:00", [("cryotherapy", 3, {})]),
        ("2026-03-30 09:00", [("cryotherapy", 4, {})]),
    ]


def test_the_published_combined_protocol_alternates_needling_and_peels(plan_for):
    plan = plan_for(rana_plan)

    glycolic = {"agent": "glycolic"}
    assert calendar_of(plan) == [
        ("2026-01-05 09:00", [("microneedling", 1, {})]),
        ("2026-01-26 09:00", [("chemical_peel", 1, glycolic)]),
        ("2026-02-16 09:00", [("microneedling", 2, {})]),
        ("2026-03-09 09:00", [("chemical_peel", 2, glycolic)]),
        ("2026-03-30 09:00", [("microneedling", 3, {})]),
        ("2026-04-20 09:00", [("chemical_peel", 3, glycolic)]),
    ]


def test_peel_and_needling_on_the_same_day_make_three_sessions_of_two_treatments(plan_for):
    plan = plan_for(same_day_plan)

    glycolic = {"agent": "glycolic"}
    assert calendar_of(plan) == [
        ("2026-01-05 09:00", [("chemical_peel", 1, glycolic), ("microneedling", 1, {})]),
        ("2026-02-16 09:00", [("chemical_peel", 2, glycolic), ("microneedling", 2, {})]),
        ("2026-03-30 09:00", [("chemical_peel", 3, glycolic), ("microneedling", 3, {})]),
    ]
    assert SessionTreatment.objects.count() == 6


def test_sessions_are_generated_at_the_plans_preferred_time_for_its_patient(plan_for, patient):
    plan = plan_for(cryo_plan, preferred_time="14:30")

    assert [timezone.localtime(s.scheduled_at).strftime("%H:%M") for s in plan.sessions.all()] == [
        "14:30"
    ] * 4
    assert {s.patient for s in plan.sessions.all()} == {patient}
    assert {s.status for s in plan.sessions.all()} == {Session.Status.SCHEDULED}


def test_a_plan_is_activated_only_once(plan_for, clinician):
    plan = plan_for(cryo_plan)

    with pytest.raises(ValidationError) as caught:
        services.plan_activate(plan=plan, user=clinician)

    assert caught.value.messages == ["Only a draft plan can be activated; this one is Active."]
    assert plan.sessions.count() == 4


def test_activation_records_who_generated_the_sessions(plan_for, clinician):
    plan = plan_for(cryo_plan)

    assert {s.history.first().history_user for s in plan.sessions.all()} == {clinician}
    assert plan.history.first().history_user == clinician


# --- safety blocks at activation -----------------------------------------------------------

NEEDLING_DAYS = [date(2026, 1, 5), date(2026, 2, 16), date(2026, 3, 30)]
BREAKOUT_KEYS = {f"{day.isoformat()}|microneedling|active_breakout" for day in NEEDLING_DAYS}


@pytest.fixture
def broken_out(patient):
    return breakout(patient, date(2026, 1, 1))


def test_active_acne_blocks_microneedling_with_a_finding_per_visit(clinician, cheek, broken_out):
    plan = make_plan(user=clinician, sites=[cheek], courses=needling_plan(), activate=False)

    with pytest.raises(SafetyBlocked) as caught:
        services.plan_activate(plan=plan, user=clinician)

    assert {f.key for f in caught.value.findings} == BREAKOUT_KEYS
    assert all(f.blocks for f in caught.value.findings)
    assert "Acne is recorded as moderate since 2026-01-01 (session on 2026-01-05)" in str(
        caught.value
    )
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.sessions.exists()


def test_a_clinicians_written_override_is_stored_with_who_when_why_and_rule(
    clinician, cheek, broken_out
):
    overrides = dict.fromkeys(BREAKOUT_KEYS, REASON)

    with time_machine.travel("2026-01-02 10:15Z", tick=False):
        plan = make_plan(
            user=clinician, sites=[cheek], courses=needling_plan(), overrides=overrides
        )

    assert days_of(plan) == NEEDLING_DAYS
    rows = SafetyOverride.objects.order_by("session__scheduled_at")
    assert [(o.session.scheduled_on, o.treatment.code, o.rule) for o in rows] == [
        (day, "microneedling", "active_breakout") for day in NEEDLING_DAYS
    ]
    for row in rows:
        assert row.reason == REASON
        assert row.overridden_by == clinician
        assert row.overridden_at == datetime.fromisoformat("2026-01-02T10:15:00+00:00")
        assert row.finding.startswith(
            f"Acne is recorded as moderate since 2026-01-01 (session on {row.session.scheduled_on})"
        )


def test_front_desk_cannot_override_a_block(front_desk, cheek, broken_out):
    plan = make_plan(user=front_desk, sites=[cheek], courses=needling_plan(), activate=False)

    with pytest.raises(PermissionDenied):
        services.plan_activate(
            plan=plan, user=front_desk, overrides=dict.fromkeys(BREAKOUT_KEYS, REASON)
        )

    assert not Session.objects.exists()
    assert not SafetyOverride.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_blank_reason_still_blocks(clinician, cheek, broken_out, reason):
    plan = make_plan(user=clinician, sites=[cheek], courses=needling_plan(), activate=False)

    with pytest.raises(SafetyBlocked) as caught:
        services.plan_activate(
            plan=plan, user=clinician, overrides=dict.fromkeys(BREAKOUT_KEYS, reason)
        )

    assert {f.key for f in caught.value.findings} == BREAKOUT_KEYS
    assert not Session.objects.exists()


def test_every_blocked_visit_needs_its_own_reason(clinician, cheek, broken_out):
    plan = make_plan(user=clinician, sites=[cheek], courses=needling_plan(), activate=False)
    first = "2026-01-05|microneedling|active_breakout"

    with pytest.raises(SafetyBlocked) as caught:
        services.plan_activate(plan=plan, user=clinician, overrides={first: REASON})

    assert {f.key for f in caught.value.findings} == BREAKOUT_KEYS - {first}


def test_a_breakout_does_not_block_treatments_that_do_not_need_clear_skin(plan_for, broken_out):
    plan = plan_for(cryo_plan)

    assert len(days_of(plan)) == 4
    assert not SafetyOverride.objects.exists()


def test_acne_cleared_before_the_plan_starts_does_not_block(plan_for, patient, broken_out):
    breakout(patient, date(2026, 1, 3), level="none")

    plan = plan_for(needling_plan)

    assert days_of(plan) == NEEDLING_DAYS


# --- session_reschedule --------------------------------------------------------------------


def test_moving_one_session_leaves_the_others_where_they_were(plan_for, clinician):
    plan = plan_for(cryo_plan)

    services.session_reschedule(
        session=nth(plan, 2), new_start=at(date(2026, 2, 9)), user=clinician
    )

    assert days_of(plan) == [
        date(2026, 1, 5),
        date(2026, 2, 9),
        date(2026, 3, 2),
        date(2026, 3, 30),
    ]


def test_shift_following_moves_the_later_sessions_of_the_course_by_the_same_delta(
    plan_for, clinician
):
    plan = plan_for(cryo_plan)

    services.session_reschedule(
        session=nth(plan, 2),
        new_start=at(date(2026, 2, 9), 11, 30),
        user=clinician,
        shift_following=True,
    )

    assert calendar_of(plan) == [
        ("2026-01-05 09:00", [("cryotherapy", 1, {})]),
        ("2026-02-09 11:30", [("cryotherapy", 2, {})]),
        ("2026-03-09 11:30", [("cryotherapy", 3, {})]),
        ("2026-04-06 11:30", [("cryotherapy", 4, {})]),
    ]


def test_shift_following_never_moves_a_completed_session(plan_for, clinician):
    plan = plan_for(cryo_plan)
    # Logged out of order before course order was enforced (issue 10): such rows exist.
    Session.objects.filter(pk=nth(plan, 3).pk).update(
        status=Session.Status.COMPLETED, completed_at=timezone.now()
    )

    services.session_reschedule(
        session=nth(plan, 2),
        new_start=at(date(2026, 2, 9)),
        user=clinician,
        shift_following=True,
    )

    assert days_of(plan, Session.Status.COMPLETED) == [date(2026, 3, 2)]
    assert days_of(plan, Session.Status.SCHEDULED) == [
        date(2026, 1, 5),
        date(2026, 2, 9),
        date(2026, 4, 6),
    ]


def test_shift_following_moves_only_the_same_course(plan_for, clinician):
    plan = plan_for(rana_plan)
    needling_2 = nth(plan, 3)

    services.session_reschedule(
        session=needling_2,
        new_start=at(date(2026, 2, 23)),
        user=clinician,
        shift_following=True,
    )

    by_code = {}
    for session in plan.sessions.order_by("scheduled_at"):
        by_code.setdefault(session.treatments.get().treatment.code, []).append(session.scheduled_on)
    assert by_code == {
        "microneedling": [date(2026, 1, 5), date(2026, 2, 23), date(2026, 4, 6)],
        "chemical_peel": [date(2026, 1, 26), date(2026, 3, 9), date(2026, 4, 20)],
    }


def test_shift_following_leaves_the_patients_other_plans_alone(plan_for, clinician, patient):
    plan = plan_for(cryo_plan)
    other = plan_for(needling_plan, start=date(2026, 1, 12))

    services.session_reschedule(
        session=nth(plan, 1),
        new_start=at(date(2026, 1, 19)),
        user=clinician,
        shift_following=True,
    )

    assert days_of(other) == [date(2026, 1, 12), date(2026, 2, 23), date(2026, 4, 6)]


def test_moving_into_an_isotretinoin_window_returns_a_warning(plan_for, clinician, patient):
    MedicalFlagFactory(
        patient=patient,
        kind="isotretinoin",
        started_on=date(2025, 1, 20),
        ended_on=date(2025, 7, 20),
    )
    plan = plan_for(needling_plan, start=date(2026, 1, 26))
    first = nth(plan, 1)

    checked = services.session_reschedule(
        session=first, new_start=at(date(2026, 1, 19)), user=clinician
    )

    assert summary(checked) == [(date(2026, 1, 19), "microneedling", "isotretinoin_recent", "warn")]
    assert "Consider waiting until after 2026-01-20" in checked[0].finding.message
    first.refresh_from_db()
    assert first.scheduled_on == date(2026, 1, 19)  # a warning does not stop the move


def test_moving_into_a_breakout_is_blocked_and_changes_nothing(plan_for, clinician, patient):
    plan = plan_for(needling_plan)
    breakout(patient, date(2026, 2, 20))
    breakout(patient, date(2026, 3, 20), level="none")
    second = nth(plan, 2)

    with pytest.raises(SafetyBlocked) as caught:
        services.session_reschedule(session=second, new_start=at(date(2026, 2, 23)), user=clinician)

    assert [f.key for f in caught.value.findings] == ["2026-02-23|microneedling|active_breakout"]
    second.refresh_from_db()
    assert (second.scheduled_on, second.version) == (date(2026, 2, 16), 1)


def test_moving_into_a_breakout_with_a_reason_stores_the_override(plan_for, clinician, patient):
    plan = plan_for(needling_plan)
    breakout(patient, date(2026, 2, 20))
    second = nth(plan, 2)

    services.session_reschedule(
        session=second,
        new_start=at(date(2026, 2, 23)),
        user=clinician,
        overrides={"2026-02-23|microneedling|active_breakout": REASON},
    )

    second.refresh_from_db()
    assert second.scheduled_on == date(2026, 2, 23)
    assert list(second.overrides.values_list("rule", "reason", "overridden_by")) == [
        ("active_breakout", REASON, clinician.pk)
    ]


def test_a_stale_reschedule_is_refused_and_changes_nothing(plan_for, clinician, front_desk):
    plan = plan_for(cryo_plan)
    mine = nth(plan, 2)
    theirs = Session.objects.get(pk=mine.pk)  # the same session opened in another form
    opened_at_version = theirs.version

    services.session_reschedule(
        session=mine,
        new_start=at(date(2026, 2, 9)),
        user=clinician,
        expected_version=opened_at_version,
    )
    with pytest.raises(StaleEdit, match="changed by someone else"):
        services.session_reschedule(
            session=theirs,
            new_start=at(date(2026, 2, 23)),
            user=front_desk,
            expected_version=opened_at_version,
            shift_following=True,
        )

    assert days_of(plan) == [
        date(2026, 1, 5),
        date(2026, 2, 9),
        date(2026, 3, 2),
        date(2026, 3, 30),
    ]
    assert Session.objects.get(pk=mine.pk).history.first().history_user == clinician


def test_only_a_scheduled_session_can_be_moved(plan_for, clinician):
    plan = plan_for(cryo_plan)
    first = nth(plan, 1)
    complete(first, clinician)

    with pytest.raises(ValidationError, match="Only a scheduled session can be moved."):
        services.session_reschedule(session=first, new_start=at(date(2026, 1, 12)), user=clinician)


def test_a_session_moved_along_with_another_is_stale_for_an_open_form(
    plan_for, clinician, front_desk
):
    plan = plan_for(cryo_plan)
    third = nth(plan, 3)
    opened_at_version = third.version

    services.session_reschedule(
        session=nth(plan, 2),
        new_start=at(date(2026, 2, 9)),
        user=clinician,
        shift_following=True,
    )

    with pytest.raises(StaleEdit):
        services.session_reschedule(
            session=third,
            new_start=at(date(2026, 3, 3)),
            user=front_desk,
            expected_version=opened_at_version,
        )


def test_shift_following_keeps_the_time_of_day_across_a_clock_change(plan_for, clinician):
    plan = plan_for(cryo_plan, start=date(2026, 3, 2))  # 09:00 GMT, then 09:00 BST

    services.session_reschedule(
        session=nth(plan, 1),
        new_start=at(date(2026, 4, 6)),
        user=clinician,
        shift_following=True,
    )

    assert [t for t, _ in calendar_of(plan)] == [
        "2026-04-06 09:00",
        "2026-05-04 09:00",
        "2026-06-01 09:00",
        "2026-06-29 09:00",
    ]


# --- hold, resume, cancel ------------------------------------------------------------------


def test_holding_a_plan_freezes_its_future_sessions_and_keeps_the_done_ones(plan_for, clinician):
    plan = plan_for(cryo_plan)
    complete(nth(plan, 1), clinician)

    services.plan_hold(plan=plan, user=clinician)

    plan.refresh_from_db()
    assert plan.status == Plan.Status.ON_HOLD
    assert [s.status for s in plan.sessions.order_by("scheduled_at")] == [
        "completed",
        "on_hold",
        "on_hold",
        "on_hold",
    ]
    assert not Session.objects.due_on(date(2026, 2, 2)).exists()


def test_resuming_restarts_the_held_sessions_on_the_new_date_keeping_their_spacing(
    plan_for, clinician
):
    plan = plan_for(cryo_plan)
    complete(nth(plan, 1), clinician)
    services.plan_hold(plan=plan, user=clinician)

    services.plan_resume(plan=plan, user=clinician, restart_on=date(2026, 4, 13))

    plan.refresh_from_db()
    assert plan.status == Plan.Status.ACTIVE
    assert days_of(plan, Session.Status.COMPLETED) == [date(2026, 1, 5)]
    assert days_of(plan, Session.Status.SCHEDULED) == [
        date(2026, 4, 13),
        date(2026, 5, 11),
        date(2026, 6, 8),
    ]


def test_resumed_sessions_keep_their_time_of_day_across_a_clock_change(plan_for, clinician):
    plan = plan_for(cryo_plan, start=date(2026, 2, 2))
    services.plan_hold(plan=plan, user=clinician)

    services.plan_resume(plan=plan, user=clinician, restart_on=date(2026, 4, 6))

    assert [t for t, _ in calendar_of(plan)] == [
        "2026-04-06 09:00",
        "2026-05-04 09:00",
        "2026-06-01 09:00",
        "2026-06-29 09:00",
    ]


def test_resuming_into_a_breakout_is_blocked(plan_for, clinician, patient):
    plan = plan_for(needling_plan)
    services.plan_hold(plan=plan, user=clinician)
    breakout(patient, date(2026, 4, 1))

    with pytest.raises(SafetyBlocked):
        services.plan_resume(plan=plan, user=clinician, restart_on=date(2026, 4, 6))

    plan.refresh_from_db()
    assert plan.status == Plan.Status.ON_HOLD
    assert days_of(plan, Session.Status.ON_HOLD) == NEEDLING_DAYS


def test_only_a_held_plan_can_be_resumed(plan_for, clinician):
    plan = plan_for(cryo_plan)

    with pytest.raises(ValidationError, match="A plan that is active cannot become active."):
        services.plan_resume(plan=plan, user=clinician, restart_on=date(2026, 4, 6))


@pytest.mark.parametrize("held_first", [False, True], ids=["active", "on hold"])
def test_cancelling_stops_future_sessions_and_keeps_the_done_and_missed_ones(
    plan_for, clinician, held_first
):
    plan = plan_for(cryo_plan)
    complete(nth(plan, 1), clinician)
    services.session_mark_missed(session=nth(plan, 2), user=clinician)
    if held_first:
        services.plan_hold(plan=plan, user=clinician)

    services.plan_cancel(plan=plan, user=clinician)

    plan.refresh_from_db()
    assert plan.status == Plan.Status.CANCELLED
    assert [s.status for s in plan.sessions.order_by("scheduled_at")] == [
        "completed",
        "missed",
        "cancelled",
        "cancelled",
    ]


def test_a_completed_plan_cannot_be_cancelled(plan_for, clinician):
    plan = plan_for(lambda: [course("cryotherapy", 1)])
    complete(nth(plan, 1), clinician)

    with pytest.raises(ValidationError, match="completed cannot become cancelled"):
        services.plan_cancel(plan=plan, user=clinician)


# --- session_complete ----------------------------------------------------------------------


@pytest.fixture
def laser_plan(clinician, patient):
    site = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["hypertrophic"])
    return make_plan(
        user=clinician, sites=[site], courses=[course("pulsed_dye_laser", 3, every=42)]
    )


def test_completing_a_session_logs_parameters_scores_and_adverse_events(laser_plan, clinician):
    session = nth(laser_plan, 1)
    row = session.treatments.get()
    site = laser_plan.target_sites.get()
    vss = {"vascularity": "2", "pigmentation": "1", "pliability": "3", "height": "1"}

    with time_machine.travel("2026-01-05 10:05Z", tick=False):
        checked = services.session_complete(
            session=session,
            user=clinician,
            parameters={row.pk: {**PDL_OK, "fluence": "7,5"}},
            assessments=[
                AssessmentInput(site, "vss", vss),
                AssessmentInput(site, "pain", {"pain": 4}),
            ],
            adverse_events=[AdverseEventInput("erythema", "mild", scar_site=site)],
            notes="Tolerated well.",
        )

    assert checked == []
    session.refresh_from_db()
    row.refresh_from_db()
    assert session.status == Session.Status.COMPLETED
    assert session.completed_at == datetime.fromisoformat("2026-01-05T10:05:00+00:00")
    assert session.clinician == clinician
    assert session.notes == "Tolerated well."
    assert row.parameters == PDL_OK
    assert sorted(session.assessments.values_list("instrument", "total", "assessed_on")) == [
        ("pain", 4, START),
        ("vss", 7, START),
    ]
    assert session.assessments.get(instrument="vss").items == {
        "vascularity": 2,
        "pigmentation": 1,
        "pliability": 3,
        "height": 1,
    }
    event = session.adverse_events.get()
    assert (event.kind, event.severity, event.onset_on, event.resolved_on) == (
        "erythema",
        "mild",
        START,
        None,
    )
    assert (event.patient, event.scar_site, event.recorded_by) == (
        laser_plan.patient,
        site,
        clinician,
    )
    assert session.history.first().history_user == clinician
    laser_plan.refresh_from_db()
    assert laser_plan.status == Plan.Status.ACTIVE


def test_a_wrong_parameter_is_reported_under_its_field_and_nothing_is_logged(laser_plan, clinician):
    session = nth(laser_plan, 1)
    row = session.treatments.get()

    with pytest.raises(ValidationError) as caught:
        services.session_complete(
            session=session,
            user=clinician,
            parameters={row.pk: {**PDL_OK, "fluence": 20, "cooling": "ice"}},
        )

    assert caught.value.message_dict == {
        f"params-{row.pk}-fluence": ["Fluence must be from 3 to 15 J/cm²."],
        f"params-{row.pk}-cooling": ["Cooling must be one of: dynamic, cold air, contact, none."],
    }
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED


def test_missing_parameters_are_reported_as_required(laser_plan, clinician):
    session = nth(laser_plan, 1)
    row = session.treatments.get()

    with pytest.raises(ValidationError) as caught:
        services.session_complete(session=session, user=clinician, parameters={})

    assert caught.value.message_dict[f"params-{row.pk}-fluence"] == ["Fluence is required."]
    assert len(caught.value.message_dict) == 6


def test_a_score_of_a_scar_site_the_plan_does_not_target_is_refused(laser_plan, clinician, patient):
    elsewhere = ScarSiteFactory(patient=patient, body_site="upper_back")
    session = nth(laser_plan, 1)

    with pytest.raises(ValidationError) as caught:
        complete(session, clinician, assessments=[AssessmentInput(elsewhere, "pain", {"pain": 2})])

    assert caught.value.message_dict == {
        "assessment-0-scar_site": ["This scar site is not targeted by the plan."]
    }
    assert not Assessment.objects.exists()


def test_a_session_is_completed_only_once(laser_plan, clinician):
    session = nth(laser_plan, 1)
    complete(session, clinician)

    with pytest.raises(ValidationError, match="Only a scheduled session can be logged."):
        complete(session, clinician)

    assert SessionTreatment.objects.filter(session=session).count() == 1


def test_completing_the_last_session_completes_the_plan(plan_for, clinician):
    plan = plan_for(lambda: [course("cryotherapy", 2, every=28)])

    complete(nth(plan, 1), clinician)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.ACTIVE

    complete(nth(plan, 2), clinician)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.COMPLETED


def test_a_missed_session_does_not_keep_the_plan_open(plan_for, clinician):
    plan = plan_for(lambda: [course("cryotherapy", 2, every=28)])
    services.session_mark_missed(session=nth(plan, 1), user=clinician)

    complete(nth(plan, 2), clinician)

    plan.refresh_from_db()
    assert plan.status == Plan.Status.COMPLETED


def test_a_breakout_found_at_logging_time_needs_an_override(plan_for, clinician, patient):
    plan = plan_for(needling_plan)
    breakout(patient, date(2026, 1, 4))
    first = nth(plan, 1)

    with pytest.raises(SafetyBlocked) as caught:
        complete(first, clinician)
    assert [f.key for f in caught.value.findings] == ["2026-01-05|microneedling|active_breakout"]

    complete(first, clinician, overrides={"2026-01-05|microneedling|active_breakout": REASON})

    first.refresh_from_db()
    assert first.status == Session.Status.COMPLETED
    assert list(first.overrides.values_list("rule", "reason", "overridden_by")) == [
        ("active_breakout", REASON, clinician.pk)
    ]


def test_an_override_given_at_booking_is_not_asked_for_again(clinician, cheek, broken_out):
    plan = make_plan(
        user=clinician,
        sites=[cheek],
        courses=needling_plan(),
        overrides=dict.fromkeys(BREAKOUT_KEYS, REASON),
    )
    first = nth(plan, 1)

    complete(first, clinician)

    first.refresh_from_db()
    assert first.status == Session.Status.COMPLETED
    assert first.overrides.count() == 1


def test_front_desk_cannot_override_a_block_when_logging(plan_for, front_desk, patient):
    plan = plan_for(needling_plan)
    breakout(patient, date(2026, 1, 4))

    with pytest.raises(PermissionDenied):
        complete(
            nth(plan, 1),
            front_desk,
            overrides={"2026-01-05|microneedling|active_breakout": REASON},
        )

    assert nth(plan, 1).status == Session.Status.SCHEDULED


def test_session_findings_show_a_breakout_recorded_after_booking(plan_for, patient):
    plan = plan_for(needling_plan)
    breakout(patient, date(2026, 2, 1))

    assert summary(services.session_findings(nth(plan, 1))) == []
    assert summary(services.session_findings(nth(plan, 2))) == [
        (date(2026, 2, 16), "microneedling", "active_breakout", "block")
    ]


@pytest.mark.parametrize(
    ("ended", "logged_on", "rules"),
    [
        (date(2025, 6, 5), "2026-01-05 12:00Z", []),  # seven months before the session
        (date(2025, 8, 5), "2026-01-05 12:00Z", ["isotretinoin_recent"]),  # five months
        # Logged late, after the window closed: still judged on the session's own date.
        (date(2025, 8, 5), "2026-03-01 12:00Z", ["isotretinoin_recent"]),
    ],
)
def test_isotretinoin_is_judged_as_of_the_session_date(
    plan_for, clinician, patient, ended, logged_on, rules
):
    MedicalFlagFactory(
        patient=patient, kind="isotretinoin", started_on=date(2025, 1, 1), ended_on=ended
    )
    plan = plan_for(needling_plan)

    with time_machine.travel(logged_on, tick=False):
        checked = complete(nth(plan, 1), clinician)

    assert [c.finding.rule for c in checked] == rules
    assert all(not c.blocks for c in checked)


def peel_plan():
    return [course("chemical_peel", 3, every=21)]


SALICYLIC_PEEL = {"agent": "salicylic", "concentration": 30, "layers": 2, "neutralised": "no"}


def test_a_salicylic_peel_after_a_pregnancy_has_ended_is_not_blocked(plan_for, clinician, patient):
    MedicalFlagFactory(
        patient=patient,
        kind="pregnancy",
        started_on=date(2025, 1, 10),
        ended_on=date(2025, 10, 1),
    )
    plan = plan_for(peel_plan)
    session = nth(plan, 1)

    complete(session, clinician, parameters={session.treatments.get().pk: SALICYLIC_PEEL})

    assert nth(plan, 1).status == Session.Status.COMPLETED


def test_a_salicylic_peel_during_pregnancy_is_blocked_by_the_agent_logged(
    plan_for, clinician, patient
):
    plan = plan_for(peel_plan)
    MedicalFlagFactory(patient=patient, kind="pregnancy", started_on=date(2025, 11, 1))
    session = nth(plan, 1)
    row = session.treatments.get()

    with pytest.raises(SafetyBlocked) as caught:
        complete(session, clinician, parameters={row.pk: SALICYLIC_PEEL})

    assert [f.key for f in caught.value.findings] == [
        "2026-01-05|chemical_peel|pregnancy_salicylic"
    ]
    row.refresh_from_db()
    assert row.parameters == {}
    complete(session, clinician)  # the same peel with a glycolic agent is fine


def test_an_invalid_score_leaves_the_session_untouched(laser_plan, clinician):
    session = nth(laser_plan, 1)
    row = session.treatments.get()
    site = laser_plan.target_sites.get()

    with pytest.raises(ValidationError) as caught:
        services.session_complete(
            session=session,
            user=clinician,
            parameters={row.pk: PDL_OK},
            assessments=[AssessmentInput(site, "vss", {"vascularity": 9})],
        )

    assert caught.value.message_dict["assessment-0-items"] == [
        "Vascularity must be a whole number from 0 to 3.",
        "Pigmentation must be a whole number from 0 to 2.",
        "Pliability must be a whole number from 0 to 5.",
        "Height must be a whole number from 0 to 3.",
    ]
    row.refresh_from_db()
    session.refresh_from_db()
    assert row.parameters == {}
    assert (session.status, session.version, session.completed_at) == ("scheduled", 1, None)
    assert not Assessment.objects.exists()


def test_a_failure_part_way_through_logging_leaves_no_partial_rows(laser_plan, clinician):
    session = nth(laser_plan, 1)
    row = session.treatments.get()
    site = laser_plan.target_sites.get()

    with pytest.raises(ValidationError) as caught:
        services.session_complete(
            session=session,
            user=clinician,
            parameters={row.pk: PDL_OK},
            assessments=[AssessmentInput(site, "pain", {"pain": 3})],
            adverse_events=[
                AdverseEventInput(
                    "swelling", "mild", onset_on=date(2026, 1, 6), resolved_on=date(2026, 1, 5)
                )
            ],
        )

    assert "resolved_on" in caught.value.message_dict
    row.refresh_from_db()
    session.refresh_from_db()
    assert row.parameters == {}
    assert (session.status, session.version) == ("scheduled", 1)
    assert not Assessment.objects.exists()
    assert not AdverseEvent.objects.exists()


def test_a_stale_completion_is_refused(laser_plan, clinician):
    session = nth(laser_plan, 1)
    services.session_reschedule(session=nth(laser_plan, 1), new_start=at(START, 10), user=clinician)

    with pytest.raises(StaleEdit):
        complete(session, clinician, expected_version=1)

    assert nth(laser_plan, 1).status == Session.Status.SCHEDULED


# --- photos --------------------------------------------------------------------------------


def tiny_png(name="cheek.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 120, 120)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_a_session_photo_is_stored_under_the_media_root(plan_for, clinician, cheek, media_root):
    session = nth(plan_for(cryo_plan), 1)
    ConsentFactory(patient=session.patient, kind="clinical_photography")

    complete(session, clinician, photos=[PhotoInput(cheek, tiny_png(), caption="Before")])

    photo = SessionPhoto.objects.get()
    stored = Path(photo.image.path)
    assert stored.is_relative_to(media_root)
    # A random name: nothing of the patient or the original file name in it (issue 11).
    assert re.fullmatch(rf"photos/{cheek.patient_id}/[0-9a-f]{{32}}\.png", photo.image.name)
    with Image.open(stored) as image:
        assert image.size == (2, 2)
    assert (photo.scar_site, photo.taken_on, photo.taken_by, photo.caption) == (
        cheek,
        START,
        clinician,
        "Before",
    )


def test_a_file_that_is_not_an_image_is_refused(plan_for, clinician, cheek, media_root):
    session = nth(plan_for(cryo_plan), 1)
    ConsentFactory(patient=session.patient, kind="clinical_photography")
    notes = SimpleUploadedFile("notes.txt", b"not a photo", content_type="text/plain")

    with pytest.raises(ValidationError) as caught:
        complete(session, clinician, photos=[PhotoInput(cheek, notes)])

    assert "image" in caught.value.message_dict
    assert not SessionPhoto.objects.exists()
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED


def test_a_non_image_named_like_a_photo_is_refused(plan_for, clinician, cheek, media_root):
    session = nth(plan_for(cryo_plan), 1)
    fake = SimpleUploadedFile("cheek.png", b"%PDF-1.4 not a photo", content_type="image/png")

    with pytest.raises(ValidationError):
        complete(session, clinician, photos=[PhotoInput(cheek, fake)])

    assert not SessionPhoto.objects.exists()


def test_a_photo_of_another_patients_scar_site_is_refused(plan_for, clinician, media_root):
    session = nth(plan_for(cryo_plan), 1)
    ConsentFactory(patient=session.patient, kind="clinical_photography")

    with pytest.raises(ValidationError) as caught:
        complete(session, clinician, photos=[PhotoInput(ScarSiteFactory(), tiny_png())])

    assert caught.value.message_dict == {
        "scar_site": ["This scar site belongs to another patient."]
    }
    assert not SessionPhoto.objects.exists()
