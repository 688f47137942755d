"""Progress reports: what a patient's scars looked like, what was done, how scores moved.

`build_report` reads a fixed number of queries whatever the number of plans or sessions,
then assembles plain objects the templates only display. `clinic_outcomes` aggregates in
the database.
"""

import base64
import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, F, Prefetch, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from clinic.timeutils import day_bounds, day_start
from clinic.uploads import thumbnail_bytes
from patients.models import ScarSite, ScarType
from plans import charts, scales, services
from plans.models import (
    AdverseEvent,
    Amendment,
    Assessment,
    OutcomeDay,
    OutcomePatientGap,
    OutcomeScoreDay,
    Plan,
    SafetyOverride,
    Session,
    SessionPhoto,
    SessionTreatment,
    Treatment,
)

logger = logging.getLogger(__name__)


@dataclass
class Series:
    """One scar site's scores on one instrument, baseline first."""

    instrument: scales.Instrument
    points: list  # Assessment rows in date order
    chart: str = ""

    @property
    def baseline(self):
        baselines = [a for a in self.points if a.session_id is None]
        return (baselines or self.points)[0]

    @property
    def latest(self):
        return self.points[-1]

    @property
    def change(self):
        return self.latest.total - self.baseline.total

    @property
    def percent(self):
        if not self.baseline.total:
            return None
        return round(100 * self.change / self.baseline.total)

    @property
    def session_only(self):
        """Improvement and pain are rated per session: no baseline to compare with."""
        return self.instrument.code in scales.PER_SESSION

    @property
    def verdict(self):
        """'better', 'worse' or 'unchanged', knowing whether lower is better."""
        if len(self.points) < 2 or self.change == 0:
            return "unchanged"
        improved = self.change < 0 if self.instrument.lower_is_better else self.change > 0
        return "better" if improved else "worse"


@dataclass
class PhotoPair:
    before: SessionPhoto | None
    latest: SessionPhoto | None


@dataclass
class SiteReport:
    site: ScarSite
    series: list[Series] = field(default_factory=list)
    photos: PhotoPair | None = None
    # Completed sessions treating this site that recorded no score for it: gaps in the record.
    unscored: list[Session] = field(default_factory=list)


@dataclass
class PlanSummary:
    plan: Plan
    courses: list
    done: int
    planned: int
    next_session: Session | None

    @property
    def left(self):
        return self.planned - self.done


@dataclass
class Report:
    patient: object
    plan: Plan | None
    generated_on: date
    staff: bool
    sites: list[SiteReport]
    plans: list[PlanSummary]
    sessions: list[Session]
    adverse_events: list[AdverseEvent]
    overrides: list[SafetyOverride]
    next_session: Session | None
    upcoming: list[Session] = field(default_factory=list)  # booked, from today on

    @property
    def sessions_done(self):
        return [s for s in self.sessions if s.status == Session.Status.COMPLETED]


def build_report(patient, *, plan=None, staff=True, embed_photos=False) -> Report:
    """The whole report for a patient (or one of their plans) from a fixed set of queries."""
    plans = Plan.objects.filter(patient=patient).select_related("clinician")
    if plan is not None:
        plans = plans.filter(pk=plan.pk)
    plans = list(
        plans.prefetch_related("courses__treatment", "target_sites").order_by("start_date", "pk")
    )
    sessions_query = (
        Session.objects.filter(plan__in=plans)
        .exclude(status=Session.Status.CANCELLED)
        .select_related("clinician", "plan", "location")
        .prefetch_related(
            Prefetch(
                "treatments",
                queryset=SessionTreatment.objects.select_related("treatment", "course"),
            ),
            "treatments__treatment__parameters",
        )
        .order_by("scheduled_at", "pk")
    )
    sessions = list(sessions_query)
    amended = set(
        Amendment.objects.filter(session__in=[s.pk for s in sessions]).values_list(
            "session_id", flat=True
        )
    )
    for session in sessions:
        session.amended = session.pk in amended
        for row in session.treatments.all():
            row.parameter_items = _parameter_items(row)
    if plan is not None:
        site_ids = {site.pk for p in plans for site in p.target_sites.all()}
        sites = ScarSite.objects.filter(pk__in=site_ids)
    else:
        sites = patient.scar_sites.active()
    sites = list(sites.prefetch_related("scar_types").order_by("body_site"))
    assessments = Assessment.objects.filter(scar_site__in=sites).order_by("assessed_on", "pk")
    if plan is not None:
        assessments = assessments.filter(Q(session__isnull=True) | Q(session__plan=plan))
    by_site, scored = {}, set()
    for assessment in assessments:
        scored.add((assessment.scar_site_id, assessment.session_id))
        by_site.setdefault(assessment.scar_site_id, {}).setdefault(
            assessment.instrument, []
        ).append(assessment)
    # A site's chart marks only the sessions of plans that treat that site.
    treats = {p.pk: {site.pk for site in p.target_sites.all()} for p in plans}
    done = [s for s in sessions if s.status == Session.Status.COMPLETED]
    photos = _photo_pairs(patient, sites, sessions if plan is not None else None, embed_photos)
    site_reports = []
    for site in sites:
        series = []
        for code in scales.INSTRUMENTS:  # display order
            points = by_site.get(site.pk, {}).get(code)
            if not points:
                continue
            instrument = scales.get(code)
            item = Series(instrument, points)
            item.chart = charts.trend_chart(
                [charts.Point(a.assessed_on, a.total) for a in points],
                low=instrument.min_total,
                high=instrument.max_total,
                markers=[s.scheduled_on for s in done if site.pk in treats[s.plan_id]],
                title=f"{site}: {instrument.name if staff else instrument.plain_name}",
                lower_is_better=instrument.lower_is_better,
            )
            series.append(item)
        unscored = [
            s for s in done if site.pk in treats[s.plan_id] and (site.pk, s.pk) not in scored
        ]
        site_reports.append(SiteReport(site, series, photos.get(site.pk), unscored))
    events = AdverseEvent.objects.filter(patient=patient).select_related("scar_site", "session")
    if plan is not None:
        events = events.filter(session__plan=plan)
    overrides = []
    if staff:
        overrides = list(
            SafetyOverride.objects.filter(session__in=[s.pk for s in sessions])
            .select_related("overridden_by", "treatment", "session")
            .order_by("overridden_at")
        )
    # "Next" means from today on: an overdue session is not the patient's next visit.
    from_today = day_start(timezone.localdate())
    upcoming = [
        s for s in sessions if s.status == Session.Status.SCHEDULED and s.scheduled_at >= from_today
    ]
    summaries = []
    for p in plans:
        own = [s for s in sessions if s.plan_id == p.pk]
        summaries.append(
            PlanSummary(
                plan=p,
                courses=list(p.courses.all()),
                done=sum(s.status == Session.Status.COMPLETED for s in own),
                planned=sum(s.status != Session.Status.MISSED for s in own),
                next_session=next((s for s in upcoming if s.plan_id == p.pk), None),
            )
        )
    return Report(
        patient=patient,
        plan=plan,
        generated_on=timezone.localdate(),
        staff=staff,
        sites=site_reports,
        plans=summaries,
        sessions=sessions,
        adverse_events=list(events.order_by("onset_on", "pk")),
        overrides=overrides,
        next_session=upcoming[0] if upcoming else None,
        upcoming=upcoming,
    )


def _parameter_items(row):
    """(label, value with unit) in the treatment's own order, for reading, not for machines."""
    items = []
    for definition in row.treatment.parameters.all():
        if definition.code in row.parameters:
            value = row.parameters[definition.code]
            if isinstance(value, bool):
                value = "yes" if value else "no"
            unit = f" {definition.unit}" if definition.unit else ""
            items.append((definition.label, f"{value}{unit}"))
    return items


def _photo_pairs(patient, sites, sessions, embed):
    """Before and after photo per site, only those with photography consent on the day.

    The pair a clinician chose on the comparison page when both photos may still be shown,
    otherwise the earliest photo and the latest of the same view (or simply the latest).
    The choice comes in the same query as the photos, so the query count stays fixed.
    """
    photo_consent = services.PhotoConsent(patient.pk)
    choice = "scar_site__report_photo_choice__"
    photos = (
        SessionPhoto.objects.filter(scar_site__in=sites, withdrawn_at=None)
        .annotate(
            chosen_as=Case(
                When(pk=F(f"{choice}before"), then=Value("before")),
                When(pk=F(f"{choice}after"), then=Value("after")),
                default=Value(""),
            )
        )
        .order_by("taken_on", "pk")
    )
    if sessions is not None:
        photos = photos.filter(session__in=[s.pk for s in sessions])
    allowed = {}
    for photo in photos:
        if photo_consent.allows(photo.taken_on):
            allowed.setdefault(photo.scar_site_id, []).append(photo)
    pairs = {}
    for site_id, items in allowed.items():
        chosen = {item.chosen_as: item for item in items if item.chosen_as}
        if "before" in chosen and "after" in chosen:
            before, after = chosen["before"], chosen["after"]
        else:
            before, later = items[0], items[1:]
            after = ([p for p in later if p.view == before.view] or later or [None])[-1]
        for item in (before, after):
            if item is not None:
                item.src = _data_uri(item) if embed else reverse("photo", args=[item.pk])
        pairs[site_id] = PhotoPair(before, after)
    return pairs


def _data_uri(photo):
    """A report-sized copy inline, so that the PDF renderer needs no logged-in request."""
    try:
        with photo.image.open("rb") as handle:
            kind, data = thumbnail_bytes(handle, settings.REPORT_PHOTO_SIDE)
    except Exception:  # a damaged or pre-check file must not take the report down
        logger.warning("Photo %s could not be read for a report", photo.pk, exc_info=True)
        return ""
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


# --- clinic outcomes -----------------------------------------------------------------------


@dataclass
class OutcomeRow:
    treatment: str
    scar_type: str
    patients: int
    sessions: int
    sessions_with_adverse_event: int
    mean_change: dict  # instrument code -> (mean change from baseline, number of scores)

    @property
    def adverse_event_share(self):
        return round(100 * self.sessions_with_adverse_event / self.sessions) if self.sessions else 0


def clinic_outcomes(*, start, end, treatment=None, scar_type=None, instrument=None):
    """Per treatment and scar type, completed sessions from start to end (inclusive).

    Read from the daily summary (plans.outcome_summary) after bringing it up to date, and
    cached per summary version: the same rows `direct_outcomes` computes from the records.
    Two scar types sharing a name would have to count a session once for both, which sums
    of days per type cannot: then the records are read directly.
    """
    from plans import outcome_summary

    version = outcome_summary.refresh()
    names = list(ScarType.objects.values_list("name", flat=True))
    if len(names) != len(set(names)):
        return direct_outcomes(
            start=start, end=end, treatment=treatment, scar_type=scar_type, instrument=instrument
        )
    key = f"outcomes:{version}:{start}:{end}:{instrument or ''}"
    rows = cache.get(key)
    if rows is None:
        rows = _summary_outcomes(start, end, instrument)
        cache.set(key, rows, 24 * 3600)
    wanted_treatment = getattr(treatment, "name", treatment)
    wanted_type = getattr(scar_type, "name", scar_type)
    return [
        OutcomeRow(
            treatment=t,
            scar_type=ty,
            patients=patients,
            sessions=sessions,
            sessions_with_adverse_event=events,
            mean_change=dict(means),
        )
        for t, ty, patients, sessions, events, means in rows
        if (not wanted_treatment or t == wanted_treatment)
        and (not wanted_type or ty == wanted_type)
    ]


def _summary_outcomes(start, end, instrument):
    """(treatment, scar type, patients, sessions, with events, means) from the summary."""
    day = connection.ops.adapt_datefield_value
    tables = {
        "od": OutcomeDay._meta.db_table,
        "osd": OutcomeScoreDay._meta.db_table,
        "gap": OutcomePatientGap._meta.db_table,
        "t": Treatment._meta.db_table,
        "ty": ScarType._meta.db_table,
    }
    names = (
        " JOIN {t} t ON t.id = x.treatment_id JOIN {ty} ty ON ty.id = x.scar_type_id"
        " WHERE x.day >= %s AND x.day <= %s"
    ).format(**tables)
    params = [day(start), day(end)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.name, ty.name, SUM(x.sessions), SUM(x.sessions_with_adverse_event)"  # nosec B608: table names from model meta; every value is a parameter
            f" FROM {tables['od']} x{names} GROUP BY t.name, ty.name ORDER BY t.name, ty.name",
            params,
        )
        counts = cursor.fetchall()
        # Distinct patients without DISTINCT: each counted on their first day in the range,
        # the one whose previous day in the group is before start (or none).
        cursor.execute(
            "SELECT t.name, ty.name, x.n FROM (SELECT treatment_id, scar_type_id,"  # nosec B608: as above
            f" SUM(patients) AS n FROM {tables['gap']} WHERE day >= %s AND day <= %s"
            " AND (prev_day IS NULL OR prev_day < %s) GROUP BY treatment_id, scar_type_id) x"
            f" JOIN {tables['t']} t ON t.id = x.treatment_id"
            f" JOIN {tables['ty']} ty ON ty.id = x.scar_type_id",
            [*params, params[0]],
        )
        patients = {(t, ty): n for t, ty, n in cursor.fetchall()}
        score_filter = " AND x.instrument = %s" if instrument else ""
        cursor.execute(
            "SELECT t.name, ty.name, x.instrument, SUM(x.change_sum), SUM(x.scores)"  # nosec B608: as above
            f" FROM {tables['osd']} x{names}{score_filter}"
            " GROUP BY t.name, ty.name, x.instrument ORDER BY t.name, ty.name, x.instrument",
            params + ([instrument] if instrument else []),
        )
        means = {}
        for t, ty, code, total, n in cursor.fetchall():
            # int / int is correctly rounded, as the AVG it replaces.
            means.setdefault((t, ty), []).append((code, (round(int(total) / int(n), 1), int(n))))
    return [
        (t, ty, patients.get((t, ty), 0), int(n), int(events), means.get((t, ty), []))
        for t, ty, n, events in counts
    ]


def direct_outcomes(*, start, end, treatment=None, scar_type=None, instrument=None):
    """Per treatment and scar type, completed sessions from start to end (inclusive).

    Patients and sessions are distinct counts; the adverse-event share is the share of those
    sessions with at least one adverse event; the mean change of a score is the mean, over
    the scores recorded in those sessions, of (score - that site's first baseline on the same
    instrument). Two grouped queries do the work in the database; the optional treatment and
    scar-type filters then pick among the groups.
    """
    first, _ = day_bounds(start)
    _, after = day_bounds(end)
    in_range = {
        "session__status": Session.Status.COMPLETED,
        "session__scheduled_at__gte": first,
        "session__scheduled_at__lt": after,
    }
    treatment_key = "treatment__name"
    type_key = "session__plan__target_sites__scar_types__name"
    counts = (
        SessionTreatment.objects.filter(**in_range)
        .exclude(**{type_key: None})
        .values(treatment_key, type_key)
        .annotate(
            patients=Count("session__patient", distinct=True),
            sessions=Count("session", distinct=True),
            with_events=Count(
                "session", filter=Q(session__adverse_events__isnull=False), distinct=True
            ),
        )
        .order_by(treatment_key, type_key)
    )
    means = {}
    for treatment_name, type_name, code, mean, n in _mean_changes(first, after, instrument):
        means.setdefault((treatment_name, type_name), {})[code] = (round(float(mean), 1), n)
    wanted_treatment = getattr(treatment, "name", treatment)
    wanted_type = getattr(scar_type, "name", scar_type)
    return [
        OutcomeRow(
            treatment=row[treatment_key],
            scar_type=row[type_key],
            patients=row["patients"],
            sessions=row["sessions"],
            sessions_with_adverse_event=row["with_events"],
            mean_change=means.get((row[treatment_key], row[type_key]), {}),
        )
        for row in counts
        if (not wanted_treatment or row[treatment_key] == wanted_treatment)
        and (not wanted_type or row[type_key] == wanted_type)
    ]


def _mean_changes(first, after, instrument):
    """(treatment, scar type, instrument, mean change, number of scores) of completed sessions.

    Each score's baseline (its site's first score on that instrument outside a session) is
    looked up once per score through the partial index assessment_baseline_idx: on
    PostgreSQL in a LATERAL join, elsewhere in a derived table. (A Subquery annotation that
    is also filtered on puts the lookup in the SQL twice: it ran twice per score.) A score is
    unique per session, site and instrument, so COUNT(*) counts scores without a DISTINCT
    sort, as long as a session does not hold the same treatment twice (it then counts twice,
    as it always did in the mean).
    """
    a = Assessment._meta.db_table
    s = Session._meta.db_table
    st = SessionTreatment._meta.db_table
    treatment = SessionTreatment._meta.get_field("treatment").related_model._meta.db_table
    types_field = ScarSite._meta.get_field("scar_types")
    site_types = types_field.remote_field.through._meta.db_table
    scar_type = types_field.related_model._meta.db_table
    per_session = list(scales.PER_SESSION)
    where = (
        "s.status = %s AND s.scheduled_at >= %s AND s.scheduled_at < %s"
        f" AND a.instrument NOT IN ({', '.join(['%s'] * len(per_session))})"
    )
    ops = connection.ops
    params = [
        Session.Status.COMPLETED.value,
        ops.adapt_datetimefield_value(first),
        ops.adapt_datetimefield_value(after),
        *per_session,
    ]
    if instrument:
        where += " AND a.instrument = %s"
        params.append(instrument)
    first_baseline = (
        f"SELECT b.total FROM {a} b WHERE b.session_id IS NULL"  # nosec B608: table names from model meta; every value is a parameter
        " AND b.scar_site_id = a.scar_site_id AND b.instrument = a.instrument"
        " ORDER BY b.assessed_on, b.id LIMIT 1"
    )
    if connection.vendor == "postgresql":
        # OFFSET 0 keeps the scores in range the driving set: the planner would otherwise
        # look up a baseline for every score ever taken in a session, then filter.
        scored = (
            "SELECT r.session_id, r.scar_site_id, r.instrument, r.total - base.total AS change"  # nosec B608: table names from model meta; every value is a parameter
            " FROM (SELECT a.session_id, a.scar_site_id, a.instrument, a.total"
            f" FROM {s} s JOIN {a} a ON a.session_id = s.id WHERE {where} OFFSET 0) r"
            f" CROSS JOIN LATERAL ({first_baseline.replace('a.', 'r.')}) base"
        )
    else:
        scored = (
            "SELECT * FROM (SELECT a.session_id, a.scar_site_id, a.instrument,"  # nosec B608: table names from model meta; every value is a parameter
            f" a.total - ({first_baseline}) AS change FROM {s} s JOIN {a} a"
            f" ON a.session_id = s.id WHERE {where}) y WHERE y.change IS NOT NULL"
        )
    sql = (
        "SELECT t.name, ty.name, x.instrument, AVG(x.change), COUNT(*)"  # nosec B608: table names from model meta; every value is a parameter
        f" FROM ({scored}) x"
        f" JOIN {st} st ON st.session_id = x.session_id"
        f" JOIN {treatment} t ON t.id = st.treatment_id"
        f" JOIN {site_types} sty ON sty.scarsite_id = x.scar_site_id"
        f" JOIN {scar_type} ty ON ty.id = sty.scartype_id"
        " GROUP BY t.name, ty.name, x.instrument ORDER BY t.name, ty.name, x.instrument"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
