"""Writes that touch several records at once, each in one transaction.

Keyword-only arguments; names are <thing>_<action>. Every write runs full_clean() and records
who made it (simple-history's history_user). Safety rules are evaluated through
`PatientSafety`, which loads a patient's facts once and answers for any treatment and date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import CharField, DateField, F, IntegerField, Max, Q, Value
from django.utils import timezone

from patients.models import Patient
from plans import booking, diary, safety, scales, scheduling
from plans.models import (
    AdverseEvent,
    Amendment,
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
BOOK_OUTSIDE_HOURS = "plans.book_outside_hours"
LIVE_STATUSES = Session.HOLDS_TIME


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
        self.settings, flags, acne, sessions, consents = _loaded
        self.flags = tuple(flags.get(patient.pk, ()))
        self.consents = tuple(consents.get(patient.pk, ()))
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
            fitzpatrick_assessed=self.patient.fitzpatrick_type is not None,
            acne_level=acne_level,
            acne_recorded_on=acne_recorded_on,
            flags=self.flags,
            parameters=parameters or {},
            other_sessions=tuple(others) + tuple(extra_sessions),
            treatment_consents=self.consents,
        )
        return [CheckedFinding(on, treatment, f) for f in safety.evaluate(ctx, self.settings)]


# The Treatment columns Treatment.facts() reads.
TREATMENT_FACT_FIELDS = (
    "code",
    "name",
    "setting",
    "category",
    "peel_depth",
    "contains_salicylate",
    "needs_clear_skin",
    "min_interval_days",
)


def _load_safety_facts(patients, exclude_sessions):
    """Rule settings, flags, acne records and treatment consents, and live sessions (with
    their treatments' facts) of these patients: 3 queries."""
    ids = [p.pk for p in patients]
    flags, acne, sessions, consents = {}, {}, {}, {}
    for source, pid, text, first, second, third, number in _patient_records(ids):
        if source == "consent":
            consents.setdefault(pid, []).append(safety.ConsentPeriod(first, second, third))
        elif source == "flag":
            flags.setdefault(pid, []).append(safety.FlagPeriod(text, first, second))
        else:
            acne.setdefault(pid, []).append((first, number, text))
    # Filter on the patient alone so the (patient, scheduled_at) index drives the query;
    # status and exclusions are cheap to apply to a few rows per patient here. The treatment's
    # safety columns come in the same rows (a join with the small catalogue), not a query more.
    excluded = set(exclude_sessions)
    facts = {}
    zone = timezone.get_current_timezone()  # timezone.localtime()'s, looked up once not per row
    for pk, patient_id, moment, status, treatment_id, *columns in (
        Session.objects.filter(patient__in=ids, treatments__isnull=False)
        .order_by()
        .values_list(
            "pk",
            "patient_id",
            "scheduled_at",
            "status",
            "treatments__treatment",
            *(f"treatments__treatment__{name}" for name in TREATMENT_FACT_FIELDS),
        )
    ):
        if status not in LIVE_STATUSES or pk in excluded:
            continue
        if treatment_id not in facts:
            values = dict(zip(TREATMENT_FACT_FIELDS, columns, strict=True))
            treatment = Treatment(pk=treatment_id, **values)
            facts[treatment_id] = treatment.facts()
        day = moment.astimezone(zone).date()
        sessions.setdefault(patient_id, []).append(safety.OtherSession(day, facts[treatment_id]))
    return SafetyRuleSetting.current(), flags, acne, sessions, consents


def _patient_records(ids):
    """The treatment consents, medical flags and acne records of these patients as one
    UNION ALL (one query, not three), each row (source, patient id, text, date, date, date,
    number), in each model's own order:
      consent: ("consent", patient, "", signed_on, withdrawn_on, expires_on, 0)
      flag:    ("flag", patient, kind, started_on, ended_on, None, 0)
      acne:    ("acne", patient, level, recorded_on, None, None, id)
    """
    from patients.models import AcneActivity, Consent, MedicalFlag

    def columns(queryset, **values):
        # Only annotations, in one order: the branches' columns line up by position.
        return queryset.order_by().annotate(**values).values_list(*values)

    no_date = Value(None, output_field=DateField())
    text = {"output_field": CharField()}
    consents = columns(
        Consent.objects.filter(patient__in=ids, kind=Consent.Kind.TREATMENT),
        source=Value("consent", **text),
        pid=F("patient_id"),
        label=Value("", **text),
        first=F("signed_on"),
        second=F("withdrawn_on"),
        third=F("expires_on"),
        number=Value(0, output_field=IntegerField()),
    )
    flags = columns(
        MedicalFlag.objects.filter(patient__in=ids),
        source=Value("flag", **text),
        pid=F("patient_id"),
        label=F("kind"),
        first=F("started_on"),
        second=F("ended_on"),
        third=no_date,
        number=Value(0, output_field=IntegerField()),
    )
    acne = columns(
        AcneActivity.objects.filter(patient__in=ids),
        source=Value("acne", **text),
        pid=F("patient_id"),
        label=F("level"),
        first=F("recorded_on"),
        second=no_date,
        third=no_date,
        number=F("id"),
    )
    # Consent: kind, -signed_on; MedicalFlag: kind, -started_on; AcneActivity: -recorded_on,
    # -id (their Meta orderings; consents here are all of one kind).
    return consents.union(flags, acne, all=True).order_by("source", "label", "-first", "-number")


def neutral_badge(findings) -> str:
    """What front desk sees of findings: no condition, medication or rule name (issue 10)."""
    actions = {checked.finding.action for checked in findings}
    if safety.Action.BLOCK in actions:
        return "Clinician review"
    if safety.Action.WARN in actions:
        return "Check with clinician"
    return ""


def findings_for_sessions(sessions, *, rows=None) -> dict[int, list[CheckedFinding]]:
    """Each session's findings on its own date, for list pages: queries do not grow per row.

    The sessions must come with `patient` selected, and either `treatments__treatment`
    prefetched or `rows`: each session's treatment rows by session pk (anything with the
    `treatment` and `parameters` of a SessionTreatment).
    """
    sessions = list(sessions)
    checkers = PatientSafety.for_patients([s.patient for s in sessions])
    result = {}
    for session in sessions:
        checker = checkers[session.patient_id]
        on = session.scheduled_on
        treatment_rows = session.treatments.all() if rows is None else rows.get(session.pk, ())
        result[session.pk] = [
            checked
            for row in treatment_rows
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


def _save(obj, *, user, savepoint_clash=False, **kwargs):
    obj.full_clean()
    obj._history_user = user
    if not savepoint_clash:
        obj.save(**kwargs)
        return obj
    try:
        with transaction.atomic():  # a savepoint: the refusal below leaves the rest usable
            obj.save(**kwargs)
    except (IntegrityError, OperationalError) as error:
        # PostgreSQL's exclusion constraints (plans/0008): someone booked an overlapping
        # appointment between our check and our write. Two such writes checking two
        # constraints (clinician and room) can wait on each other: PostgreSQL then cancels
        # one as a deadlock (SQLSTATE 40P01), and that one lost the slot just the same.
        deadlock = getattr(error.__cause__, "sqlstate", None) == "40P01"
        if "_overlap" not in str(error) and not deadlock:
            raise
        raise BookingRefused(
            [
                booking.Problem(
                    "clash",
                    "Someone else has just booked that time for this clinician, room, device "
                    "or patient. Nothing was saved: choose another time.",
                    False,
                )
            ],
            [],
        ) from None
    return obj


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
    location=None,
) -> Plan:
    """A draft plan with its target scar sites and courses; sessions come on activation."""
    plan = Plan(
        patient=patient,
        title=title,
        clinician=clinician,
        location=location,
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
    slot: booking.Slot | None = None  # where activation books it (None: nothing free)
    planned_on: date | None = None  # the course's own date, when the slot moved off it
    problems: list = field(default_factory=list)  # why a time a person chose cannot be had

    @property
    def moved(self):
        return self.planned_on is not None and self.planned_on != self.on


def plan_preview(plan: Plan, *, pinned: Mapping[int, datetime] | None = None):
    """The calendar activation would create: each visit's slot in the diary and findings.

    `pinned`: visit number (from 0) -> the start a person chose instead of the proposed one.
    """
    courses = list(plan.courses.select_related("treatment"))
    preview = calendar_preview(patient=plan.patient, start_date=plan.start_date, courses=courses)
    _place_visits(plan, preview, courses, pinned or {})
    return preview


def _pinned_slot(av, plan, start, needs):
    """The slot a person chose for a visit, with a free room and device; problems if any."""
    end = start + timedelta(minutes=needs.minutes)
    rooms = diary.rooms_for(plan.location, needs)
    devices = diary.devices_for(plan.location, needs)
    room = next((r for r in rooms or () if av.holding("room", r, start, end) is None), None)
    device = next((d for d in devices or () if av.holding("device", d, start, end) is None), None)
    slot = booking.Slot(start, end, plan.clinician_id, room, device)
    found = booking.problems(av, slot, patient=plan.patient_id)
    if rooms is not None and room is None:
        found.append(booking.Problem("clash", "No treatment room is free then.", False))
    if devices is not None and device is None:
        found.append(booking.Problem("clash", "The equipment it needs is not free then.", False))
    return slot, found


def _place_visits(plan, preview, courses, pinned):
    """A concrete slot per visit: the first free one on its day, else the nearest day within
    its course's tolerance; later visits see the earlier ones as busy. A visit a person
    pinned to a time keeps it if it is free and within hours, else it has no slot."""
    if not preview:
        return
    tolerance = {
        id(c): booking.tolerance_days(c.interval_days if c.sessions_count > 1 else 0)
        for c in courses
    }
    widest = max(tolerance.values())
    location = plan.location
    av = diary.load(
        location,
        preview[0].on - timedelta(days=widest),
        preview[-1].on + timedelta(days=widest),
    )
    if pinned:
        first = min(diary.local_day(start) for start in pinned.values())
        last = max(diary.local_day(start) for start in pinned.values())
        if first < preview[0].on - timedelta(days=widest) or last > preview[-1].on:
            av = diary.load(location, min(first, preview[0].on), max(last, preview[-1].on))
    placed = []
    for index, visit in enumerate(preview):
        needs = diary.Needs.of_treatments([c.treatment for c, _ in visit.items])
        if index in pinned:
            slot, visit.problems = _pinned_slot(_with_busy(av, placed), plan, pinned[index], needs)
            visit.slot = None if visit.problems else slot
            if visit.slot is not None:
                placed.append(slot)
                visit.planned_on, visit.on = visit.on, diary.local_day(slot.start)
            continue
        slot = booking.place(
            _with_busy(av, placed),
            day=visit.on,
            preferred=_preferred_time(plan),
            duration=timedelta(minutes=needs.minutes),
            clinician=plan.clinician_id,
            rooms=diary.rooms_for(location, needs),
            devices=diary.devices_for(location, needs),
            patient=plan.patient_id,
            tolerance_days=min(tolerance[id(c)] for c, _ in visit.items),
        )
        visit.slot = slot
        if slot is not None:
            placed.append(slot)
            day = timezone.localtime(slot.start).date()
            if day != visit.on:
                visit.planned_on, visit.on = visit.on, day


def _with_busy(av, slots):
    """The availability with this plan's already placed visits holding their resources."""
    if not slots:
        return av
    extra = [
        booking.Busy(kind, value, slot.start, slot.end, "another visit of this plan")
        for slot in slots
        for kind, value in (
            ("clinician", slot.clinician),
            ("room", slot.room),
            ("device", slot.device),
        )
        if value is not None
    ]
    return replace(av, busy=[*av.busy, *extra])


def _preferred_time(plan):
    moment = plan.preferred_time
    if isinstance(moment, str):
        moment = datetime.strptime(moment, "%H:%M").time()
    return moment


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
def plan_activate(
    *,
    plan: Plan,
    user,
    overrides: Mapping[str, str] | None = None,
    pinned: Mapping[int, datetime] | None = None,
):
    """Book the plan's visits into the diary; blocks need a clinician's written override."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != Plan.Status.DRAFT:
        raise ValidationError(
            f"Only a draft plan can be activated; this one is {locked.get_status_display()}."
        )
    preview = plan_preview(plan, pinned=pinned)
    refused = [visit for visit in preview if visit.problems]
    if refused:
        raise ValidationError(
            " ".join(
                f"The time chosen for {visit.planned_on or visit.on:%-d %b %Y} cannot be "
                f"booked: {' '.join(p.message for p in visit.problems)}"
                for visit in refused
            )
        )
    unplaced = [visit for visit in preview if visit.slot is None]
    if unplaced:
        days = ", ".join(f"{visit.on:%-d %b %Y}" for visit in unplaced)
        raise ValidationError(
            f"No free slot for the visit of {days} (nor on the days around it that its course "
            "allows) for this clinician at this location. Change the start date, the "
            "clinician or the location, or free the diary, then activate again."
        )
    accepted = _settle_blocks(
        [c for visit in preview for c in visit.findings], user=user, overrides=overrides
    )
    sessions = []
    for visit in preview:
        slot = visit.slot
        # Home treatments are a regimen, not appointments: a visit of nothing else is its
        # review in clinic.
        at_home = all(not course.treatment.in_office for course, _ in visit.items)
        session = _save(
            Session(
                kind=Session.Kind.REVIEW if at_home else Session.Kind.TREATMENT,
                plan=plan,
                patient=plan.patient,
                scheduled_at=slot.start,
                ends_at=slot.end,
                clinician_id=slot.clinician,
                location=plan.location,
                room_id=slot.room,
                device_id=slot.device,
            ),
            user=user,
            savepoint_clash=True,
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


def _move_sessions(
    sessions, delta, *, user, overrides, status=None, exact_first=False, booking_override=""
):
    """Move sessions by `delta`, re-checking safety on their new dates and placing each in
    the diary: the first at exactly its new time when `exact_first` (the one a person moved),
    the others in the first free slot on their day, or the nearest day their course allows."""
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
    lengths = {s.pk: s.ends_at - s.scheduled_at for s in sessions}
    for index, session in enumerate(sessions):
        session.scheduled_at = new_days[session.pk]
        session.ends_at = session.scheduled_at + lengths[session.pk]
        if status:
            session.status = status
        # Sessions moved along with another change too: an open form on them is now stale.
        _claim_version(session, None)
        # The ones still to place keep their old times until then: ignore those.
        waiting = {s.pk for s in sessions[index:]}
        needs = diary.Needs.of_treatments(row.treatment for row in by_session.get(session.pk, []))
        if index == 0 and exact_first:
            _book_slot(
                session, needs=needs, user=user, override_reason=booking_override, ignore=waiting
            )
        else:
            _replace_in_diary(session, needs, user=user, ignore=waiting)
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
    booking_override="",
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
    return _move_sessions(
        moving,
        delta,
        user=user,
        overrides=overrides,
        exact_first=True,
        booking_override=booking_override,
    )


def _replace_in_diary(session, needs, *, user, ignore):
    """Book a shifted session into the first free slot on its day (or the nearest allowed)."""
    tolerance = min(
        [
            booking.tolerance_days(row.course.interval_days if row.course.sessions_count > 1 else 0)
            for row in session.treatments.select_related("course")
            if row.course_id
        ]
        or [booking.tolerance_days(0)]
    )
    day = diary.local_day(session.scheduled_at)
    av = diary.load(
        session.location,
        day - timedelta(days=tolerance),
        day + timedelta(days=tolerance),
        ignore=ignore,
    )
    slot = booking.place(
        av,
        day=day,
        preferred=timezone.localtime(session.scheduled_at).time(),
        duration=session.ends_at - session.scheduled_at,
        clinician=session.clinician_id,
        rooms=diary.rooms_for(session.location, needs),
        devices=diary.devices_for(session.location, needs),
        patient=session.patient_id,
        tolerance_days=tolerance,
        ignore=ignore,
    )
    if slot is None:
        raise ValidationError(
            f"No free slot for the session of {day:%-d %b %Y} or the days around it that its "
            "course allows. Nothing was moved: move the sessions one by one."
        )
    session.scheduled_at, session.ends_at = slot.start, slot.end
    session.room_id, session.device_id = slot.room, slot.device
    return _save(session, user=user, savepoint_clash=True)


def session_findings(
    session: Session, *, parameters_by_row: Mapping[int, Mapping] | None = None, on=None
):
    """Findings for a session on its own date (or `on`, the day it is really done)."""
    checker = PatientSafety(session.patient, exclude_sessions=[session.pk])
    checked = []
    for row in session.treatments.select_related("treatment"):
        params = (parameters_by_row or {}).get(row.pk, row.parameters)
        checked += checker.findings(row.treatment, on or session.scheduled_on, parameters=params)
    return checked


@transaction.atomic
def session_book(
    *,
    course: Course,
    scheduled_at: datetime,
    user,
    overrides=None,
    minutes=None,
    clinician=None,
    booking_override="",
) -> Session:
    """An extra session of a course (the course grows by one), booked into the diary."""
    plan = course.plan
    if plan.status != Plan.Status.ACTIVE:
        raise ValidationError("Sessions can only be booked on an active plan.")
    checker = PatientSafety(plan.patient)
    on = timezone.localtime(scheduled_at).date()
    checked = checker.findings(course.treatment, on, parameters=course.default_parameters)
    accepted = _settle_blocks(checked, user=user, overrides=overrides)
    number = (course.session_treatments.aggregate(n=Max("number"))["n"] or 0) + 1
    course.sessions_count = max(course.sessions_count, number)
    if course.sessions_count > 1 and course.interval_days < 1:
        # A one-off that is now repeated needs an interval: the catalogue's usual one.
        course.interval_days = max(1, course.treatment.default_interval_days)
    _save(course, user=user)
    needs = diary.Needs.of_treatments([course.treatment])
    session = Session(
        plan=plan,
        patient=plan.patient,
        scheduled_at=scheduled_at,
        ends_at=scheduled_at + timedelta(minutes=minutes or needs.minutes),
        clinician=clinician or plan.clinician,
        location=plan.location,
    )
    _book_slot(session, needs=needs, user=user, override_reason=booking_override)
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
    session.findings = checked  # for the page: the warnings it was booked with
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
    view: str = SessionPhoto.View.FRONT


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
    performed_today=False,
):
    """Log a session as done: parameters per treatment, scores, adverse events, photos.

    Everything is validated before anything is written; a ValidationError's dict names the
    field (`params-<row id>-<code>`, `assessment-<n>`, ...). A session booked for a later day
    is logged only with `performed_today`: it then moves to today, the real date of
    treatment, and keeps the time it was booked for in `booked_for`. Sessions of a course are
    logged in order: an earlier one still open must be logged, missed or cancelled first.
    """
    if session.status not in Session.OPEN:
        raise ValidationError("Only a scheduled session can be logged.")
    today = timezone.localdate()
    early = session.scheduled_on > today
    if early and not performed_today:
        raise ValidationError(
            f"This session is booked for {session.scheduled_on:%-d %b %Y}: confirm that the "
            f"treatment is being done today ({today:%-d %b %Y}) to log it now.",
            code="not_yet_due",
        )
    skipped = sessions_skipped_before(session)
    if skipped:
        raise ValidationError(skipped_message(skipped), code="out_of_order")
    # The real date of treatment: a session logged before its booked day is done today.
    on = today if early else session.scheduled_on
    rows = list(
        session.treatments.select_related("treatment").prefetch_related("treatment__parameters")
    )
    errors, cleaned = {}, {}
    for row in rows:
        definitions = row.treatment.parameters.all()
        try:
            cleaned[row.pk] = clean_parameters(
                definitions, parameters.get(row.pk, {}), prefix=f"params-{row.pk}-"
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        if definitions and not cleaned[row.pk]:
            # Optional parameters only: a completed treatment still records what was done.
            errors[f"params-{row.pk}"] = [
                f"{row.treatment.name}: record at least one treatment parameter "
                f"({', '.join(d.label for d in definitions)})."
            ]
    if session.plan_id:
        targeted = set(session.plan.target_sites.values_list("pk", flat=True))
    else:  # a review or photo visit outside a plan scores any of the patient's sites
        targeted = set(session.patient.scar_sites.active().values_list("pk", flat=True))
    built = []
    for n, spec in enumerate(assessments):
        assessment = Assessment(
            patient=session.patient,
            scar_site=spec.scar_site,
            session=session,
            instrument=spec.instrument,
            assessed_on=on,
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
    photos = list(photos)
    if photos and not photography_consent_on(session.patient, on):
        errors["photo"] = [
            f"No clinical photography consent is in force on {on:%-d %b %Y}: photos cannot be "
            "added. Record the patient's photography consent first."
        ]
    if errors:
        raise ValidationError(errors)
    checker = PatientSafety(session.patient, exclude_sessions=[session.pk])
    checked = [
        c for row in rows for c in checker.findings(row.treatment, on, parameters=cleaned[row.pk])
    ]
    already = set(session.overrides.values_list("rule", "treatment__code"))
    pending = [c for c in checked if (c.finding.rule, c.treatment.code) not in already]
    accepted = _settle_blocks(pending, user=user, overrides=overrides)
    _claim_version(session, expected_version)
    if early:
        _move_to_now(session, user=user)
    for row in rows:
        row.parameters = cleaned[row.pk]
        _save(row, user=user)
    for assessment in built:
        _save(assessment, user=user)
    for event in adverse_events:
        _save(_adverse_event(session, event, user=user), user=user)
    for photo in photos:
        _save(_photo(session, photo, user=user), user=user)
    _record_overrides(session, accepted, user=user)
    session.status = Session.Status.COMPLETED
    session.completed_at = completed_at or timezone.now()
    session.clinician = session.clinician or user
    session.notes = notes or session.notes
    _save(session, user=user)
    if session.plan_id:
        _complete_plan_when_done(session.plan, user=user)
    return checked


def _adverse_event(session, event: AdverseEventInput, *, user) -> AdverseEvent:
    return AdverseEvent(
        patient=session.patient,
        session=session,
        scar_site=event.scar_site,
        kind=event.kind,
        severity=event.severity,
        onset_on=event.onset_on or session.scheduled_on,
        resolved_on=event.resolved_on,
        notes=event.notes,
        recorded_by=user,
    )


def _photo(session, photo: PhotoInput, *, user) -> SessionPhoto:
    """A photo of the session, dated on the session's (real) day."""
    return SessionPhoto(
        session=session,
        scar_site=photo.scar_site,
        image=photo.image,
        caption=photo.caption,
        view=photo.view,
        taken_on=session.scheduled_on,
        taken_by=user,
    )


def _move_to_now(session, *, user):
    """A session logged before its booked day happens now: it leaves its future slot (the
    room and device it held there are freed) and takes the present, with this clinician."""
    length = session.ends_at - session.scheduled_at
    session.booked_for = session.scheduled_at
    start = timezone.now().replace(second=0, microsecond=0)
    session.scheduled_at, session.ends_at = start, start + length
    session.room = session.device = None
    session.clinician = user
    _save(session, user=user, savepoint_clash=True)


def sessions_skipped_before(session) -> list[Session]:
    """Earlier sessions of the same courses that are still open or on hold (not yet logged,
    missed or cancelled): logging this one first would leave a hole in the course."""
    rows = list(session.treatments.exclude(course=None).values_list("course", "number"))
    if not rows:
        return []
    earlier = Q()
    for course, number in rows:
        earlier |= Q(treatments__course=course, treatments__number__lt=number)
    return list(
        Session.objects.filter(earlier, status__in=[*Session.OPEN, Session.Status.ON_HOLD])
        .exclude(pk=session.pk)
        .distinct()
        .order_by("scheduled_at")
    )


def skipped_message(skipped) -> str:
    when = ", ".join(f"{s.scheduled_on:%a %-d %b %Y}" for s in skipped)
    several = len(skipped) > 1
    return (
        f"{'Earlier sessions' if several else 'An earlier session'} of this course "
        f"({when}) {'are' if several else 'is'} not logged yet. Sessions of a course are "
        "logged in order: log it first, or mark it 'did not attend' (the patient missed it) "
        "or cancel it (it will not happen) before logging this one."
    )


class PhotoConsent:
    """A patient's clinical photography consents, read once (one query): whether a photo
    may be taken or shown on a day (consent in force then). False when there is none at all."""

    def __init__(self, patient_id):
        from patients.models import Consent

        self.consents = list(
            Consent.objects.filter(patient=patient_id, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY).only(
                "signed_on", "withdrawn_on", "expires_on"
            )
        )

    def __bool__(self):
        return bool(self.consents)

    def allows(self, day) -> bool:
        return any(c.in_force_on(day) for c in self.consents)


def photography_consent_on(patient, day) -> bool:
    """Clinical photography consent in force on `day` (it governs taking and showing photos)."""
    return PhotoConsent(patient.pk).allows(day)


@transaction.atomic
def session_cancel(*, session: Session, user, expected_version=None):
    """One session that will not happen (the rest of its plan goes on)."""
    if session.status not in (Session.Status.SCHEDULED, Session.Status.ON_HOLD):
        raise ValidationError(
            f"This session is {session.get_status_display().lower()}: it cannot be cancelled."
        )
    _claim_version(session, expected_version)
    session.status = Session.Status.CANCELLED
    _save(session, user=user)
    if session.plan_id:
        _complete_plan_when_done(session.plan, user=user)


def _complete_plan_when_done(plan, *, user):
    open_sessions = plan.sessions.filter(status__in=[*Session.OPEN, Session.Status.ON_HOLD])
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


# --- the appointment book ------------------------------------------------------------------


class BookingRefused(Exception):
    """The slot cannot be booked: what is wrong, and the next free slots that would fit."""

    def __init__(self, problems, alternatives):
        self.problems = list(problems)
        self.alternatives = list(alternatives)
        super().__init__(" ".join(p.message for p in self.problems))

    @property
    def overridable(self):
        """Only hours, closures and absences: a manager may book anyway with a reason."""
        return all(p.overridable for p in self.problems)


def _book_slot(session, *, needs, user, override_reason="", ignore=(), room_chosen=False):
    """Put the session in the diary: a free room and device are chosen if it needs them.

    Clashes are refused, always; outside opening or working hours, on a closure or absence,
    only a manager books, with a written reason stored on the appointment.
    """
    ignore = {*ignore, *([session.pk] if session.pk else [])}
    day = diary.local_day(session.scheduled_at)
    av = diary.load(session.location, day, day, ignore=ignore)
    _choose_resources(av, session, needs, ignore, keep_room=room_chosen)
    slot = booking.Slot(
        session.scheduled_at,
        session.ends_at,
        session.clinician_id,
        session.room_id,
        session.device_id,
    )
    found = booking.problems(
        av,
        slot,
        patient=session.patient_id,
        ignore=ignore,
        names=diary.names(clinician=session.clinician, room=session.room, device=session.device),
    )
    if needs.room and session.location_id and session.room_id is None:
        found.append(booking.Problem("clash", "No treatment room is free at that time.", False))
    if needs.device_kind and session.location_id and session.device_id is None:
        found.append(
            booking.Problem("clash", "The equipment this needs is not free at that time.", False)
        )
    reason = (override_reason or "").strip()
    allowed = reason and user.has_perm(BOOK_OUTSIDE_HOURS)
    if found and not (allowed and all(p.overridable for p in found)):
        raise BookingRefused(found, free_slots_for(session, needs, ignore=ignore))
    session.booking_override = reason if found else ""
    return _save(session, user=user, savepoint_clash=True)


def _choose_resources(av, session, needs, ignore, keep_room=False):
    """Keep the room and device when free, else take the first free one; a room a person
    chose (`keep_room`) is kept, so that its clash is reported instead of silently changed."""
    if session.location_id is None:
        return
    for field_name, candidates in (
        ("room", diary.rooms_for(session.location, needs)),
        ("device", diary.devices_for(session.location, needs)),
    ):
        if candidates is None or (field_name == "room" and keep_room and session.room_id):
            continue
        current = getattr(session, f"{field_name}_id")
        ordered = [current, *[c for c in candidates if c != current]] if current else candidates
        for candidate in ordered:
            slot = booking.Slot(
                session.scheduled_at,
                session.ends_at,
                None,
                candidate if field_name == "room" else None,
                candidate if field_name == "device" else None,
            )
            clashes = [
                p
                for p in booking.problems(av, slot, patient=None, ignore=ignore)
                if p.code == "clash"
            ]
            if not clashes:
                setattr(session, f"{field_name}_id", candidate)
                break
        else:
            setattr(session, f"{field_name}_id", current)


def free_slots_for(session, needs, *, ignore=(), limit=3, after=None, weekdays=None, between=None):
    """The next free slots that fit this appointment (same clinician, location and needs)."""
    start = after or session.scheduled_at
    first, last = diary.search_window(start)
    av = diary.load(session.location, first, last, ignore=ignore)
    return booking.free_slots(
        av,
        duration=timedelta(minutes=needs.minutes),
        clinicians=[session.clinician_id] if session.clinician_id else [],
        rooms=diary.rooms_for(session.location, needs),
        devices=diary.devices_for(session.location, needs),
        patient=session.patient_id,
        after=start,
        until=diary.local_datetime(last),
        limit=limit,
        weekdays=weekdays,
        between=between,
        ignore=ignore,
    )


@transaction.atomic
def appointment_book(
    *,
    patient,
    kind,
    start: datetime,
    clinician,
    location,
    user,
    minutes=None,
    room=None,
    plan=None,
    notes="",
    booking_override="",
) -> Session:
    """A consultation, review, patch test or photo visit, linked to a patient (and a plan)."""
    if kind == Session.Kind.TREATMENT:
        raise ValidationError("Treatment sessions are booked through their plan.")
    needs = diary.Needs.of_kind(kind)
    session = Session(
        kind=kind,
        plan=plan,
        patient=patient,
        scheduled_at=start,
        ends_at=start + timedelta(minutes=minutes or needs.minutes),
        clinician=clinician,
        location=location,
        room=room,
        notes=notes,
    )
    return _book_slot(
        session,
        needs=needs,
        user=user,
        override_reason=booking_override,
        room_chosen=room is not None,
    )


ARRIVAL_STEPS = {
    # new status: the statuses it may follow
    Session.Status.ARRIVED: (Session.Status.SCHEDULED,),
    Session.Status.IN_TREATMENT: (Session.Status.SCHEDULED, Session.Status.ARRIVED),
    Session.Status.MISSED: (Session.Status.SCHEDULED, Session.Status.ARRIVED),
}


@transaction.atomic
def session_set_status(*, session: Session, status, user, expected_version=None):
    """Front desk's steps on the day: arrived, in treatment, did not attend."""
    allowed = ARRIVAL_STEPS.get(status)
    if allowed is None:
        raise ValidationError(f"Choose one of: {', '.join(s.label for s in ARRIVAL_STEPS)}.")
    if session.status not in allowed:
        raise ValidationError(
            f"This appointment is {session.get_status_display().lower()}: it cannot be marked "
            f"{Session.Status(status).label.lower()}."
        )
    if (
        status != Session.Status.MISSED
        and diary.local_day(session.scheduled_at) != timezone.localdate()
    ):
        raise ValidationError("Only an appointment of today can be marked arrived or in treatment.")
    _claim_version(session, expected_version)
    session.status = status
    return _save(session, user=user)


# --- amendments ----------------------------------------------------------------------------


def session_logged_by(session):
    """Who logged the session: the user of the history row that first recorded it completed."""
    first = (
        session.history.filter(status=Session.Status.COMPLETED)
        .order_by("history_date", "history_id")
        .values_list("history_user", flat=True)
        .first()
    )
    return first if first is not None else session.clinician_id


def can_amend(user, session) -> bool:
    """The clinician who logged a completed session, or a manager, may amend it."""
    if session.status != Session.Status.COMPLETED or not user.has_perm("plans.add_amendment"):
        return False
    return user.has_perm("plans.amend_any_session") or session_logged_by(session) == user.pk


@dataclass
class AdverseEventChange:
    event: AdverseEvent
    severity: str
    resolved_on: date | None
    notes: str


def _shown(value):
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@transaction.atomic
def session_amend(
    *,
    session: Session,
    user,
    reason: str,
    parameters: Mapping[int, Mapping[str, object]] | None = None,
    assessments: Iterable[AssessmentInput] = (),
    notes: str | None = None,
    withdraw_photos: Iterable[int] = (),
    photos: Iterable[PhotoInput] = (),
    adverse_events: Iterable[AdverseEventInput] = (),
    event_changes: Iterable[AdverseEventChange] = (),
    expected_version=None,
):
    """Correct a logged session with a written reason; the values before stay in the history
    and in the Amendment, which lists each change (what, before, after). Nothing is deleted:
    a photo taken in error is withdrawn."""
    if not can_amend(user, session):
        raise PermissionDenied(
            "Only the clinician who logged this session, or a manager, can amend it."
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Write why the session is amended."]})
    now = timezone.now()
    changes, errors, writes = [], {}, []
    rows = session.treatments.select_related("treatment").prefetch_related("treatment__parameters")
    for row in rows:
        if parameters is None or row.pk not in parameters:
            continue
        definitions = list(row.treatment.parameters.all())
        try:
            cleaned = clean_parameters(definitions, parameters[row.pk], prefix=f"params-{row.pk}-")
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        if cleaned == row.parameters:
            continue
        labels = {d.code: d.label for d in definitions}
        order = {code: n for n, code in enumerate(labels)}
        for code in sorted(set(cleaned) | set(row.parameters), key=lambda c: order.get(c, 99)):
            before, after = row.parameters.get(code), cleaned.get(code)
            if before != after:
                changes.append(
                    {
                        "what": f"{row.treatment.name}: {labels.get(code, code)}",
                        "before": _shown(before),
                        "after": _shown(after),
                    }
                )
        row.parameters, row.amended_at = cleaned, now
        writes.append(row)
    existing = {(a.scar_site_id, a.instrument): a for a in session.assessments.all()}
    targeted = {site.pk for site in session.plan.target_sites.all()} if session.plan_id else None
    for n, spec in enumerate(assessments):
        current = existing.get((spec.scar_site.pk, spec.instrument))
        assessment = current or Assessment(
            patient=session.patient,
            scar_site=spec.scar_site,
            session=session,
            instrument=spec.instrument,
            assessed_on=session.scheduled_on,
            assessor=user,
        )
        before_items, before_total = (current.items, current.total) if current else (None, None)
        assessment.items = dict(spec.items)
        try:
            if targeted is not None and spec.scar_site.pk not in targeted:
                raise ValidationError({"scar_site": "This scar site is not targeted by the plan."})
            assessment.full_clean(exclude=["total"])
        except ValidationError as exc:
            errors.update({f"assessment-{n}-{k}": v for k, v in exc.message_dict.items()})
            continue
        if before_items == assessment.items:
            continue
        total = scales.get(spec.instrument).total(assessment.items)
        changes.append(
            {
                "what": f"{spec.scar_site}: {scales.get(spec.instrument).name}",
                "before": _shown(before_total),
                "after": _shown(total),
            }
        )
        assessment.amended_at = now
        writes.append(assessment)
    photos = list(photos)
    if photos and not photography_consent_on(session.patient, session.scheduled_on):
        errors["photo"] = [
            f"No clinical photography consent is in force on {session.scheduled_on:%-d %b %Y}: "
            "photos cannot be added."
        ]
    if errors:
        raise ValidationError(errors)
    if notes is not None and notes.strip() != session.notes.strip():
        changes.append(
            {"what": "Clinical notes", "before": _shown(session.notes), "after": _shown(notes)}
        )
        session.notes = notes
    withdrawn = list(session.photos.filter(pk__in=list(withdraw_photos), withdrawn_at=None))
    for photo in withdrawn:
        photo.withdrawn_at = now
        changes.append(
            {"what": f"Photo of {photo.scar_site}", "before": "shown", "after": "withdrawn"}
        )
        writes.append(photo)
    for photo in photos:
        changes.append({"what": f"Photo of {photo.scar_site}", "before": "—", "after": "added"})
    for change in event_changes:
        event = change.event
        new = (change.severity, change.resolved_on, change.notes.strip())
        old = (event.severity, event.resolved_on, event.notes.strip())
        if new == old:
            continue
        label = f"Adverse event: {event.get_kind_display()}"
        for what, b, a in zip(("severity", "resolved on", "notes"), old, new, strict=True):
            if b != a:
                changes.append(
                    {"what": f"{label}, {what}", "before": _shown(b), "after": _shown(a)}
                )
        event.severity, event.resolved_on, event.notes = new
        writes.append(event)
    new_events = [_adverse_event(session, e, user=user) for e in adverse_events]
    for event in new_events:
        changes.append(
            {
                "what": f"Adverse event: {event.get_kind_display()}",
                "before": "—",
                "after": f"added ({event.get_severity_display().lower()})",
            }
        )
    if not changes:
        raise ValidationError("Nothing was changed: the session is as it was logged.")
    _claim_version(session, expected_version)
    for obj in [*writes, *new_events]:
        obj._change_reason = f"Amended: {reason}"[:100]
        _save(obj, user=user)
    for photo in photos:
        new_photo = _photo(session, photo, user=user)
        new_photo._change_reason = f"Amended: {reason}"[:100]
        _save(new_photo, user=user)
    session._change_reason = f"Amended: {reason}"[:100]
    _save(session, user=user)
    return _save(
        Amendment(session=session, reason=reason, changes=changes, amended_by=user, amended_at=now),
        user=user,
    )
