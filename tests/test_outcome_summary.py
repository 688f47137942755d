"""The outcomes summary gives the rows the direct computation gives, and stays current."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import ScarType
from plans import outcome_summary, services
from plans.models import (
    AdverseEvent,
    Assessment,
    OutcomeDay,
    OutcomeDirtyDay,
    OutcomeDirtySession,
    OutcomePatientDay,
    OutcomePatientGap,
    Session,
    SessionTreatment,
)
from plans.reports import clinic_outcomes, direct_outcomes
from plans.services import AdverseEventInput
from tests.factories import (
    PatientFactory,
    ScarSiteFactory,
    baseline,
    course,
    items_for_total,
    log_session,
    make_plan,
    treatment,
)
from tests.test_outcomes import JAN_1, MAR_31, clinic, sessions_of, table, today  # noqa: F401

pytestmark = pytest.mark.django_db

RANGES = [
    (JAN_1, MAR_31),
    (date(2025, 1, 1), date(2026, 12, 31)),
    (date(2026, 1, 5), date(2026, 1, 5)),
    (date(2026, 2, 2), date(2026, 2, 9)),
    (date(2026, 3, 1), date(2026, 4, 30)),
]


def assert_same_as_direct():
    for start, end in RANGES:
        for instrument in (None, "vss", "gb_qualitative"):
            got = clinic_outcomes(start=start, end=end, instrument=instrument)
            want = direct_outcomes(start=start, end=end, instrument=instrument)
            assert table(got) == table(want), (start, end, instrument)
    for filters in ({"treatment": treatment("cryotherapy")}, {"scar_type": "Atrophic: rolling"}):
        got = clinic_outcomes(start=date(2025, 1, 1), end=date(2026, 12, 31), **filters)
        want = direct_outcomes(start=date(2025, 1, 1), end=date(2026, 12, 31), **filters)
        assert table(got) == table(want), filters


@pytest.fixture
def richer(clinic, clinician):  # noqa: F811
    """The hand-computed clinic plus a site of two scar types, a session of two treatments,
    a plan session on the last minute of a day and one without scores."""
    p3 = PatientFactory()
    jaw = ScarSiteFactory(patient=p3, body_site="jawline", scar_types=["rolling", "boxcar"])
    baseline(jaw, "gb_qualitative", 4, user=clinician, on=date(2025, 11, 1))
    baseline(jaw, "vss", 8, user=clinician, on=date(2025, 11, 1))
    plan = make_plan(
        user=clinician,
        sites=[jaw],
        courses=[course("microneedling", 2, every=14), course("cryotherapy", 2, every=14)],
        start=date(2026, 1, 20),
    )
    first, second = sessions_of(plan)[:2]
    log_session(first, clinician, scores=[(jaw, "gb_qualitative", 3), (jaw, "vss", 6)])
    log_session(second, clinician, events=[AdverseEventInput("pain", "mild", scar_site=jaw)])
    clinic.p3, clinic.jaw = p3, jaw
    return clinic


def test_the_summary_gives_the_direct_rows_on_varied_data(richer):
    assert_same_as_direct()


def test_the_summary_follows_logging_a_session(richer, clinician):
    assert_same_as_direct()
    mar2 = Session.objects.filter(patient=richer.p1, status="scheduled").order_by("pk").first()
    back = richer.p1.scar_sites.get()
    log_session(
        mar2,
        clinician,
        scores=[(back, "vss", 3)],
        events=[AdverseEventInput("swelling", "mild", scar_site=back)],
    )
    assert_same_as_direct()


def test_the_summary_follows_a_changed_score_and_a_new_first_baseline(richer, clinician):
    assert_same_as_direct()
    score = Assessment.objects.filter(session__isnull=False, instrument="vss").first()
    score.items = items_for_total("vss", 1)
    score.save()
    assert_same_as_direct()
    back = richer.p1.scar_sites.get()
    earlier = baseline(back, "vss", 13, user=clinician, on=date(2025, 6, 1))
    assert_same_as_direct()
    earlier.delete()
    assert_same_as_direct()


def test_the_summary_follows_cancelled_moved_and_deleted_sessions(richer):
    assert_same_as_direct()
    done = list(Session.objects.filter(status="completed").order_by("scheduled_at"))
    done[0].status = Session.Status.CANCELLED
    done[0].save()
    assert_same_as_direct()
    moved = done[1]
    moved.scheduled_at += timedelta(days=40)
    moved.ends_at += timedelta(days=40)
    moved.save()
    assert_same_as_direct()
    gone = done[-1]
    AdverseEvent.objects.filter(session=gone).delete()
    gone.assessments.all().delete()
    gone.delete()
    assert_same_as_direct()


def test_the_summary_follows_events_treatments_and_scar_types(richer):
    assert_same_as_direct()
    AdverseEvent.objects.first().delete()
    assert_same_as_direct()
    session = Session.objects.filter(status="completed", plan__isnull=False).last()
    SessionTreatment.objects.create(session=session, treatment=treatment("pulsed_dye_laser"))
    assert_same_as_direct()
    richer.jaw.scar_types.remove(ScarType.objects.get(code="boxcar"))
    assert_same_as_direct()
    chest = richer.p2.scar_sites.get(body_site="chest")
    chest.scar_types.add(ScarType.objects.get(code="rolling"))
    assert_same_as_direct()
    plan = session.plan
    plan.target_sites.clear()
    assert_same_as_direct()


def test_the_summary_follows_an_amended_session(richer, clinician):
    assert_same_as_direct()
    session = Session.objects.filter(status="completed", assessments__instrument="vss").first()
    site = session.assessments.get(instrument="vss").scar_site
    services.session_amend(
        session=session,
        user=clinician,
        reason="Typed the wrong score",
        assessments=[services.AssessmentInput(site, "vss", items_for_total("vss", 2))],
    )
    assert_same_as_direct()


def test_a_renamed_scar_type_is_not_served_from_the_cache(richer):
    clinic_outcomes(start=JAN_1, end=MAR_31)
    rolling = ScarType.objects.get(code="rolling")
    rolling.name = "Rolling (renamed)"
    rolling.save()
    assert_same_as_direct()
    assert "Rolling (renamed)" in {r.scar_type for r in clinic_outcomes(start=JAN_1, end=MAR_31)}


def test_scar_types_sharing_a_name_still_count_a_session_once(richer):
    ScarType.objects.filter(code="boxcar").update(name="Atrophic: rolling")
    assert_same_as_direct()


def test_a_summary_rebuilt_after_writes_that_bypass_signals_is_right(richer):
    clinic_outcomes(start=JAN_1, end=MAR_31)
    # What the bulk loader does: rows written with no signal, then rebuild().
    first = Session.objects.filter(status="completed").order_by("pk").first()
    Session.objects.filter(pk=first.pk).update(status="missed")
    outcome_summary.rebuild()
    assert_same_as_direct()


def test_loaded_rows_added_up_are_a_full_build(richer):
    """The chain loader's path (plans/demo_scale.py), on either database: per-session and
    patient rows written by write_loaded_rows(), then rebuild(rows_loaded=True) adds up the
    day sums and gaps; the outcomes read as from a full build and as directly."""
    outcome_summary.rebuild()
    built = summary_rows()
    OutcomeDay.objects.all().delete()  # what the load leaves: no sums yet
    outcome_summary.write_loaded_rows()
    outcome_summary.rebuild(rows_loaded=True)
    assert summary_rows() == built
    assert built["OutcomeScoreDay"] and built["OutcomePatientGap"]
    assert_same_as_direct()


def summary_rows():
    """Every summary table's rows, without their ids."""
    from plans import models

    tables = {}
    for name in ("SessionGroup", "SessionScore", "Day", "ScoreDay", "PatientDay", "PatientGap"):
        model = getattr(models, f"Outcome{name}")
        columns = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        tables[model.__name__] = sorted(model.objects.values_list(*columns), key=repr)
    return tables


def test_a_repeat_view_reads_only_the_summary(richer):
    clinic_outcomes(start=JAN_1, end=MAR_31)
    with CaptureQueriesContext(connection) as queries:
        clinic_outcomes(start=JAN_1, end=MAR_31)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert Session._meta.db_table not in sql
    assert Assessment._meta.db_table not in sql
    assert len(queries) <= 2  # the summary's state, the scar type names


def test_a_logged_session_marks_itself_and_the_next_read_clears_it(richer, clinician):
    clinic_outcomes(start=JAN_1, end=MAR_31)
    assert not OutcomeDirtySession.objects.exists()
    mar2 = Session.objects.filter(patient=richer.p1, status="scheduled").order_by("pk").first()
    log_session(mar2, clinician, scores=[(richer.p1.scar_sites.get(), "vss", 3)])
    assert set(OutcomeDirtySession.objects.values_list("session_id", flat=True)) == {mar2.pk}
    assert not OutcomeDirtyDay.objects.exists()
    clinic_outcomes(start=JAN_1, end=MAR_31)
    assert not OutcomeDirtySession.objects.exists()
    assert_same_as_direct()


@pytest.mark.django_db(transaction=True)
def test_a_freshly_seeded_demo_has_a_built_and_correct_summary(settings):
    from django.core.management import call_command

    from plans.models import OutcomeSummaryState

    settings.DEBUG = True
    call_command("seed_demo", patients=12, stdout=__import__("io").StringIO())
    assert OutcomeSummaryState.objects.get().built
    assert not OutcomeDirtyDay.objects.exists()
    for start, end in [(date(2025, 1, 1), date(2026, 12, 31)), (date(2026, 3, 1), MAR_31)]:
        got = clinic_outcomes(start=start, end=end)
        assert got
        assert table(got) == table(direct_outcomes(start=start, end=end))


# --- prev_day: distinct patients as a sum of first days in the range -----------------------

STARTS = [
    date(2026, 1, 1),
    date(2026, 1, 6),
    date(2026, 1, 21),
    date(2026, 2, 2),
    date(2026, 2, 3),
    date(2026, 2, 10),
    date(2026, 3, 1),
    date(2026, 3, 3),
    date(2026, 3, 10),
    date(2026, 3, 21),
    date(2026, 4, 7),
]


def assert_patients_right_from_every_start():
    """Every range start around the sessions' days, and the summary as a rebuild makes it."""
    for start in STARTS:
        for end in (MAR_31, date(2026, 4, 30)):
            if start <= end:
                got = clinic_outcomes(start=start, end=end)
                assert table(got) == table(direct_outcomes(start=start, end=end)), (start, end)
    patient_rows = sorted(
        OutcomePatientDay.objects.values_list(
            "day", "treatment_id", "scar_type_id", "patient_id", "prev_day"
        )
    )
    gaps = sorted(
        OutcomePatientGap.objects.values_list(
            "day", "treatment_id", "scar_type_id", "prev_day", "patients"
        ),
        key=str,
    )
    outcome_summary.rebuild()
    assert patient_rows == sorted(
        OutcomePatientDay.objects.values_list(
            "day", "treatment_id", "scar_type_id", "patient_id", "prev_day"
        )
    )
    assert gaps == sorted(
        OutcomePatientGap.objects.values_list(
            "day", "treatment_id", "scar_type_id", "prev_day", "patients"
        ),
        key=str,
    )


def chest_sessions(clinic):  # noqa: F811
    return list(
        Session.objects.filter(patient=clinic.p2, plan__target_sites__body_site="chest")
        .distinct()
        .order_by("scheduled_at")
    )


def test_a_cancelled_middle_session_hands_the_next_one_the_earlier_day(richer):
    assert_patients_right_from_every_start()
    _feb9, mar9, apr6 = chest_sessions(richer)
    mar9.status = Session.Status.CANCELLED
    mar9.save()
    assert_patients_right_from_every_start()
    assert OutcomePatientDay.objects.get(day=apr6.scheduled_on).prev_day == date(2026, 2, 9)
    mar9.status = Session.Status.COMPLETED
    mar9.save()
    assert_patients_right_from_every_start()


def test_a_session_moved_across_a_range_start_and_past_the_next(richer):
    assert_patients_right_from_every_start()
    feb9, _mar9, _apr6 = chest_sessions(richer)
    for days in (20, 20, -45):  # to 1 Mar, 21 Mar (after the next), then back to 4 Feb
        feb9.scheduled_at += timedelta(days=days)
        feb9.ends_at += timedelta(days=days)
        feb9.save()
        assert_patients_right_from_every_start()


def test_a_session_logged_between_two_others_and_a_treatment_taken_off(richer, clinician):
    assert_patients_right_from_every_start()
    mar2 = Session.objects.filter(patient=richer.p1, status="scheduled").order_by("pk").first()
    mar2.scheduled_at -= timedelta(days=41)  # 20 Jan: between 5 Jan and 2 Feb
    mar2.ends_at -= timedelta(days=41)
    mar2.save()
    log_session(mar2, clinician, scores=[(richer.p1.scar_sites.get(), "vss", 8)])
    assert_patients_right_from_every_start()
    SessionTreatment.objects.filter(session=mar2).delete()
    assert_patients_right_from_every_start()


def test_two_marked_days_far_apart_mend_the_rows_between(richer):
    assert_patients_right_from_every_start()
    feb9, mar9, _apr6 = chest_sessions(richer)
    # Both in one refresh: the first marked day's next row is on the second.
    for session in (feb9, mar9):
        session.status = Session.Status.MISSED
        session.save()
    assert_patients_right_from_every_start()


def test_a_first_view_counts_patients_without_reading_patient_rows(richer):
    clinic_outcomes(start=JAN_1, end=MAR_31)
    from django.core.cache import cache

    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        clinic_outcomes(start=JAN_1, end=MAR_31)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert OutcomePatientGap._meta.db_table in sql
    assert OutcomePatientDay._meta.db_table not in sql
    assert "DISTINCT" not in sql.upper()


def test_a_marked_day_is_recomputed_whole(richer):
    """A day mark (what a write that bypasses the signals can leave, as the bulk loader's
    helpers do) recomputes every session of the day, not only marked ones."""
    clinic_outcomes(start=JAN_1, end=MAR_31)
    first = Session.objects.filter(status="completed").order_by("pk").first()
    Session.objects.filter(pk=first.pk).update(status="missed")  # no signal, no mark
    outcome_summary.mark_days([first.scheduled_on])
    assert_same_as_direct()
    assert_patients_right_from_every_start()


def test_logging_a_session_recomputes_that_session_not_its_whole_day(richer, clinician):
    """The first view after a change costs the changed session: the base tables are read for
    the marked sessions only, and the day is added up from the per-session rows."""
    clinic_outcomes(start=JAN_1, end=MAR_31)
    mar2 = Session.objects.filter(patient=richer.p1, status="scheduled").order_by("pk").first()
    log_session(mar2, clinician, scores=[(richer.p1.scar_sites.get(), "vss", 3)])
    with CaptureQueriesContext(connection) as queries:
        outcome_summary.refresh()
    reads_sessions = [
        q["sql"] for q in queries.captured_queries if f"FROM {Session._meta.db_table} s" in q["sql"]
    ]
    assert reads_sessions
    for sql in reads_sessions:
        assert "outcome_marked" in sql
        assert "scheduled_at >=" not in sql
    # The day's sums change by the session's rows; the day's other rows are not added up.
    from plans.models import OutcomeDay

    adding_up = f"INSERT INTO {OutcomeDay._meta.db_table} (day, treatment_id"
    assert not [q for q in queries.captured_queries if adding_up in q["sql"]]
    assert_same_as_direct()


def test_a_day_sum_the_summary_got_wrong_is_added_up_again_not_made_worse(richer):
    """A change applied to a sum that is not what the per-session rows say (a row lost by
    hand, say) would go below zero: the day is added up again from those rows instead."""
    from plans.models import OutcomeDay

    clinic_outcomes(start=JAN_1, end=MAR_31)
    done = Session.objects.filter(status="completed").order_by("pk").first()
    OutcomeDay.objects.filter(day=done.scheduled_on).update(
        sessions=0, sessions_with_adverse_event=0
    )
    done.status = Session.Status.MISSED
    done.save()
    assert_same_as_direct()


def test_a_summary_built_before_the_per_session_rows_is_rebuilt_on_the_next_read(richer):
    """Migration 0022 leaves the state unbuilt: day rows without session rows under them
    would otherwise be re-added from nothing when one session changes."""
    from plans.models import OutcomeSessionGroup, OutcomeSummaryState

    clinic_outcomes(start=JAN_1, end=MAR_31)
    OutcomeSessionGroup.objects.all().delete()  # as before the migration
    OutcomeSummaryState.objects.update(built=False)  # what the migration does
    first = Session.objects.filter(status="completed").order_by("pk").first()
    first.status = Session.Status.MISSED
    first.save()
    assert_same_as_direct()
    assert_patients_right_from_every_start()
