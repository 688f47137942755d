"""The treatment catalogue, courses, sessions, scores, adverse events and overrides."""

from datetime import date, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from clinic.roles import CLINICIAN
from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite, ScarType
from plans.models import (
    AdverseEvent,
    Assessment,
    Course,
    Plan,
    SafetyOverride,
    SafetyRuleSetting,
    Session,
    SessionPhoto,
    SessionTreatment,
    Treatment,
)
from tests.factories import (
    AdverseEventFactory,
    AssessmentFactory,
    CourseFactory,
    PlanFactory,
    ScarSiteFactory,
    SessionFactory,
    UserFactory,
    at,
    db_refuses,
    scar_types,
    treatment,
    valid_items,
)

pytestmark = pytest.mark.django_db

ATROPHIC = ["icepick", "boxcar", "rolling"]
ALL_ACNE = ["hypertrophic", "keloid", *ATROPHIC, "macular"]


# --- catalogue -----------------------------------------------------------------------------


def test_the_catalogue_migration_loads_the_seven_treatments_of_the_seed():
    assert dict(Treatment.objects.values_list("code", "setting")) == {
        "aha": "home",
        "lactic_acid": "home",
        "salicylic_acid": "home",
        "pulsed_dye_laser": "in_office",
        "cryotherapy": "in_office",
        "chemical_peel": "in_office",
        "microneedling": "in_office",
    }
    assert all(t.is_active for t in Treatment.objects.all())


@pytest.mark.parametrize(
    ("code", "best_for"),
    [
        ("pulsed_dye_laser", ["hypertrophic", "keloid"]),
        ("cryotherapy", ["hypertrophic", "keloid"]),
        ("microneedling", ATROPHIC),
        ("chemical_peel", ALL_ACNE),
        ("aha", ALL_ACNE),
        ("lactic_acid", ALL_ACNE),
        ("salicylic_acid", ALL_ACNE),
    ],
)
def test_each_treatment_is_best_for_the_scar_types_of_the_seed(code, best_for):
    assert set(treatment(code).best_for.values_list("code", flat=True)) == set(best_for)


@pytest.mark.parametrize(
    ("code", "parameters"),
    [
        ("aha", ["product", "acid", "concentration", "ph"]),
        ("lactic_acid", ["concentration", "contact_time"]),
        ("salicylic_acid", ["concentration", "area"]),
        (
            "pulsed_dye_laser",
            ["wavelength", "fluence", "spot_size", "pulse_duration", "passes", "cooling"],
        ),
        ("cryotherapy", ["method", "cycles", "seconds"]),
        (
            "chemical_peel",
            [
                "agent",
                "concentration",
                "ph",
                "layers",
                "contact_time",
                "neutralised",
                "frost_level",
            ],
        ),
        ("microneedling", ["device", "needle_depth", "passes", "serum"]),
    ],
)
def test_each_treatment_comes_with_its_session_parameters_in_order(code, parameters):
    assert list(treatment(code).parameters.values_list("code", flat=True)) == parameters


def test_seeded_laser_parameters_carry_their_units_and_ranges():
    fluence = treatment("pulsed_dye_laser").parameters.get(code="fluence")

    assert (fluence.kind, fluence.unit, fluence.min_value, fluence.max_value) == (
        "number",
        "J/cm²",
        3,
        15,
    )


def test_treatments_needing_clear_skin_are_the_in_office_ones_of_the_seed():
    assert set(Treatment.objects.filter(needs_clear_skin=True).values_list("code", flat=True)) == {
        "pulsed_dye_laser",
        "chemical_peel",
        "microneedling",
    }


def test_the_default_safety_rule_settings_are_seeded():
    current = SafetyRuleSetting.current()

    assert len(current) == 12
    assert current["active_breakout"].action == "block"
    assert current["isotretinoin_recent"].window == 6
    assert current["peel_before_microneedling"].window == 14


def test_suited_to_atrophic_scars_offers_microneedling_but_not_laser_or_cryotherapy():
    codes = set(Treatment.objects.suited_to(scar_types("rolling")).values_list("code", flat=True))

    assert "microneedling" in codes
    assert "chemical_peel" in codes
    assert not codes & {"pulsed_dye_laser", "cryotherapy"}


def test_suited_to_raised_scars_offers_laser_and_cryotherapy_but_not_microneedling():
    codes = set(
        Treatment.objects.suited_to(scar_types("hypertrophic", "keloid")).values_list(
            "code", flat=True
        )
    )

    assert {"pulsed_dye_laser", "cryotherapy"} <= codes
    assert "microneedling" not in codes


def test_suited_to_puts_treatments_covering_more_of_the_scar_types_first():
    suited = Treatment.objects.suited_to(scar_types("keloid", "rolling"))

    matches = {t.code: t.matches for t in suited}
    assert matches["chemical_peel"] == 2
    assert matches["cryotherapy"] == 1
    assert matches["microneedling"] == 1
    ranked = [t.code for t in suited]
    assert ranked.index("chemical_peel") < ranked.index("cryotherapy")
    assert [t.matches for t in suited] == sorted((t.matches for t in suited), reverse=True)


def test_suited_to_leaves_out_retired_treatments():
    Treatment.objects.filter(code="microneedling").update(is_active=False)

    assert not Treatment.objects.suited_to(scar_types("rolling")).filter(code="microneedling")


def test_suited_to_an_empty_list_offers_nothing():
    assert list(Treatment.objects.suited_to(ScarType.objects.none())) == []


# --- courses -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sessions", "interval"), [(0, 28), (53, 7), (2, 0), (4, 0)], ids=str)
def test_the_database_refuses_impossible_courses(sessions, interval):
    with db_refuses():
        CourseFactory(sessions_count=sessions, interval_days=interval)


@pytest.mark.parametrize(("sessions", "interval"), [(1, 0), (52, 7), (3, 365)])
def test_courses_of_one_to_52_sessions_are_stored(sessions, interval):
    course = CourseFactory(sessions_count=sessions, interval_days=interval)

    course.full_clean()
    assert Course.objects.filter(pk=course.pk).exists()


@pytest.mark.parametrize(
    ("sessions", "interval", "message"),
    [
        (0, 28, "A course has from 1 to 52 sessions."),
        (60, 28, "A course has from 1 to 52 sessions."),
        (3, 0, "Repeated sessions need an interval of at least 1 day."),
    ],
)
def test_full_clean_explains_an_impossible_course(sessions, interval, message):
    course = CourseFactory.build(
        plan=PlanFactory(), sessions_count=sessions, interval_days=interval
    )

    with pytest.raises(ValidationError) as caught:
        course.full_clean()

    assert message in caught.value.messages


def test_a_course_refuses_planned_parameters_outside_the_catalogue_range():
    course = CourseFactory.build(
        plan=PlanFactory(),
        treatment=treatment("microneedling"),
        default_parameters={"needle_depth": 5},
    )

    with pytest.raises(ValidationError) as caught:
        course.full_clean()

    assert caught.value.message_dict == {
        "default_parameters": ["Needle depth must be from 0.25 to 3 mm."]
    }


# --- assessments ---------------------------------------------------------------------------


def test_the_vss_total_is_computed_from_its_items_and_reaches_13_at_most():
    assessment = AssessmentFactory(instrument="vss", items=valid_items("vss", "maximum"))

    assessment.refresh_from_db()
    assert assessment.total == 13


def test_a_typed_total_is_ignored_in_favour_of_the_items():
    items = {"vascularity": 2, "pigmentation": 1, "pliability": 3, "height": 1}

    assessment = AssessmentFactory(instrument="vss", items=items, total=0)

    assessment.refresh_from_db()
    assert assessment.total == 7


def test_changing_the_items_recomputes_the_total():
    assessment = AssessmentFactory(instrument="vss")
    assert assessment.total == 0

    assessment.items = {**assessment.items, "height": 3}
    assessment.total = 12
    assessment.save()

    assessment.refresh_from_db()
    assert assessment.total == 3


@pytest.mark.parametrize(
    ("instrument", "total"), [("vss", 14), ("vss", -1), ("posas_observer", 5), ("pain", 11)]
)
def test_the_database_refuses_a_total_outside_the_instrument_range(instrument, total):
    assessment = AssessmentFactory(instrument=instrument)

    with db_refuses():
        Assessment.objects.filter(pk=assessment.pk).update(total=total)


def test_full_clean_names_the_item_and_its_allowed_range():
    assessment = AssessmentFactory.build(
        scar_site=ScarSiteFactory(),
        assessor=UserFactory(role=CLINICIAN),
        instrument="vss",
        items={**valid_items("vss"), "pliability": 6},
    )
    assessment.patient = assessment.scar_site.patient

    with pytest.raises(ValidationError) as caught:
        assessment.full_clean(exclude=["total"])

    assert caught.value.message_dict == {
        "items": ["Pliability must be a whole number from 0 to 5."]
    }


def test_an_assessment_of_another_patients_scar_site_is_refused():
    mine = ScarSiteFactory()
    theirs = ScarSiteFactory()
    assessment = AssessmentFactory.build(
        patient=mine.patient,
        scar_site=theirs,
        assessor=UserFactory(role=CLINICIAN),
    )

    with pytest.raises(ValidationError) as caught:
        assessment.full_clean(exclude=["total"])

    assert caught.value.message_dict == {
        "scar_site": ["This scar site belongs to another patient."]
    }


def test_baseline_assessments_are_the_ones_outside_a_session():
    baseline = AssessmentFactory()
    session = SessionFactory(plan=PlanFactory(patient=baseline.patient))
    AssessmentFactory(scar_site=baseline.scar_site, session=session)

    assert list(Assessment.objects.baseline()) == [baseline]
    assert baseline.is_baseline


# --- adverse events and overrides ----------------------------------------------------------


def test_the_database_refuses_an_adverse_event_resolved_before_its_onset():
    with db_refuses():
        AdverseEventFactory(onset_on=date(2026, 1, 5), resolved_on=date(2026, 1, 4))


def test_full_clean_explains_an_adverse_event_resolved_before_its_onset():
    session = SessionFactory()
    event = AdverseEventFactory.build(
        session=session,
        patient=session.patient,
        recorded_by=UserFactory(role=CLINICIAN),
        onset_on=date(2026, 1, 5),
        resolved_on=date(2026, 1, 4),
    )

    with pytest.raises(ValidationError) as caught:
        event.full_clean()

    assert caught.value.message_dict == {
        "resolved_on": ["The resolution date must be on or after onset."]
    }


def test_an_adverse_event_on_another_patients_scar_site_is_refused():
    session = SessionFactory()
    event = AdverseEventFactory.build(
        session=session,
        patient=session.patient,
        scar_site=ScarSiteFactory(),
        recorded_by=UserFactory(role=CLINICIAN),
    )

    with pytest.raises(ValidationError) as caught:
        event.full_clean()

    assert caught.value.message_dict == {
        "scar_site": ["This scar site belongs to another patient."]
    }


def test_unresolved_adverse_events_are_the_open_ones():
    open_event = AdverseEventFactory()
    AdverseEventFactory(resolved_on=date(2026, 1, 9))

    assert list(AdverseEvent.objects.unresolved()) == [open_event]


def test_the_database_refuses_an_override_without_a_reason():
    session = SessionFactory()

    with db_refuses():
        SafetyOverride.objects.create(
            session=session,
            treatment=treatment("microneedling"),
            rule="active_breakout",
            finding="Acne is recorded as moderate.",
            reason="",
            overridden_by=session.plan.clinician,
        )


# --- session lists -------------------------------------------------------------------------

TODAY = date(2026, 6, 15)  # British Summer Time: local midnight is 23:00 UTC


@pytest.fixture
def day_list():
    """Sessions around TODAY of one plan; names say when and in which state."""
    plan = PlanFactory(status=Plan.Status.ACTIVE)

    def session(day, hour=9, minute=0, status=Session.Status.SCHEDULED):
        return SessionFactory(
            plan=plan,
            scheduled_at=at(day, hour, minute),
            status=status,
            completed_at=at(day, 17) if status == Session.Status.COMPLETED else None,
        )

    yesterday, tomorrow = TODAY - timedelta(days=1), TODAY + timedelta(days=1)
    return {
        "last_week": session(TODAY - timedelta(days=7)),
        "yesterday_late": session(yesterday, 23, 30),
        "yesterday_done": session(yesterday, status=Session.Status.COMPLETED),
        "yesterday_missed": session(yesterday, status=Session.Status.MISSED),
        "today_early": session(TODAY, 0, 30),
        "today": session(TODAY),
        "today_late": session(TODAY, 23, 45),
        "today_held": session(TODAY, 11, status=Session.Status.ON_HOLD),
        "today_cancelled": session(TODAY, 12, status=Session.Status.CANCELLED),
        "today_done": session(TODAY, 8, status=Session.Status.COMPLETED),
        "tomorrow_early": session(tomorrow, 0, 15),
    }


def names(sessions, day_list):
    lookup = {s.pk: name for name, s in day_list.items()}
    return {lookup[s.pk] for s in sessions}


def test_due_today_lists_the_scheduled_sessions_of_the_local_day(day_list):
    with time_machine.travel(at(TODAY, 7), tick=False):
        due = Session.objects.due_on(timezone.localdate())

    assert names(due, day_list) == {"today_early", "today", "today_late"}


def test_overdue_lists_scheduled_sessions_from_before_today_never_logged(day_list):
    with time_machine.travel(at(TODAY, 7), tick=False):
        overdue = Session.objects.overdue(timezone.localdate())

    assert names(overdue, day_list) == {"last_week", "yesterday_late"}


def test_the_day_list_moves_on_with_the_clock(day_list):
    with time_machine.travel(at(TODAY + timedelta(days=1), 7), tick=False):
        due = Session.objects.due_on(timezone.localdate())
        overdue = Session.objects.overdue(timezone.localdate())

    assert names(due, day_list) == {"tomorrow_early"}
    assert "today" in names(overdue, day_list)


def test_a_clinician_sees_their_own_sessions_and_unassigned_ones_of_their_plans():
    mine, colleague = UserFactory(role=CLINICIAN), UserFactory(role=CLINICIAN)
    my_plan = PlanFactory(clinician=mine, status=Plan.Status.ACTIVE)
    their_plan = PlanFactory(clinician=colleague, status=Plan.Status.ACTIVE)
    unassigned_mine = SessionFactory(plan=my_plan)
    covering_for_me = SessionFactory(plan=my_plan, clinician=colleague)
    covering_for_them = SessionFactory(plan=their_plan, clinician=mine)
    unassigned_theirs = SessionFactory(plan=their_plan)

    assert set(Session.objects.for_clinician(mine)) == {unassigned_mine, covering_for_them}
    assert set(Session.objects.for_clinician(colleague)) == {covering_for_me, unassigned_theirs}


def test_a_completed_session_needs_its_completion_time():
    with db_refuses():
        SessionFactory(status=Session.Status.COMPLETED, completed_at=None)


def test_a_session_belongs_to_its_plans_patient():
    plan = PlanFactory()
    stranger = ScarSiteFactory().patient
    session = SessionFactory.build(plan=plan, patient=stranger, scheduled_at=at(plan.start_date))

    with pytest.raises(ValidationError) as caught:
        session.full_clean()

    assert caught.value.messages == ["A session belongs to its plan's patient."]


# --- history -------------------------------------------------------------------------------

CLINICAL_MODELS = [
    Patient,
    AcneActivity,
    MedicalFlag,
    Consent,
    ScarSite,
    Plan,
    Course,
    Session,
    SessionTreatment,
    Assessment,
    AdverseEvent,
    SessionPhoto,
    SafetyOverride,
]


@pytest.mark.parametrize("model", CLINICAL_MODELS, ids=lambda m: m.__name__)
def test_every_clinical_model_keeps_a_history_of_all_its_fields(model):
    historical = model.history.model

    assert historical.__name__ == f"Historical{model.__name__}"
    kept = {f.attname for f in historical._meta.fields}
    assert {f.attname for f in model._meta.concrete_fields} <= kept
    assert {"history_user_id", "history_date", "history_type"} <= kept


def test_a_session_change_is_kept_in_its_history():
    session = SessionFactory()
    session.notes = "Patient asked to move the next visit."
    session.save()

    assert [h.notes for h in session.history.order_by("history_id")] == [
        "",
        "Patient asked to move the next visit.",
    ]
