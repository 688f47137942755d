"""The clinic outcomes summary: per local day, what the outcomes page adds up.

The page used to aggregate a year of completed sessions and their scores per request (7 s at a
chain's million sessions). Instead, three narrow tables (plans.models.OutcomeDay,
OutcomeScoreDay, OutcomePatientDay) hold each local day's groups; any range of days is a sum of
days, except distinct patients, which are counted from one row per (day, treatment, scar type,
patient) and their gaps (OutcomePatientGap).

Under the day tables lie two per-session tables (OutcomeSessionGroup, OutcomeSessionScore):
the expensive join of each completed session with its treatments, its plan's scar types, its
adverse events and its scores' baselines, done once per session. A day's rows are sums of them.

Keeping it current: every write that can change a completed session's numbers marks that
session in OutcomeDirtySession, in the same transaction (signals below; the bulk loader calls
`rebuild()` at its end, and a chain's load copies the per-session rows with their sessions).
`refresh()`, called by the page before it reads, recomputes the marked sessions' rows from the
base tables, re-adds the days those rows fall on (before and after) from the per-session rows,
and mends the patient rows of the patients they touch; then it changes the state's version,
which keys the page's cache. So the first view after logging a session costs that session, not
its whole day (a chain's busiest day has 5,000). A mark in OutcomeDirtyDay recomputes a whole
day; one without a day (or no state row yet) rebuilds all.
"""

import uuid
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Exists
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save, pre_delete
from django.utils import timezone

from clinic.timeutils import day_start
from patients.models import ScarSite, ScarType
from plans import scales
from plans.models import (
    AdverseEvent,
    Assessment,
    OutcomeDay,
    OutcomeDirtyDay,
    OutcomeDirtySession,
    OutcomePatientDay,
    OutcomePatientGap,
    OutcomeScoreDay,
    OutcomeSessionGroup,
    OutcomeSessionScore,
    OutcomeSummaryState,
    Plan,
    Session,
    SessionTreatment,
    Treatment,
)

COMPLETED = Session.Status.COMPLETED.value
# Past this many separate runs of marked days, one range from the first to the last is read.
MAX_RANGES = 40


# --- marking -------------------------------------------------------------------------------


def mark_days(days):
    """Mark local days (None: everything) out of date, in the caller's transaction."""
    days = set(days)
    if days:
        OutcomeDirtyDay.objects.bulk_create([OutcomeDirtyDay(day=d) for d in days])


def mark_everything():
    mark_days([None])


def mark_sessions(session_ids):
    """Mark sessions (by id; deleted ones too) out of date, in the caller's transaction."""
    ids = {i for i in session_ids if i}
    if ids:
        OutcomeDirtySession.objects.bulk_create([OutcomeDirtySession(session_id=i) for i in ids])


def _completed(session_ids):
    """Those of the sessions that are completed: only they have summary rows to change."""
    ids = {i for i in session_ids if i}
    if not ids:
        return set()
    return set(Session.objects.filter(pk__in=ids, status=COMPLETED).values_list("pk", flat=True))


def _site_sessions(site_ids, instrument=None):
    """Completed sessions that score these sites (on `instrument`), or, without an
    instrument, that score or treat them (a site's scar types decide both)."""
    ids = {i for i in site_ids if i}
    if not ids:
        return set()
    scored = Assessment.objects.filter(scar_site__in=ids, session__status=COMPLETED)
    if instrument:
        scored = scored.filter(instrument=instrument)
    found = set(scored.values_list("session_id", flat=True))
    if not instrument:
        treated = Session.objects.filter(status=COMPLETED, plan__target_sites__in=ids)
        found |= set(treated.values_list("pk", flat=True))
    return found


# Fields whose values before a save decide which sessions a change leaves out of date.
TRACKED = {
    Session: ("scheduled_at", "status", "patient_id", "plan_id"),
    SessionTreatment: ("session_id", "treatment_id"),
    AdverseEvent: ("session_id",),
    Assessment: ("session_id", "scar_site_id", "instrument", "total", "assessed_on"),
}


def _remember(sender, instance, **kwargs):
    instance._outcome_before = tuple(instance.__dict__.get(name) for name in TRACKED[sender])


def _before(instance):
    return dict(
        zip(TRACKED[type(instance)], getattr(instance, "_outcome_before", ()), strict=False)
    )


def _session_saved(sender, instance, created, raw=False, **kwargs):
    before = _before(instance)
    # Read what is loaded; a deferred status or date is fetched only if it could matter.
    now = {name: instance.__dict__.get(name) for name in TRACKED[Session]}
    if not created and before == now:
        return
    now = {name: getattr(instance, name) for name in TRACKED[Session]}
    if not created and before == now:
        return
    if COMPLETED in (now["status"], before.get("status")):
        mark_sessions([instance.pk])
    _remember(sender, instance)


def _session_deleted(sender, instance, **kwargs):
    if instance.status == COMPLETED:
        mark_sessions([instance.pk])


def _session_child_changed(sender, instance, created=False, **kwargs):
    """A treatment or adverse event of a session: its session (and a former one)."""
    before = _before(instance)
    mark_sessions(_completed([instance.session_id, before.get("session_id")]))
    _remember(sender, instance)


def _assessment_changed(sender, instance, created=False, **kwargs):
    before = _before(instance)
    sessions = _completed([instance.session_id, before.get("session_id")])
    # A score outside a session is a baseline (or may have been one): the first baseline
    # sets the change of every score of its site and instrument.
    if instance.session_id is None:
        sessions |= _site_sessions([instance.scar_site_id], instance.instrument)
    if before and before.get("session_id") is None and before.get("scar_site_id"):
        sessions |= _site_sessions([before["scar_site_id"]], before["instrument"])
    mark_sessions(sessions)
    _remember(sender, instance)


def _site_types_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # a scar type's sites edited from the type's side: rare, rebuild
        mark_everything()
    else:
        mark_sessions(_site_sessions([instance.pk]))


def _plan_sites_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:
        mark_everything()
    else:
        completed = Session.objects.filter(plan=instance, status=COMPLETED)
        mark_sessions(completed.values_list("pk", flat=True))


def _name_changed(sender, instance, **kwargs):
    """A renamed treatment or scar type: the sums stand, the cached table's names do not."""
    OutcomeSummaryState.objects.update(version=uuid.uuid4().hex)


def _scar_type_deleted(sender, instance, **kwargs):
    mark_everything()  # its site links go by cascade, without m2m_changed


def connect():
    """Wire the marks to every write that changes a completed session's numbers."""
    for model in TRACKED:
        post_init.connect(_remember, sender=model, dispatch_uid=f"outcomes-init-{model}")
    post_save.connect(_session_saved, sender=Session, dispatch_uid="outcomes-session")
    post_delete.connect(_session_deleted, sender=Session, dispatch_uid="outcomes-session-del")
    for model in (SessionTreatment, AdverseEvent):
        post_save.connect(_session_child_changed, sender=model, dispatch_uid=f"outcomes-{model}")
        post_delete.connect(
            _session_child_changed, sender=model, dispatch_uid=f"outcomes-del-{model}"
        )
    post_save.connect(_assessment_changed, sender=Assessment, dispatch_uid="outcomes-score")
    post_delete.connect(_assessment_changed, sender=Assessment, dispatch_uid="outcomes-sc-del")
    m2m_changed.connect(
        _site_types_changed, sender=ScarSite.scar_types.through, dispatch_uid="outcomes-types"
    )
    m2m_changed.connect(
        _plan_sites_changed, sender=Plan.target_sites.through, dispatch_uid="outcomes-sites"
    )
    for model in (Treatment, ScarType):
        post_save.connect(_name_changed, sender=model, dispatch_uid=f"outcomes-name-{model}")
    pre_delete.connect(_scar_type_deleted, sender=ScarType, dispatch_uid="outcomes-type-del")


# --- refreshing ----------------------------------------------------------------------------


def _tables():
    st = SessionTreatment._meta
    types = ScarSite._meta.get_field("scar_types").remote_field.through._meta
    sites = Plan._meta.get_field("target_sites").remote_field.through._meta
    return {
        "s": Session._meta.db_table,
        "a": Assessment._meta.db_table,
        "st": st.db_table,
        "ae": AdverseEvent._meta.db_table,
        "sty": types.db_table,
        "pts": sites.db_table,
        "g": OutcomeSessionGroup._meta.db_table,
        "sc": OutcomeSessionScore._meta.db_table,
        "od": OutcomeDay._meta.db_table,
        "osd": OutcomeScoreDay._meta.db_table,
        "opd": OutcomePatientDay._meta.db_table,
        "gap": OutcomePatientGap._meta.db_table,
    }


def _day_sql(column="s.scheduled_at"):
    """The local date of a moment column in SQL, with its parameters."""
    return connection.ops.datetime_cast_date_sql(column, (), timezone.get_current_timezone_name())


def _ranges(days):
    """Runs of consecutive days as [start, end) moments, at most MAX_RANGES of them."""
    days = sorted(days)
    runs = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    if len(runs) > MAX_RANGES:
        runs = [[days[0], days[-1]]]
    return [(day_start(a), day_start(b + timedelta(days=1))) for a, b in runs]


SESSION_GROUPS = "outcome_session_groups"  # temporary: the patient rows' groups in scope
PATIENTS = "outcome_patients"  # temporary: the patients whose prev_day may change
BASELINES = "outcome_baselines"  # temporary: every site's first baseline (a full build)
PREV_CHANGES = "outcome_prev_changes"  # temporary: patient rows whose prev_day changes
MARKED = "outcome_marked"  # temporary: the sessions whose rows are recomputed
TOUCHED = "outcome_touched"  # temporary: the days whose sums are added up again
SESSION_DAYS = "outcome_session_days"  # temporary: the days the marked sessions' groups were/are on
TEMPORARY = (SESSION_GROUPS, PATIENTS, BASELINES, PREV_CHANGES, MARKED, TOUCHED, SESSION_DAYS)


def _in_ranges(column, ranges):
    """SQL: a date column within the [first, after) runs of days, with its parameters."""
    adapt = connection.ops.adapt_datefield_value
    parts, params = [], []
    for first, after in ranges:
        parts.append(f"({column} >= %s AND {column} < %s)")
        params += [
            adapt(timezone.localtime(first).date()),
            adapt(timezone.localtime(after).date()),
        ]
    return "(" + " OR ".join(parts) + ")", params


def _in_table(table):
    """SQL: a date column among the days of a temporary table (no parameters)."""
    return lambda column: (f"{column} IN (SELECT day FROM {table})", [])  # nosec B608: constant


def _drop_temporary(cursor):
    for table in TEMPORARY:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")  # nosec B608: a constant name


def _analyze(cursor, *tables):
    """Fresh statistics for temporary tables, so plans join them as the few rows they are."""
    if connection.vendor == "postgresql":
        for table in tables:
            cursor.execute(f"ANALYZE {table}")  # nosec B608: a constant name


def _group_rows(t, where):
    """SQL selecting OutcomeSessionGroup rows of the sessions `where` picks (alias s)."""
    day, day_params = _day_sql()
    return (
        f"SELECT s.id, {day}, st.treatment_id, sty.scartype_id, s.patient_id,"  # nosec B608: table names from model meta
        f" CASE WHEN EXISTS (SELECT 1 FROM {t['ae']} ae WHERE ae.session_id = s.id)"
        f" THEN 1 ELSE 0 END FROM {t['s']} s"
        f" JOIN {t['st']} st ON st.session_id = s.id"
        f" JOIN {t['pts']} pts ON pts.plan_id = s.plan_id"
        f" JOIN {t['sty']} sty ON sty.scarsite_id = pts.scarsite_id WHERE {where}"
        # Grouped on the session's key, not made DISTINCT on every column: hashed, not
        # sorted (a third less at 1.9 million joined rows).
        " GROUP BY s.id, st.treatment_id, sty.scartype_id"
    ), day_params


def _score_rows(cursor, t, where, full):
    """SQL selecting OutcomeSessionScore rows of the sessions `where` picks: each score's
    change from its site's first baseline on the instrument, added up per session,
    treatment, scored site's scar type and instrument."""
    pg = connection.vendor == "postgresql"
    day, day_params = _day_sql()
    per_session = list(scales.PER_SESSION)
    scored_where = f"{where} AND a.instrument NOT IN ({', '.join(['%s'] * len(per_session))})"
    if pg and not full:
        # A few sessions: each score's first baseline through assessment_baseline_idx.
        scored = (
            f"SELECT r.day, r.session_id, r.scar_site_id, r.instrument,"  # nosec B608: model meta
            " r.total - base.total AS change"
            f" FROM (SELECT {day} AS day, a.session_id, a.scar_site_id, a.instrument,"
            f" a.total FROM {t['s']} s JOIN {t['a']} a ON a.session_id = s.id"
            f" WHERE {scored_where} OFFSET 0) r CROSS JOIN LATERAL ("
            f"SELECT b.total FROM {t['a']} b WHERE b.session_id IS NULL"
            " AND b.scar_site_id = r.scar_site_id AND b.instrument = r.instrument"
            " ORDER BY b.assessed_on, b.id LIMIT 1) base"
        )
    else:
        first_baselines = (
            "SELECT scar_site_id, instrument, total FROM (SELECT b.scar_site_id,"  # nosec B608
            " b.instrument, b.total, ROW_NUMBER() OVER (PARTITION BY b.scar_site_id,"
            " b.instrument ORDER BY b.assessed_on, b.id) AS n"
            f" FROM {t['a']} b WHERE b.session_id IS NULL) f WHERE n = 1"
        )
        if pg:
            # Every site's first baselines once, in the baseline index's order, and
            # counted: estimated as a join filter, they made the planner loop per score.
            cursor.execute(
                f"CREATE TEMPORARY TABLE {BASELINES} AS SELECT DISTINCT ON"  # nosec B608
                " (b.scar_site_id, b.instrument) b.scar_site_id, b.instrument, b.total"
                f" FROM {t['a']} b WHERE b.session_id IS NULL"
                " ORDER BY b.scar_site_id, b.instrument, b.assessed_on, b.id"
            )
            _analyze(cursor, BASELINES)
            first_baselines = f"SELECT * FROM {BASELINES}"  # nosec B608: a constant name
        scored = (
            f"SELECT {day} AS day, a.session_id, a.scar_site_id, a.instrument,"  # nosec B608
            f" a.total - base.total AS change FROM {t['s']} s"
            f" JOIN {t['a']} a ON a.session_id = s.id JOIN ({first_baselines}) base"
            " ON base.scar_site_id = a.scar_site_id AND base.instrument = a.instrument"
            f" WHERE {scored_where}"
        )
    return (
        (
            "SELECT x.session_id, x.day, st.treatment_id, sty.scartype_id, x.instrument,"  # nosec B608
            f" COUNT(*), SUM(x.change) FROM ({scored}) x"
            f" JOIN {t['st']} st ON st.session_id = x.session_id"
            f" JOIN {t['sty']} sty ON sty.scarsite_id = x.scar_site_id"
            " GROUP BY x.session_id, x.day, st.treatment_id, sty.scartype_id, x.instrument"
        ),
        day_params,
        per_session,
    )


GROUP_COLUMNS = "session_id, day, treatment_id, scar_type_id, patient_id, with_event"
SCORE_COLUMNS = "session_id, day, treatment_id, scar_type_id, instrument, scores, change_sum"


def _insert_session_rows(cursor, t, where, where_params, full=False):
    """(Re)compute the per-session rows of the sessions `where` picks, from the base tables."""
    groups, day_params = _group_rows(t, where)
    cursor.execute(
        f"INSERT INTO {t['g']} ({GROUP_COLUMNS}) {groups}",  # nosec B608: model meta
        [*day_params, *where_params],
    )
    scores, day_params, per_session = _score_rows(cursor, t, where, full)
    cursor.execute(
        f"INSERT INTO {t['sc']} ({SCORE_COLUMNS}) {scores}",  # nosec B608: model meta
        [*day_params, *where_params, *per_session],
    )


def _add_up_days(cursor, t, in_days=None):
    """The day tables' rows of some days (None: all, into emptied tables) as sums of the
    per-session rows."""
    where, params = in_days("day") if in_days else ("1 = 1", [])
    if in_days:
        for table in (t["od"], t["osd"]):
            cursor.execute(f"DELETE FROM {table} WHERE {where}", params)  # nosec B608: model meta
    cursor.execute(
        f"INSERT INTO {t['od']} (day, treatment_id, scar_type_id, sessions,"  # nosec B608: model meta
        " sessions_with_adverse_event) SELECT day, treatment_id, scar_type_id, COUNT(*),"
        f" SUM(with_event) FROM {t['g']} WHERE {where} GROUP BY day, treatment_id, scar_type_id",
        params,
    )
    cursor.execute(
        f"INSERT INTO {t['osd']} (day, treatment_id, scar_type_id, instrument, scores,"  # nosec B608: model meta
        " change_sum) SELECT day, treatment_id, scar_type_id, instrument, SUM(scores),"
        f" SUM(change_sum) FROM {t['sc']} WHERE {where}"
        " GROUP BY day, treatment_id, scar_type_id, instrument",
        params,
    )


class _IndexesAfter:
    """On PostgreSQL, a model's indexes and constraints dropped before a bulk insert into its
    emptied table and built once after it (3x faster than keeping them up row by row)."""

    def __init__(self, *models):
        self.models = models if connection.vendor == "postgresql" else ()

    def __enter__(self):
        if not self.models:
            return
        with connection.schema_editor(atomic=False) as editor:
            for model in self.models:
                for constraint in model._meta.constraints:
                    editor.remove_constraint(model, constraint)
                for index in model._meta.indexes:
                    editor.remove_index(model, index)

    def __exit__(self, *exc):
        if exc[0] is not None or not self.models:
            return
        with connection.schema_editor(atomic=False) as editor:
            for model in self.models:
                for constraint in model._meta.constraints:
                    editor.add_constraint(model, constraint)
                for index in model._meta.indexes:
                    editor.add_index(model, index)


def _build(days, sessions=()):
    """Recompute from the base tables the summary rows of `days` (None: all days) and of
    `sessions` (ids), then the day sums and patient rows they touch."""
    t = _tables()
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        _drop_temporary(cursor)
        if days is None:
            _build_all(cursor, t)
        else:
            _build_some(cursor, t, days, sessions)
        _drop_temporary(cursor)
        if pg and days is None:
            # Counted now, so the next refresh's plans know the tables' new size.
            cursor.execute(
                f"ANALYZE {t['g']}, {t['sc']}, {t['opd']}, {t['gap']}"  # nosec B608: model meta
            )


def _empty(cursor, *tables):
    """Empty whole tables for a full build, with room to sort and hash its millions of rows
    in memory, not on disk (PostgreSQL; this transaction only)."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        truncate = "TRUNCATE "
    else:
        truncate = "DELETE FROM "
    for table in tables:
        cursor.execute(truncate + table)  # nosec B608: model meta


def _add_up_loaded_rows():
    """The day sums and the gaps, into emptied tables, from per-session and patient rows a
    bulk load wrote (write_loaded_rows and the chain's copies of them)."""
    t = _tables()
    with connection.cursor() as cursor:
        _empty(cursor, t["od"], t["osd"], t["gap"])
        _add_up_days(cursor, t)
        _insert_gaps(cursor, t)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {t['od']}, {t['osd']}, {t['gap']}")  # nosec B608: model meta


def _build_all(cursor, t):
    _empty(cursor, t["g"], t["sc"], t["od"], t["osd"], t["opd"], t["gap"])
    with _IndexesAfter(OutcomeSessionGroup, OutcomeSessionScore):
        _insert_session_rows(cursor, t, "s.status = %s", [COMPLETED], full=True)
    _add_up_days(cursor, t)
    with _IndexesAfter(OutcomePatientDay):
        _insert_patient_days(cursor, t)
    _insert_gaps(cursor, t)


def write_loaded_rows():
    """A bulk load's part of a full build: the per-session rows and the patient rows of
    every completed session in the base tables, into their emptied tables (whose indexes the
    load builds afterwards). The chain's copies (plans/demo_scale.py) then copy these rows
    with the sessions and patients they belong to, and `rebuild(rows_loaded=True)` adds up
    the rest: the same summary as a full build, without its work for every copy."""
    t = _tables()
    with connection.cursor() as cursor:
        _drop_temporary(cursor)
        _empty(cursor, t["g"], t["sc"], t["opd"])
        _insert_session_rows(cursor, t, "s.status = %s", [COMPLETED], full=True)
        _insert_patient_days(cursor, t)
        _drop_temporary(cursor)


def _build_some(cursor, t, days, sessions):
    """Marked days are recomputed whole, and the days they and the marked sessions' rows
    touch added up again. Marked sessions alone (the usual case) are recomputed and their
    rows' change applied to the day sums, reading only their own rows. Either way, the
    touched patients' rows are mended."""
    ops = connection.ops
    where, where_params = "s.status = %s", [COMPLETED]
    picks, pick_params = [], []
    ranges = _ranges(days) if days else []
    for first, after in ranges:
        picks.append("(s.scheduled_at >= %s AND s.scheduled_at < %s)")
        pick_params += [ops.adapt_datetimefield_value(first), ops.adapt_datetimefield_value(after)]
    cursor.execute(f"CREATE TEMPORARY TABLE {MARKED} (session_id bigint)")  # nosec B608: constant
    if sessions:
        for chunk in _chunks(sorted(sessions), 1000):
            cursor.executemany(
                f"INSERT INTO {MARKED} (session_id) VALUES (%s)",  # nosec B608: a constant name
                [(i,) for i in chunk],
            )
        _analyze(cursor, MARKED)
        picks.append(f"s.id IN (SELECT session_id FROM {MARKED})")  # nosec B608: constant
    where = f"{where} AND ({' OR '.join(picks)})"
    marked = f"session_id IN (SELECT session_id FROM {MARKED})"  # nosec B608: a constant name
    # What the marked sessions' rows added up to, and their days and patients, before.
    before = None if days else _session_sums(cursor, t, marked)
    cursor.execute(
        f"CREATE TEMPORARY TABLE {TOUCHED} AS SELECT day FROM {t['g']} WHERE {marked}"  # nosec B608: model meta
        f" UNION SELECT day FROM {t['sc']} WHERE {marked}"
    )
    cursor.execute(
        f"CREATE TEMPORARY TABLE {SESSION_DAYS} AS SELECT DISTINCT day, patient_id"  # nosec B608: model meta
        f" FROM {t['g']} WHERE {marked}"
    )
    for table in (t["g"], t["sc"]):
        if ranges:
            in_days, in_params = _in_ranges("day", ranges)
            cursor.execute(
                f"DELETE FROM {table} WHERE {marked} OR {in_days}",  # nosec B608: model meta
                in_params,
            )
        else:
            cursor.execute(f"DELETE FROM {table} WHERE {marked}")  # nosec B608: model meta
    _insert_session_rows(cursor, t, where, [*where_params, *pick_params])
    # ... and after.
    if before is not None and _apply_sum_changes(before, _session_sums(cursor, t, marked)):
        days_to_add_up = None
    else:
        days_to_add_up = _in_table(TOUCHED)
    cursor.execute(
        f"INSERT INTO {TOUCHED} (day) SELECT day FROM {t['g']} WHERE {marked}"  # nosec B608: model meta
        f" UNION SELECT day FROM {t['sc']} WHERE {marked}"
    )
    cursor.execute(
        f"INSERT INTO {SESSION_DAYS} (day, patient_id) SELECT DISTINCT day, patient_id"  # nosec B608: model meta
        f" FROM {t['g']} WHERE {marked}"
    )
    if days:
        adapt = connection.ops.adapt_datefield_value
        cursor.executemany(
            f"INSERT INTO {TOUCHED} (day) VALUES (%s)",  # nosec B608: a constant name
            [(adapt(d),) for d in sorted(days)],
        )
    _analyze(cursor, TOUCHED, SESSION_DAYS)
    if days_to_add_up:
        _add_up_days(cursor, t, days_to_add_up)
    if ranges:
        in_days, in_params = _in_ranges("day", ranges)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SESSION_GROUPS} AS SELECT DISTINCT day, treatment_id,"  # nosec B608: model meta
            f" scar_type_id, patient_id FROM {t['g']} WHERE {in_days}",
            in_params,
        )
        _analyze(cursor, SESSION_GROUPS)
        _refresh_patient_rows(cursor, t, lambda column: _in_ranges(column, ranges))
        for table in (SESSION_GROUPS, PATIENTS, PREV_CHANGES):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")  # nosec B608: a constant name
    if sessions:
        # Only the marked sessions' patients, on the days their rows were and are on.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {PATIENTS} AS SELECT DISTINCT patient_id"  # nosec B608: constant
            f" FROM {SESSION_DAYS}"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SESSION_GROUPS} AS SELECT DISTINCT g.day,"  # nosec B608: model meta
            f" g.treatment_id, g.scar_type_id, g.patient_id FROM {t['g']} g"
            f" JOIN {SESSION_DAYS} d ON d.day = g.day AND d.patient_id = g.patient_id"
        )
        _analyze(cursor, PATIENTS, SESSION_GROUPS)
        _refresh_patient_rows(cursor, t, _session_day_filter, patients_given=True)


def _session_sums(cursor, t, marked):
    """The marked sessions' rows added up per day sum's key: ({(day, treatment, scar type):
    [sessions, with an adverse event]}, {(day, treatment, scar type, instrument): [scores,
    change sum]})."""
    cursor.execute(
        "SELECT day, treatment_id, scar_type_id, COUNT(*), SUM(with_event)"  # nosec B608: model meta
        f" FROM {t['g']} WHERE {marked} GROUP BY day, treatment_id, scar_type_id"
    )
    groups = {(_as_date(d), tr, ty): [n, e] for d, tr, ty, n, e in cursor.fetchall()}
    cursor.execute(
        "SELECT day, treatment_id, scar_type_id, instrument, SUM(scores), SUM(change_sum)"  # nosec B608
        f" FROM {t['sc']} WHERE {marked} GROUP BY day, treatment_id, scar_type_id, instrument"
    )
    scores = {(_as_date(d), tr, ty, i): [n, c] for d, tr, ty, i, n, c in cursor.fetchall()}
    return groups, scores


def _apply_sum_changes(before, after):
    """Add (after - before) to the day sums: OutcomeDay and OutcomeScoreDay rows of the keys
    the marked sessions had or have, created, changed or deleted (at zero). False, with
    nothing changed, if a sum would come out impossible (below zero, a change without
    scores, more sessions with an event than sessions: the summary was not what its
    per-session rows say); the caller then adds the touched days up again from those rows."""
    plans = []
    for model, fields, old, new in (
        (OutcomeDay, ("sessions", "sessions_with_adverse_event"), before[0], after[0]),
        (OutcomeScoreDay, ("scores", "change_sum"), before[1], after[1]),
    ):
        change = {}
        for key in old.keys() | new.keys():
            was, now = old.get(key, [0, 0]), new.get(key, [0, 0])
            delta = [int(now[0]) - int(was[0]), int(now[1]) - int(was[1])]
            if any(delta):
                change[key] = delta
        if not change:
            continue
        keys = ["day", "treatment_id", "scar_type_id", "instrument"][: len(next(iter(change)))]
        rows = {
            tuple(getattr(row, k) for k in keys): row
            for row in model.objects.filter(day__in={key[0] for key in change})
        }
        created, updated, emptied = [], [], []
        for key, (count, total) in change.items():
            row = rows.get(key)
            if row is None:
                row = model(**dict(zip(keys, key, strict=True)), **dict.fromkeys(fields, 0))
            first = getattr(row, fields[0]) + count
            second = getattr(row, fields[1]) + total
            if first < 0 or (first == 0 and second) or (model is OutcomeDay and second > first):
                return False  # not what the per-session rows say
            setattr(row, fields[0], first)
            setattr(row, fields[1], second)
            if row.pk is None:
                if first:
                    created.append(row)
            elif first:
                updated.append(row)
            else:
                emptied.append(row.pk)
        plans.append((model, fields, created, updated, emptied))
    for model, fields, created, updated, emptied in plans:
        model.objects.bulk_create(created)
        model.objects.bulk_update(updated, list(fields), batch_size=500)
        if emptied:
            model.objects.filter(pk__in=emptied).delete()
    return True


def _as_date(value):
    """A date column's value as a date (SQLite gives text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _session_day_filter(column):
    """SQL: a patient row's day (`table.day`) is one its patient's marked sessions were or
    are on."""
    table = column.rpartition(".")[0]
    patient = f"{table}.patient_id"
    return (
        f"EXISTS (SELECT 1 FROM {SESSION_DAYS} d WHERE d.day = {column}"  # nosec B608: constant
        f" AND d.patient_id = {patient})",
        [],
    )


def _insert_patient_days(cursor, t):
    """All patient rows with their prev_day, from the per-session rows, into their emptied
    table."""
    select = (
        "SELECT day, treatment_id, scar_type_id, patient_id, LAG(day) OVER (PARTITION BY"  # nosec B608
        " patient_id, treatment_id, scar_type_id ORDER BY day)"
        " FROM (SELECT DISTINCT day, treatment_id, scar_type_id, patient_id"
        f" FROM {t['g']}) p"
    )
    cursor.execute(
        f"INSERT INTO {t['opd']} (day, treatment_id, scar_type_id, patient_id, prev_day)"  # nosec B608
        f" {select}"
    )


def _insert_gaps(cursor, t):
    """All gaps, from the patient rows, into their emptied table."""
    cursor.execute(
        f"INSERT INTO {t['gap']} (day, treatment_id, scar_type_id, prev_day, patients)"  # nosec B608
        " SELECT day, treatment_id, scar_type_id, prev_day, COUNT(*)"
        f" FROM {t['opd']} GROUP BY day, treatment_id, scar_type_id, prev_day"
    )


def _refresh_patient_rows(cursor, t, in_days, patients_given=False):
    """Bring the patient rows of some days to what SESSION_GROUPS says they are; mend
    prev_day and the gaps the changed rows change.

    `in_days(column)` gives the SQL choosing those days (for a patient row's day column).
    SESSION_GROUPS holds every group of those days for the patients concerned: without
    `patients_given` all patients (PATIENTS is then found: those whose rows go or come);
    with it, PATIENTS is given and only their rows are read.

    Only rows that go or come change anything: their patients' other rows may get another
    prev_day. The gaps change by: minus those patients' rows on the days as they were,
    minus and plus each of their other rows whose prev_day changes (old and new), plus their
    rows on the days as they are after.
    """
    pg = connection.vendor == "postgresql"
    # Day filters name their table: a filter may read the row's patient too.
    day_in, day_params = in_days(f"{t['opd']}.day")
    o_day_in, o_day_params = in_days("o.day")
    changes_day_in, changes_day_params = in_days(f"{PREV_CHANGES}.day")
    same = (
        "{a}.day = {b}.day AND {a}.treatment_id = {b}.treatment_id"
        " AND {a}.scar_type_id = {b}.scar_type_id AND {a}.patient_id = {b}.patient_id"
    )
    if not patients_given:
        gone = (
            f"SELECT o.patient_id FROM {t['opd']} o WHERE {o_day_in} AND NOT EXISTS"  # nosec B608
            f" (SELECT 1 FROM {SESSION_GROUPS} g WHERE {same.format(a='o', b='g')})"
        )
        new = (
            f"SELECT g.patient_id FROM {SESSION_GROUPS} g WHERE NOT EXISTS"  # nosec B608
            f" (SELECT 1 FROM {t['opd']} o WHERE {same.format(a='o', b='g')})"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE {PATIENTS} AS {gone} UNION {new}",  # nosec B608
            o_day_params,
        )
        _analyze(cursor, PATIENTS)
    theirs = f"patient_id IN (SELECT patient_id FROM {PATIENTS})"  # nosec B608: a constant name
    gaps = (
        "SELECT day, treatment_id, scar_type_id, {prev}, COUNT(*) FROM {table}"  # nosec B608
        " WHERE {where} GROUP BY day, treatment_id, scar_type_id, {prev}"
    )
    change = {}

    def count(sql, params, sign):
        cursor.execute(sql, params)
        for *key, n in cursor.fetchall():
            key = _gap_key(key)
            change[key] = change.get(key, 0) + sign * n

    on_days = gaps.format(prev="prev_day", table=t["opd"], where=f"{theirs} AND {day_in}")
    count(on_days, day_params, -1)
    cursor.execute(
        f"DELETE FROM {t['opd']} WHERE {day_in} AND {theirs} AND NOT EXISTS"  # nosec B608
        f" (SELECT 1 FROM {SESSION_GROUPS} g WHERE {same.format(a=t['opd'], b='g')})",
        day_params,
    )
    cursor.execute(
        f"INSERT INTO {t['opd']} (day, treatment_id, scar_type_id, patient_id)"  # nosec B608
        f" SELECT DISTINCT g.day, g.treatment_id, g.scar_type_id, g.patient_id"
        f" FROM {SESSION_GROUPS} g WHERE g.{theirs} AND NOT EXISTS"
        f" (SELECT 1 FROM {t['opd']} o WHERE {same.format(a='o', b='g')})"
    )
    differs = "IS DISTINCT FROM" if pg else "IS NOT"
    cursor.execute(
        f"CREATE TEMPORARY TABLE {PREV_CHANGES} AS SELECT * FROM (SELECT id, day,"  # nosec B608
        " treatment_id, scar_type_id, patient_id, prev_day AS old_prev, LAG(day) OVER"
        " (PARTITION BY patient_id, treatment_id, scar_type_id ORDER BY day) AS new_prev"
        f" FROM {t['opd']} WHERE {theirs}) x WHERE old_prev {differs} new_prev"
    )
    off_days = f"NOT {changes_day_in}"
    count(gaps.format(prev="old_prev", table=PREV_CHANGES, where=off_days), changes_day_params, -1)
    count(gaps.format(prev="new_prev", table=PREV_CHANGES, where=off_days), changes_day_params, 1)
    if pg:
        cursor.execute(
            f"UPDATE {t['opd']} o SET prev_day = c.new_prev"  # nosec B608: model meta
            f" FROM {PREV_CHANGES} c WHERE o.id = c.id"
        )
    else:
        cursor.execute(
            f"UPDATE {t['opd']} SET prev_day = (SELECT c.new_prev FROM {PREV_CHANGES} c"  # nosec B608
            f" WHERE c.id = {t['opd']}.id) WHERE id IN (SELECT id FROM {PREV_CHANGES})"
        )
    count(on_days, day_params, 1)
    _apply_gap_changes({key: n for key, n in change.items() if n})


def _gap_key(key):
    """(day, treatment, scar type, prev_day) with dates as dates (SQLite gives text)."""
    day, treatment_id, scar_type_id, prev_day = key
    as_date = lambda d: date.fromisoformat(d) if isinstance(d, str) else d  # noqa: E731
    return (as_date(day), treatment_id, scar_type_id, as_date(prev_day))


def _apply_gap_changes(change):
    """Add {(day, treatment, scar type, prev_day): patients} to the gap counts."""
    if not change:
        return
    existing = {}
    for chunk in _chunks(sorted({key[0] for key in change}), 500):
        for gap in OutcomePatientGap.objects.filter(day__in=chunk):
            existing[(gap.day, gap.treatment_id, gap.scar_type_id, gap.prev_day)] = gap
    created, updated, emptied = [], [], []
    for key, n in change.items():
        gap = existing.get(key)
        if gap is None:
            day, treatment_id, scar_type_id, prev_day = key
            created.append(
                OutcomePatientGap(
                    day=day,
                    treatment_id=treatment_id,
                    scar_type_id=scar_type_id,
                    prev_day=prev_day,
                    patients=n,
                )
            )
        else:
            gap.patients += n
            (updated if gap.patients else emptied).append(gap)
    OutcomePatientGap.objects.bulk_create(created)
    OutcomePatientGap.objects.bulk_update(updated, ["patients"], batch_size=500)
    for chunk in _chunks([gap.pk for gap in emptied], 500):
        OutcomePatientGap.objects.filter(pk__in=chunk).delete()


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _state():
    state = OutcomeSummaryState.objects.select_for_update().order_by("pk").first()
    if state is None:
        state = OutcomeSummaryState.objects.create(built=False, version=uuid.uuid4().hex)
    return state


def rebuild(*, rows_loaded=False):
    """Build the whole summary from the base tables (after a bulk load, or when unsure).

    `rows_loaded`: a bulk load wrote the per-session and patient rows (write_loaded_rows and
    the chain's copies of them); only the day sums and the gaps are added up from those."""
    with transaction.atomic():
        state = _state()
        OutcomeDirtyDay.objects.all().delete()
        OutcomeDirtySession.objects.all().delete()
        if rows_loaded:
            _add_up_loaded_rows()
        else:
            _build(None)
        state.built = True
        state.version = uuid.uuid4().hex
        state.save(update_fields=["built", "version"])
        return state.version


def refresh():
    """Bring the marked sessions and days up to date; the summary's version after it."""
    # Nothing marked, nothing to lock: one query answers the usual case.
    current = (
        OutcomeSummaryState.objects.filter(built=True)
        .annotate(
            dirty=Exists(OutcomeDirtyDay.objects.all()),
            stale=Exists(OutcomeDirtySession.objects.all()),
        )
        .values_list("version", "dirty", "stale")
        .order_by("pk")
        .first()
    )
    if current and not current[1] and not current[2]:
        return current[0]
    with transaction.atomic():
        # One refresher at a time: two recomputing one session would both insert its rows.
        state = _state()
        day_marks = list(OutcomeDirtyDay.objects.values_list("pk", "day"))
        session_marks = list(OutcomeDirtySession.objects.values_list("pk", "session_id"))
        if state.built and not day_marks and not session_marks:
            return state.version
        days = {day for _, day in day_marks}
        if not state.built or None in days:
            _build(None)
        else:
            _build(days, {session_id for _, session_id in session_marks})
        # Only the marks read: one written meanwhile stays for the next refresh.
        for model, marks in ((OutcomeDirtyDay, day_marks), (OutcomeDirtySession, session_marks)):
            for chunk in _chunks([pk for pk, _ in marks], 500):
                model.objects.filter(pk__in=chunk).delete()
        state.built = True
        state.version = uuid.uuid4().hex
        state.save(update_fields=["built", "version"])
        return state.version
