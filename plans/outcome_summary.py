"""The clinic outcomes summary: per local day, what the outcomes page adds up.

The page used to aggregate a year of completed sessions and their scores per request (7 s at a
chain's million sessions). Instead, three narrow tables (plans.models.OutcomeDay,
OutcomeScoreDay, OutcomePatientDay) hold each local day's groups; any range of days is a sum of
days, except distinct patients, which are counted from one row per (day, treatment, scar type,
patient).

Keeping it current: every write that can change a completed session's numbers marks the local
day(s) it touches in OutcomeDirtyDay, in the same transaction (signals below; the bulk loader
calls `rebuild()` at its end). `refresh()`, called by the page before it reads, recomputes the
marked days set-based from the base tables and changes the state's version, which keys the
page's cache. A day mark without a day (or no state row yet) means rebuild everything.
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
    OutcomePatientDay,
    OutcomePatientGap,
    OutcomeScoreDay,
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


def _local_day(moment):
    return timezone.localtime(moment).date() if moment else None


def _completed_days(sessions):
    """Local days of the completed sessions in a Session queryset."""
    moments = sessions.filter(status=COMPLETED).values_list("scheduled_at", flat=True).distinct()
    return {_local_day(m) for m in moments}


def _session_days(session_ids):
    ids = {i for i in session_ids if i}
    return _completed_days(Session.objects.filter(pk__in=ids)) if ids else set()


def _site_days(site_ids, instrument=None):
    """Days of completed sessions that score these sites (on `instrument`) or treat them."""
    ids = {i for i in site_ids if i}
    if not ids:
        return set()
    scored = Assessment.objects.filter(scar_site__in=ids, session__isnull=False)
    if instrument:
        scored = scored.filter(instrument=instrument)
    days = _completed_days(Session.objects.filter(pk__in=scored.values("session")))
    if not instrument:
        plans = Plan.objects.filter(target_sites__in=ids).values("pk")
        days |= _completed_days(Session.objects.filter(plan__in=plans))
    return days


# Fields whose values before a save decide which days a change leaves out of date.
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
    days = set()
    if now["status"] == COMPLETED:
        days.add(_local_day(instance.scheduled_at))
    if before.get("status") == COMPLETED:
        days.add(_local_day(before["scheduled_at"]))
    mark_days(days)
    _remember(sender, instance)


def _session_deleted(sender, instance, **kwargs):
    if instance.status == COMPLETED:
        mark_days([_local_day(instance.scheduled_at)])


def _session_child_changed(sender, instance, created=False, **kwargs):
    """A treatment or adverse event of a session: its session's day (and a former one)."""
    before = _before(instance)
    mark_days(_session_days([instance.session_id, before.get("session_id")]))
    _remember(sender, instance)


def _assessment_changed(sender, instance, created=False, **kwargs):
    before = _before(instance)
    days = _session_days([instance.session_id, before.get("session_id")])
    # A score outside a session is a baseline (or may have been one): the first baseline
    # sets the change of every score of its site and instrument.
    if instance.session_id is None:
        days |= _site_days([instance.scar_site_id], instance.instrument)
    if before and before.get("session_id") is None and before.get("scar_site_id"):
        days |= _site_days([before["scar_site_id"]], before["instrument"])
    mark_days(days)
    _remember(sender, instance)


def _site_types_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # a scar type's sites edited from the type's side: rare, rebuild
        mark_everything()
    else:
        mark_days(_site_days([instance.pk]))


def _plan_sites_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:
        mark_everything()
    else:
        mark_days(_completed_days(Session.objects.filter(plan=instance)))


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
        "od": OutcomeDay._meta.db_table,
        "osd": OutcomeScoreDay._meta.db_table,
        "opd": OutcomePatientDay._meta.db_table,
        "gap": OutcomePatientGap._meta.db_table,
    }


def _day_sql():
    """The local date of s.scheduled_at in SQL, with its parameters."""
    return connection.ops.datetime_cast_date_sql(
        "s.scheduled_at", (), timezone.get_current_timezone_name()
    )


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


SESSION_GROUPS = "outcome_session_groups"  # temporary: one refresh's (session, group) rows
PATIENTS = "outcome_patients"  # temporary: the patients whose prev_day may change
BASELINES = "outcome_baselines"  # temporary: every site's first baseline (a full build)
PREV_CHANGES = "outcome_prev_changes"  # temporary: patient rows whose prev_day changes


def _in_days(column, ranges):
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


def _drop_temporary(cursor):
    for table in (SESSION_GROUPS, PATIENTS, BASELINES, PREV_CHANGES):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")  # nosec B608: a constant name


def _build(days):
    """Recompute the summary rows of `days` (None: all days) from the base tables."""
    t = _tables()
    ops = connection.ops
    pg = connection.vendor == "postgresql"
    day, day_params = _day_sql()
    where, where_params = "s.status = %s", [COMPLETED]
    ranges = None
    if days is not None:
        ranges = _ranges(days)
        where += (
            " AND ("
            + " OR ".join(["(s.scheduled_at >= %s AND s.scheduled_at < %s)"] * len(ranges))
            + ")"
        )
        for first, after in ranges:
            where_params += [
                ops.adapt_datetimefield_value(first),
                ops.adapt_datetimefield_value(after),
            ]
    per_session = list(scales.PER_SESSION)
    with connection.cursor() as cursor:
        _drop_temporary(cursor)
        if pg and days is None:
            # A whole build sorts and hashes millions of rows: in memory, not on disk.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Each completed session once per (treatment, plan target site's scar type).
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SESSION_GROUPS} AS"  # nosec B608: table names from model meta
            f" SELECT {day} AS day, st.treatment_id, sty.scartype_id, s.id AS session_id,"
            " s.patient_id,"
            f" CASE WHEN EXISTS (SELECT 1 FROM {t['ae']} ae WHERE ae.session_id = s.id)"
            f" THEN 1 ELSE 0 END AS with_event FROM {t['s']} s"
            f" JOIN {t['st']} st ON st.session_id = s.id"
            f" JOIN {t['pts']} pts ON pts.plan_id = s.plan_id"
            f" JOIN {t['sty']} sty ON sty.scarsite_id = pts.scarsite_id WHERE {where}"
            # Grouped on the session's key, not made DISTINCT on every column: hashed, not
            # sorted (a third less at 1.9 million joined rows).
            " GROUP BY s.id, st.treatment_id, sty.scartype_id",
            [*day_params, *where_params],
        )
        if days is None:
            for table in (t["od"], t["osd"], t["opd"], t["gap"]):
                cursor.execute(
                    ("TRUNCATE " if pg else "DELETE FROM ") + table  # nosec B608: model meta
                )
            _insert_day_counts(cursor, t)
            _build_patient_rows(cursor, t)
        else:
            day_in, day_in_params = _in_days("day", ranges)
            for table in (t["od"], t["osd"]):
                cursor.execute(
                    f"DELETE FROM {table} WHERE {day_in}",  # nosec B608: as above
                    day_in_params,
                )
            _insert_day_counts(cursor, t)
            _refresh_patient_rows(cursor, t, ranges)
        scored_where = f"{where} AND a.instrument NOT IN ({', '.join(['%s'] * len(per_session))})"
        first_baselines = (
            "SELECT scar_site_id, instrument, total FROM (SELECT b.scar_site_id,"  # nosec B608
            " b.instrument, b.total, ROW_NUMBER() OVER (PARTITION BY b.scar_site_id,"
            " b.instrument ORDER BY b.assessed_on, b.id) AS n"
            f" FROM {t['a']} b WHERE b.session_id IS NULL) f WHERE n = 1"
        )
        if pg and days is not None:
            # A few days: each score's first baseline through assessment_baseline_idx.
            scored = (
                f"SELECT r.day, r.session_id, r.scar_site_id, r.instrument,"  # nosec B608: as above
                " r.total - base.total AS change"
                f" FROM (SELECT {day} AS day, a.session_id, a.scar_site_id, a.instrument,"
                f" a.total FROM {t['s']} s JOIN {t['a']} a ON a.session_id = s.id"
                f" WHERE {scored_where} OFFSET 0) r CROSS JOIN LATERAL ("
                f"SELECT b.total FROM {t['a']} b WHERE b.session_id IS NULL"
                " AND b.scar_site_id = r.scar_site_id AND b.instrument = r.instrument"
                " ORDER BY b.assessed_on, b.id LIMIT 1) base"
            )
        else:
            if pg:
                # Every site's first baselines once, in the baseline index's order, and
                # counted: estimated as a join filter, they made the planner loop per score.
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {BASELINES} AS SELECT DISTINCT ON"  # nosec B608
                    " (b.scar_site_id, b.instrument) b.scar_site_id, b.instrument, b.total"
                    f" FROM {t['a']} b WHERE b.session_id IS NULL"
                    " ORDER BY b.scar_site_id, b.instrument, b.assessed_on, b.id"
                )
                cursor.execute(f"ANALYZE {BASELINES}")  # nosec B608: a constant name
                first_baselines = f"SELECT * FROM {BASELINES}"  # nosec B608: a constant name
            scored = (
                f"SELECT {day} AS day, a.session_id, a.scar_site_id, a.instrument,"  # nosec B608
                f" a.total - base.total AS change FROM {t['s']} s"
                f" JOIN {t['a']} a ON a.session_id = s.id JOIN ({first_baselines}) base"
                " ON base.scar_site_id = a.scar_site_id AND base.instrument = a.instrument"
                f" WHERE {scored_where}"
            )
        cursor.execute(
            f"INSERT INTO {t['osd']} (day, treatment_id, scar_type_id, instrument, scores,"  # nosec B608
            " change_sum) SELECT x.day, st.treatment_id, sty.scartype_id, x.instrument,"
            f" COUNT(*), SUM(x.change) FROM ({scored}) x"
            f" JOIN {t['st']} st ON st.session_id = x.session_id"
            f" JOIN {t['sty']} sty ON sty.scarsite_id = x.scar_site_id"
            " GROUP BY x.day, st.treatment_id, sty.scartype_id, x.instrument",
            [*day_params, *where_params, *per_session],
        )
        _drop_temporary(cursor)


def _insert_day_counts(cursor, t):
    cursor.execute(
        f"INSERT INTO {t['od']} (day, treatment_id, scar_type_id, sessions,"  # nosec B608: model meta
        " sessions_with_adverse_event) SELECT day, treatment_id, scartype_id, COUNT(*),"
        f" SUM(with_event) FROM {SESSION_GROUPS} GROUP BY day, treatment_id, scartype_id"
    )


def _build_patient_rows(cursor, t):
    """All patient rows with their prev_day, and their gaps, into emptied tables."""
    select = (
        "SELECT day, treatment_id, scartype_id, patient_id, LAG(day) OVER (PARTITION BY"  # nosec B608
        " patient_id, treatment_id, scartype_id ORDER BY day)"
        " FROM (SELECT DISTINCT day, treatment_id, scartype_id, patient_id"
        f" FROM {SESSION_GROUPS}) p"
    )
    insert = (
        f"INSERT INTO {t['opd']} (day, treatment_id, scar_type_id, patient_id, prev_day) {select}"  # nosec B608
    )
    if connection.vendor == "postgresql":
        # Indexes built once after the rows are in, not kept up row by row (3x faster).
        model = OutcomePatientDay
        with connection.schema_editor(atomic=False) as editor:
            for constraint in model._meta.constraints:
                editor.remove_constraint(model, constraint)
            for index in model._meta.indexes:
                editor.remove_index(model, index)
        cursor.execute(insert)
        with connection.schema_editor(atomic=False) as editor:
            for constraint in model._meta.constraints:
                editor.add_constraint(model, constraint)
            for index in model._meta.indexes:
                editor.add_index(model, index)
    else:
        cursor.execute(insert)
    cursor.execute(
        f"INSERT INTO {t['gap']} (day, treatment_id, scar_type_id, prev_day, patients)"  # nosec B608
        " SELECT day, treatment_id, scar_type_id, prev_day, COUNT(*)"
        f" FROM {t['opd']} GROUP BY day, treatment_id, scar_type_id, prev_day"
    )
    if connection.vendor == "postgresql":
        # Counted now, so the next refresh's plans know the tables' new size.
        cursor.execute(f"ANALYZE {t['opd']}, {t['gap']}")  # nosec B608: model meta


def _refresh_patient_rows(cursor, t, ranges):
    """Bring the patient rows of the marked days to what they should be; mend prev_day and
    the gaps the changed rows change.

    Only rows that go or come change anything: their patients' other rows may get another
    prev_day. The gaps change by: minus those patients' rows on the marked days as they
    were, minus and plus each of their other rows whose prev_day changes (old and new), plus
    their rows on the marked days as they are after.
    """
    pg = connection.vendor == "postgresql"
    day_in, day_params = _in_days("day", ranges)
    o_day_in, _ = _in_days("o.day", ranges)
    same = (
        "{a}.day = {b}.day AND {a}.treatment_id = {b}.treatment_id"
        " AND {a}.scar_type_id = {b}.scartype_id AND {a}.patient_id = {b}.patient_id"
    )
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
        day_params,
    )
    if pg:
        cursor.execute(f"ANALYZE {PATIENTS}")  # nosec B608: a constant name
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
        f" SELECT DISTINCT g.day, g.treatment_id, g.scartype_id, g.patient_id"
        f" FROM {SESSION_GROUPS} g WHERE g.{theirs} AND NOT EXISTS"
        f" (SELECT 1 FROM {t['opd']} o WHERE {same.format(a='o', b='g')})"
    )
    differs = "IS DISTINCT FROM" if pg else "IS NOT"
    cursor.execute(
        f"CREATE TEMPORARY TABLE {PREV_CHANGES} AS SELECT * FROM (SELECT id, day,"  # nosec B608
        " treatment_id, scar_type_id, prev_day AS old_prev, LAG(day) OVER (PARTITION BY"
        " patient_id, treatment_id, scar_type_id ORDER BY day) AS new_prev"
        f" FROM {t['opd']} WHERE {theirs}) x WHERE old_prev {differs} new_prev"
    )
    off_days = f"NOT {day_in}"
    count(gaps.format(prev="old_prev", table=PREV_CHANGES, where=off_days), day_params, -1)
    count(gaps.format(prev="new_prev", table=PREV_CHANGES, where=off_days), day_params, 1)
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


def rebuild():
    """Build the whole summary from the base tables (after a bulk load, or when unsure)."""
    with transaction.atomic():
        state = _state()
        OutcomeDirtyDay.objects.all().delete()
        _build(None)
        state.built = True
        state.version = uuid.uuid4().hex
        state.save(update_fields=["built", "version"])
        return state.version


def refresh():
    """Bring the marked days up to date; the summary's version after it."""
    # Nothing marked, nothing to lock: one query answers the usual case.
    current = (
        OutcomeSummaryState.objects.filter(built=True)
        .annotate(dirty=Exists(OutcomeDirtyDay.objects.all()))
        .values_list("version", "dirty")
        .order_by("pk")
        .first()
    )
    if current and not current[1]:
        return current[0]
    with transaction.atomic():
        # One refresher at a time: two recomputing one day would both insert its rows.
        state = _state()
        marks = list(OutcomeDirtyDay.objects.values_list("pk", "day"))
        if state.built and not marks:
            return state.version
        days = {day for _, day in marks}
        if not state.built or None in days:
            _build(None)
        else:
            _build(days)
        # Only the marks read: one written meanwhile stays for the next refresh.
        for chunk in _chunks([pk for pk, _ in marks], 500):
            OutcomeDirtyDay.objects.filter(pk__in=chunk).delete()
        state.built = True
        state.version = uuid.uuid4().hex
        state.save(update_fields=["built", "version"])
        return state.version
