"""Writes that touch several records at once, each in one transaction.

Keyword-only arguments; names are <thing>_<action>. Every write runs full_clean() and records
who made it (simple-history's history_user). Safety rules are evaluated through
`PatientSafety`, which loads a patient's facts once and answers for any treatment and date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from patients.models import Patient
from plans import safety, scheduling
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
from plans.parameters import clean_parameters

OVERRIDE_PERMISSION = "plans.override_safety_block"
LIVE_STATUSES = (Session.Status.SCHEDULED, Session.Status.COMPLETED)


# --- safety --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedFinding:
    """A finding for one treatment on one day; `key` names it in an override form."""

    on: date
    treatment: Treatment
    finding: safety.Finding

    @property
    def key(self):
        return override_key(self.on, self.treatment.code, self.finding.rule)

    @property
    def blocks(self):
        return self.finding.blocks


def override_key(on, treatment_code, rule):
    return f"{on.isoformat()}|{treatment_code}|{rule}"


class SafetyBlocked(Exception):
    """One or more blocking findings have no override reason."""

    def __init__(self, findings):
        self.findings = list(findings)
        names = "; ".join(f"{f.on}: {f.finding.message}" for f in self.findings)
        super().__init__(f"Blocked by safety rules: {names}")


class StaleEdit(Exception):
    """Someone else saved this record after the form was opened."""

    def __init__(self, obj):
        self.obj = obj
        super().__init__(
            f"This {obj._meta.verbose_name} was changed by someone else while you were editing "
            "it. Nothing was saved; reload to see their changes, then apply yours again."
        )


class PatientSafety:
    """A patient's facts loaded once (flags, acne records, sessions), evaluated per day."""

    def __init__(self, patient: Patient, *, exclude_sessions: Iterable[int] = (), _loaded=None):
        self.patient = patient
        if _loaded is None:
            _loaded = _load_safety_facts([patient], exclude_sessions)
        self.settings, flags, acne, sessions = _loaded
        self.flags = tuple(flags.get(patient.pk, ()))
        self.acne = sorted(acne.get(patient.pk, ()))
        self.sessions = list(sessions.get(patient.pk, ()))

    @classmethod
    def for_patients(cls, patients, *, exclude_sessions: Iterable[int] = ()):
        """One checker per patient from a fixed number of queries (for list pages)."""
        patients = list({p.pk: p for p in patients}.values())
        loaded = _load_safety_facts(patients, exclude_sessions)
        return {p.pk: cls(p, _loaded=loaded) for p in patients}

    def acne_on(self, day):
        """(level, recorded on) of the latest acne record on or before `day`."""
        records = [
            (level, recorded_on) for recorded_on, _, level in self.acne if recorded_on <= day
        ]
        return records[-1] if records else ("", None)

    def acne_level_on(self, day):
        return self.acne_on(day)[0]

    def findings(self, treatment, on, *, parameters=None, extra_sessions=(), exclude_on=None):
        """Findings for a treatment on a day; `exclude_on` leaves out that day's own visit."""
        others = [s for s in self.sessions if s.on != exclude_on] if exclude_on else self.sessions
        acne_level, acne_recorded_on = self.acne_on(on)
        ctx = safety.SafetyContext(
            on=on,
            treatment=treatment.facts(),
            fitzpatrick=self.patient.fitzpatrick_type,
            acne_level=acne_level,
            acne_recorded_on=acne_recorded_on,
            flags=self.flags,
            parameters=parameters or {},
            other_sessions=tuple(others) + tuple(extra_sessions),
        )
        return [CheckedFinding(on, treatment, f) for f in safety.evaluate(ctx, self.settings)]


def _load_safety_facts(patients, exclude_sessions):
    """Rule settings, flags, acne records and live sessions of these patients: 4 queries."""
    from patients.models import AcneActivity, MedicalFlag

    ids = [p.pk for p in patients]
    flags, acne, sessions = {}, {}, {}
    for pid, kind, start, end in MedicalFlag.objects.filter(patient__in=ids).values_list(
        "patient_id", "kind", "started_on", "ended_on"
    ):
        flags.setdefault(pid, []).append(safety.FlagPeriod(kind, start, end))
    for pid, day, pk, level in AcneActivity.objects.filter(patient__in=ids).values_list(
        "patient_id", "recorded_on", "id", "level"
    ):
        acne.setdefault(pid, []).append((day, pk, level))
    # Filter on the patient alone so the (patient, scheduled_at) index drives the query;
    # status and exclusions are cheap to apply to a few rows per patient here.
    excluded = set(exclude_sessions)
    rows = [
        (patient_id, moment, treatment_id)
        for pk, patient_id, moment, status, treatment_id in Session.objects.filter(
            patient__in=ids, treatments__isnull=False
        )
        .order_by()
        .values_list("pk", "patient_id", "scheduled_at", "status", "treatments__treatment")
        if status in LIVE_STATUSES and pk not in excluded
    ]
    treatments = Treatment.objects.in_bulk({treatment_id for _, _, treatment_id in rows})
    facts = {pk: treatment.facts() for pk, treatment in treatments.items()}
    for pid, moment, treatment_id in rows:
        day = timezone.localtime(moment).date()
        sessions.setdefault(pid, []).append(safety.OtherSession(day, facts[treatment_id]))
    return SafetyRuleSetting.current(), flags, acne, sessions


def findings_for_sessions(sessions) -> dict[int, list[CheckedFinding]]:
    """Each session's findings on its own date, for list pages: queries do not grow per row.

    The sessions must come with `patient` selected and `treatments__treatment` prefetched.
    """
    sessions = list(sessions)
    checkers = PatientSafety.for_patients([s.patient for s in sessions])
    result = {}
    for session in sessions:
        checker = checkers[session.patient_id]
        on = session.scheduled_on
        result[session.pk] = [
            checked
            for row in session.treatments.all()
            for checked in checker.findings(
                row.treatment, on, parameters=row.parameters, exclude_on=on
            )
        ]
    return result


def _settle_blocks(checked, *, user, overrides):
    """Blocks need an override reason from someone allowed to give one; returns the overrides."""
    overrides = {key: (reason or "").strip() for key, reason in (overrides or {}).items()}

    def reason_for(checked):
        # One reason may cover every date a rule blocks: "rule:<code>".
        return overrides.get(checked.key) or overrides.get(f"rule:{checked.finding.rule}")

    blocks = [c for c in checked if c.blocks]
    unresolved = [c for c in blocks if not reason_for(c)]
    if unresolved:
        raise SafetyBlocked(unresolved)
    if blocks and not user.has_perm(OVERRIDE_PERMISSION):
        raise PermissionDenied("Only a clinician can override a blocking safety rule.")
    return [(c, reason_for(c)) for c in blocks]


def _record_overrides(session, accepted, *, user):
    for checked, reason in accepted:
        _save(
            SafetyOverride(
                session=session,
                treatment=checked.treatment,
                rule=checked.finding.rule,
                finding=checked.finding.message,
                reason=reason,
                overridden_by=user,
            ),
            user=user,
        )


# --- helpers -------------------------------------------------------------------------------


def _save(obj, *, user, **kwargs):
    obj.full_clean()
    obj._history_user = user
    obj.save(**kwargs)
    return obj


def _at(day: date, plan: Plan) -> datetime:
    """The plan's preferred time on a day, in the clinic's time zone."""
    moment = plan.preferred_time
    if isinstance(moment, str):
        moment = datetime.strptime(moment, "%H:%M").time()
    return timezone.make_aware(datetime.combine(day, moment))


def _shift(moment, delta):
    """Move by whole days and hours on the clinic's wall clock (09:00 stays 09:00 across DST)."""
    local = timezone.localtime(moment).replace(tzinfo=None)
    return timezone.make_aware(local + delta)


def _local_delta(new_start, old_start):
    """The wall-clock difference between two moments in the clinic's zone."""
    return timezone.localtime(new_start).replace(tzinfo=None) - timezone.localtime(
        old_start
    ).replace(tzinfo=None)


def _claim_version(obj, expected_version):
    """Refuse a save based on an older copy of the record (no lost updates)."""
    model = type(obj)
    query = model.objects.filter(pk=obj.pk)
    if expected_version is not None:
        query = query.filter(version=expected_version)
    if not query.update(version=F("version") + 1):
        raise StaleEdit(obj)
    obj.version = model.objects.values_list("version", flat=True).get(pk=obj.pk)


# --- plans ---------------------------------------------------------------------------------


@dataclass
class CourseInput:
    treatment: Treatment
    sessions_count: int
    interval_days: int = 0
    offset_days: int = 0
    label: str = ""
    default_parameters: dict = field(default_factory=dict)


@transaction.atomic
def plan_create(
    *,
    patient,
    title,
    clinician,
    start_date,
    target_sites,
    courses: Iterable[CourseInput],
    user,
    goal="",
    internal_notes="",
    preferred_time=None,
) -> Plan:
    """A draft plan with its target scar sites and courses; sessions come on activation."""
    plan = Plan(
        patient=patient,
        title=title,
        clinician=clinician,
        start_date=start_date,
        goal=goal,
        internal_notes=internal_notes,
    )
    if preferred_time is not None:
        plan.preferred_time = preferred_time
    sites = list(target_sites)
    if not sites:
        raise ValidationError({"target_sites": "Choose at least one scar site."})
    plan.clean_target_sites(sites)
    _save(plan, user=user)
    plan.target_sites.set(sites)
    courses = list(courses)
    if not courses:
        raise ValidationError({"courses": "Add at least one course."})
    for order, spec in enumerate(courses):
        _save(
            Course(
                plan=plan,
                treatment=spec.treatment,
                sessions_count=spec.sessions_count,
                interval_days=spec.interval_days,
                offset_days=spec.offset_days,
                label=spec.label,
                default_parameters=spec.default_parameters,
                order=order,
            ),
            user=user,
        )
    return plan


@dataclass
class PreviewVisit:
    on: date
    items: list[tuple[Course, int]]
    findings: list[CheckedFinding]


def plan_preview(plan: Plan) -> list[PreviewVisit]:
    """The calendar activation would create, with each visit's safety findings."""
    return calendar_preview(
        patient=plan.patient,
        start_date=plan.start_date,
        courses=list(plan.courses.select_related("treatment")),
    )


def calendar_preview(*, patient, start_date, courses) -> list[PreviewVisit]:
    """Dated visits for courses (saved or not: anything with a Course's attributes)."""
    specs = [
        scheduling.CourseSpec(index, c.sessions_count, c.interval_days, c.offset_days)
        for index, c in enumerate(courses)
    ]
    visits = scheduling.calendar(start_date, specs)
    checker = PatientSafety(patient)
    planned = [
        safety.OtherSession(visit.on, courses[key].treatment.facts())
        for visit in visits
        for key, _ in visit.items
    ]
    preview = []
    for visit in visits:
        items = [(courses[key], number) for key, number in visit.items]
        # The plan's own other visits count for interval rules; the same visit does not.
        others = [other for other in planned if other.on != visit.on]
        findings = [
            checked
            for course, _ in items
            for checked in checker.findings(
                course.treatment,
                visit.on,
                parameters=course.default_parameters,
                extra_sessions=others,
            )
        ]
        preview.append(PreviewVisit(visit.on, items, findings))
    return preview


@transaction.atomic
def plan_activate(*, plan: Plan, user, overrides: Mapping[str, str] | None = None):
    """Generate the plan's dated sessions; blocks need a clinician's written override."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != Plan.Status.DRAFT:
        raise ValidationError(
            f"Only a draft plan can be activated; this one is {locked.get_status_display()}."
        )
    preview = plan_preview(plan)
    accepted = _settle_blocks(
        [c for visit in preview for c in visit.findings], user=user, overrides=overrides
    )
    sessions = []
    for visit in preview:
        session = _save(
            Session(plan=plan, patient=plan.patient, scheduled_at=_at(visit.on, plan)), user=user
        )
        for course, number in visit.items:
            _save(
                SessionTreatment(
                    session=session,
                    course=course,
                    treatment=course.treatment,
                    number=number,
                    parameters=dict(course.default_parameters),
                ),
                user=user,
            )
        _record_overrides(
            session, [(c, reason) for c, reason in accepted if c.on == visit.on], user=user
        )
        sessions.append(session)
    plan.status = Plan.Status.ACTIVE
    _claim_version(plan, None)
    _save(plan, user=user)
    return sessions


@transaction.atomic
def plan_hold(*, plan: Plan, user):
    """Pause: done sessions stay as they are, future ones are frozen (not on Today)."""
    _set_plan_status(plan, Plan.Status.ON_HOLD, user=user, allowed=[Plan.Status.ACTIVE])
    _set_future_sessions(
        plan, Session.Status.ON_HOLD, user=user, current=[Session.Status.SCHEDULED]
    )


@transaction.atomic
def plan_resume(*, plan: Plan, user, restart_on: date, overrides=None):
    """Un-freeze: the held sessions keep their spacing and restart on `restart_on`."""
    held = list(plan.sessions.filter(status=Session.Status.ON_HOLD).order_by("scheduled_at"))
    _set_plan_status(plan, Plan.Status.ACTIVE, user=user, allowed=[Plan.Status.ON_HOLD])
    if not held:
        return []
    delta = timedelta(days=(restart_on - held[0].scheduled_on).days)
    return _move_sessions(
        held, delta, user=user, overrides=overrides, status=Session.Status.SCHEDULED
    )


@transaction.atomic
def plan_cancel(*, plan: Plan, user):
    """Stop the plan: done sessions stay, future ones are cancelled."""
    _set_plan_status(
        plan,
        Plan.Status.CANCELLED,
        user=user,
        allowed=[Plan.Status.DRAFT, Plan.Status.ACTIVE, Plan.Status.ON_HOLD],
    )
    _set_future_sessions(
        plan,
        Session.Status.CANCELLED,
        user=user,
        current=[Session.Status.SCHEDULED, Session.Status.ON_HOLD],
    )


def _set_plan_status(plan, status, *, user, allowed):
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.status not in allowed:
        raise ValidationError(
            f"A plan that is {locked.get_status_display().lower()} cannot become "
            f"{Plan.Status(status).label.lower()}."
        )
    plan.status = status
    _claim_version(plan, None)
    _save(plan, user=user)


def _set_future_sessions(plan, status, *, user, current):
    for session in plan.sessions.filter(status__in=current):
        session.status = status
        _claim_version(session, None)
        _save(session, user=user)


# --- sessions ------------------------------------------------------------------------------


def _move_sessions(sessions, delta, *, user, overrides, status=None):
    """Move sessions by `delta`, re-checking safety on their new dates."""
    sessions = list(sessions)
    if not sessions:
        return []
    moving = {s.pk for s in sessions}
    checker = PatientSafety(sessions[0].patient, exclude_sessions=moving)
    rows = SessionTreatment.objects.filter(session__in=moving).select_related("treatment")
    by_session = {}
    for row in rows:
        by_session.setdefault(row.session_id, []).append(row)
    new_days = {s.pk: _shift(s.scheduled_at, delta) for s in sessions}
    planned = [
        safety.OtherSession(
            timezone.localtime(new_days[row.session_id]).date(), row.treatment.facts()
        )
        for row in rows
    ]
    checked = []
    for session in sessions:
        on = timezone.localtime(new_days[session.pk]).date()
        others = [other for other in planned if other.on != on]
        for row in by_session.get(session.pk, []):
            checked += checker.findings(
                row.treatment, on, parameters=row.parameters, extra_sessions=others
            )
    accepted = _settle_blocks(checked, user=user, overrides=overrides)
    for session in sessions:
        session.scheduled_at = new_days[session.pk]
        if status:
            session.status = status
        # Sessions moved along with another change too: an open form on them is now stale.
        _claim_version(session, None)
        _save(session, user=user)
        on = session.scheduled_on
        _record_overrides(session, [(c, r) for c, r in accepted if c.on == on], user=user)
    return checked


@transaction.atomic
def session_reschedule(
    *,
    session: Session,
    new_start: datetime,
    user,
    shift_following=False,
    overrides=None,
    expected_version=None,
):
    """Move one session; optionally move the later sessions of its courses by as much."""
    if session.status != Session.Status.SCHEDULED:
        raise ValidationError("Only a scheduled session can be moved.")
    _claim_version(session, expected_version)
    delta = _local_delta(new_start, session.scheduled_at)
    moving = [session]
    if shift_following and delta:
        courses = session.treatments.exclude(course=None).values("course")
        moving += list(
            Session.objects.filter(
                plan=session.plan_id,
                status=Session.Status.SCHEDULED,
                scheduled_at__gt=session.scheduled_at,
                treatments__course__in=courses,
            )
            .exclude(pk=session.pk)
            .distinct()
        )
    return _move_sessions(moving, delta, user=user, overrides=overrides)


def session_findings(session: Session, *, parameters_by_row: Mapping[int, Mapping] | None = None):
    """Findings for a session on its own date, e.g. before logging it."""
    checker = PatientSafety(session.patient, exclude_sessions=[session.pk])
    checked = []
    for row in session.treatments.select_related("treatment"):
        params = (parameters_by_row or {}).get(row.pk, row.parameters)
        checked += checker.findings(row.treatment, session.scheduled_on, parameters=params)
    return checked


@transaction.atomic
def session_book(*, course: Course, scheduled_at: datetime, user, overrides=None) -> Session:
    """An extra session of a course (the course grows by one)."""
    plan = course.plan
    if plan.status != Plan.Status.ACTIVE:
        raise ValidationError("Sessions can only be booked on an active plan.")
    checker = PatientSafety(plan.patient)
    on = timezone.localtime(scheduled_at).date()
    accepted = _settle_blocks(
        checker.findings(course.treatment, on, parameters=course.default_parameters),
        user=user,
        overrides=overrides,
    )
    number = (course.session_treatments.aggregate(n=Max("number"))["n"] or 0) + 1
    course.sessions_count = max(course.sessions_count, number)
    _save(course, user=user)
    session = _save(Session(plan=plan, patient=plan.patient, scheduled_at=scheduled_at), user=user)
    _save(
        SessionTreatment(
            session=session,
            course=course,
            treatment=course.treatment,
            number=number,
            parameters=dict(course.default_parameters),
        ),
        user=user,
    )
    _record_overrides(session, accepted, user=user)
    return session


@transaction.atomic
def session_mark_missed(*, session: Session, user, expected_version=None):
    if session.status != Session.Status.SCHEDULED:
        raise ValidationError("Only a scheduled session can be marked missed.")
    _claim_version(session, expected_version)
    session.status = Session.Status.MISSED
    _save(session, user=user)


@dataclass
class AssessmentInput:
    scar_site: object
    instrument: str
    items: Mapping[str, object]
    notes: str = ""


@dataclass
class AdverseEventInput:
    kind: str
    severity: str
    scar_site: object = None
    onset_on: date | None = None
    resolved_on: date | None = None
    notes: str = ""


@dataclass
class PhotoInput:
    scar_site: object
    image: object
    caption: str = ""


@transaction.atomic
def session_complete(
    *,
    session: Session,
    user,
    parameters: Mapping[int, Mapping[str, object]],
    assessments: Iterable[AssessmentInput] = (),
    adverse_events: Iterable[AdverseEventInput] = (),
    photos: Iterable[PhotoInput] = (),
    notes: str = "",
    overrides=None,
    expected_version=None,
    completed_at=None,
):
    """Log a session as done: parameters per treatment, scores, adverse events, photos.

    Everything is validated before anything is written; a ValidationError's dict names the
    field (`params-<row id>-<code>`, `assessment-<n>`, ...).
    """
    if session.status != Session.Status.SCHEDULED:
        raise ValidationError("Only a scheduled session can be logged.")
    rows = list(
        session.treatments.select_related("treatment").prefetch_related("treatment__parameters")
    )
    errors, cleaned = {}, {}
    for row in rows:
        try:
            cleaned[row.pk] = clean_parameters(
                row.treatment.parameters.all(),
                parameters.get(row.pk, {}),
                prefix=f"params-{row.pk}-",
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
    targeted = set(session.plan.target_sites.values_list("pk", flat=True))
    built = []
    for n, spec in enumerate(assessments):
        assessment = Assessment(
            patient=session.patient,
            scar_site=spec.scar_site,
            session=session,
            instrument=spec.instrument,
            assessed_on=session.scheduled_on,
            assessor=user,
            items=dict(spec.items),
            notes=spec.notes,
        )
        try:
            if spec.scar_site.pk not in targeted:
                raise ValidationError({"scar_site": "This scar site is not targeted by the plan."})
            assessment.full_clean(exclude=["total"])
            built.append(assessment)
        except ValidationError as exc:
            errors.update({f"assessment-{n}-{k}": v for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    checker = PatientSafety(session.patient, exclude_sessions=[session.pk])
    checked = [
        c
        for row in rows
        for c in checker.findings(row.treatment, session.scheduled_on, parameters=cleaned[row.pk])
    ]
    already = set(session.overrides.values_list("rule", "treatment__code"))
    pending = [c for c in checked if (c.finding.rule, c.treatment.code) not in already]
    accepted = _settle_blocks(pending, user=user, overrides=overrides)
    _claim_version(session, expected_version)
    for row in rows:
        row.parameters = cleaned[row.pk]
        _save(row, user=user)
    for assessment in built:
        _save(assessment, user=user)
    for event in adverse_events:
        _save(
            AdverseEvent(
                patient=session.patient,
                session=session,
                scar_site=event.scar_site,
                kind=event.kind,
                severity=event.severity,
                onset_on=event.onset_on or session.scheduled_on,
                resolved_on=event.resolved_on,
                notes=event.notes,
                recorded_by=user,
            ),
            user=user,
        )
    for photo in photos:
        _save(
            SessionPhoto(
                session=session,
                scar_site=photo.scar_site,
                image=photo.image,
                caption=photo.caption,
                taken_on=session.scheduled_on,
                taken_by=user,
            ),
            user=user,
        )
    _record_overrides(session, accepted, user=user)
    session.status = Session.Status.COMPLETED
    session.completed_at = completed_at or timezone.now()
    session.clinician = session.clinician or user
    session.notes = notes or session.notes
    _save(session, user=user)
    _complete_plan_when_done(session.plan, user=user)
    return checked


def _complete_plan_when_done(plan, *, user):
    open_sessions = plan.sessions.filter(
        status__in=[Session.Status.SCHEDULED, Session.Status.ON_HOLD]
    )
    if plan.status == Plan.Status.ACTIVE and not open_sessions.exists():
        plan.status = Plan.Status.COMPLETED
        _claim_version(plan, None)
        _save(plan, user=user)


@transaction.atomic
def assessment_record(*, patient, scar_site, instrument, items, user, assessed_on=None, notes=""):
    """A baseline (or follow-up) score outside a session."""
    return _save(
        Assessment(
            patient=patient,
            scar_site=scar_site,
            instrument=instrument,
            items=dict(items),
            assessor=user,
            assessed_on=assessed_on or timezone.localdate(),
            notes=notes,
        ),
        user=user,
    )
