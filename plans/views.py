"""Staff pages: Today, the patient overview, plans, booking, session logging, adverse events.

Writes go through plans.services; views translate its exceptions into messages and forms.
"""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Min, Prefetch, Q
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clinic.uploads import private_file_response
from clinic.views_helpers import date_param, paginate, safe_next
from patients.models import Consent, ScarSite
from patients.views import get_patient
from plans import scales, services
from plans.forms import (
    AdverseEventFormSet,
    BaselineChoiceForm,
    BookForm,
    CourseFormSet,
    InstrumentForm,
    ParametersForm,
    PlanForm,
    RescheduleForm,
    ResolveForm,
    SiteOutcomeForm,
    clinicians,
)
from plans.models import (
    AdverseEvent,
    Assessment,
    Plan,
    Session,
    SessionPhoto,
    SessionTreatment,
    Treatment,
)

OVERRIDE_PREFIX = "override-"


# --- lookups: access is part of the query --------------------------------------------------


def get_plan(pk):
    return get_object_or_404(Plan.objects.select_related("patient", "clinician"), pk=pk)


def get_session(pk):
    return get_object_or_404(
        Session.objects.select_related("patient", "plan", "plan__clinician", "clinician"), pk=pk
    )


def _treatment_rows():
    return Prefetch(
        "treatments",
        queryset=SessionTreatment.objects.select_related("treatment", "course").order_by("id"),
    )


def _overrides_from(post):
    return {
        key[len(OVERRIDE_PREFIX) :]: value
        for key, value in post.items()
        if key.startswith(OVERRIDE_PREFIX)
    }


def _blocked(request):
    if request.user.has_perm(services.OVERRIDE_PERMISSION):
        messages.error(
            request,
            "Blocked by a safety rule. Nothing was saved. To go ahead, write your reason for "
            "each block below and submit again.",
        )
    else:
        messages.error(
            request,
            "Blocked by a safety rule. Nothing was saved. Only a clinician can override a "
            "block: ask one to review it.",
        )


# --- Today ---------------------------------------------------------------------------------


@permission_required("plans.view_session", raise_exception=True)
def today(request):
    local_today = timezone.localdate()
    day = date_param(request.GET.get("day")) or local_today
    staff = list(clinicians())
    clinician = None
    if request.GET.get("clinician"):
        clinician = next((c for c in staff if str(c.pk) == request.GET["clinician"]), None)
    sessions = Session.objects.select_related(
        "patient", "plan__clinician", "clinician"
    ).prefetch_related(_treatment_rows())
    if clinician:
        sessions = sessions.for_clinician(clinician)
    due = list(
        sessions.on_days(day)
        .exclude(status=Session.Status.CANCELLED)
        .order_by("scheduled_at", "pk")
    )
    week = paginate(
        request,
        sessions.on_days(day + timedelta(days=1), 6)
        .filter(status=Session.Status.SCHEDULED)
        .order_by("scheduled_at", "pk"),
        per_page=50,
        param="week",
    )
    overdue = paginate(
        request, sessions.overdue(local_today).order_by("-scheduled_at", "pk"), param="overdue"
    )
    listed = due + list(week) + list(overdue)
    findings = services.findings_for_sessions(
        [s for s in listed if s.status == Session.Status.SCHEDULED]
    )
    for session in listed:
        session.findings = findings.get(session.pk, [])
    return render(
        request,
        "plans/today.html",
        {
            "day": day,
            "is_today": day == local_today,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "due": due,
            "week": week,
            "overdue": overdue,
            "clinicians": staff,
            "clinician": clinician,
        },
    )


# --- the patient overview ------------------------------------------------------------------


@permission_required("patients.view_patient", raise_exception=True)
def patient_detail(request, pk):
    patient = get_patient(pk)
    user = request.user
    clinical = user.has_perm("plans.view_assessment")
    sites = list(patient.scar_sites.active().prefetch_related("scar_types"))
    plans = list(
        patient.plans.select_related("clinician")
        .annotate(
            done=Count("sessions", filter=Q(sessions__status=Session.Status.COMPLETED)),
            planned=Count("sessions", filter=~Q(sessions__status=Session.Status.CANCELLED)),
            next_at=Min("sessions__scheduled_at", filter=Q(sessions__status="scheduled")),
        )
        .order_by("-start_date", "-pk")
    )
    latest = {}
    if clinical:
        # Only the latest per site and instrument is shown: skip the item details.
        for assessment in patient.assessments.defer("items", "notes").order_by("assessed_on", "pk"):
            latest[(assessment.scar_site_id, assessment.instrument)] = assessment
    for site in sites:
        site.latest_scores = [
            a
            for (site_id, _), a in sorted(latest.items(), key=lambda kv: kv[0][1])
            if site_id == site.pk
        ]
    upcoming = (
        patient.sessions.filter(status=Session.Status.SCHEDULED)
        .select_related("plan")
        .prefetch_related(_treatment_rows())
        .order_by("scheduled_at")[:10]
    )
    context = {
        "patient": patient,
        "sites": sites,
        "plans": plans,
        "upcoming": upcoming,
        "consents": patient.consents.all(),
        "clinical": clinical,
        "today": timezone.localdate(),
    }
    if clinical:
        context.update(
            flags=patient.flags.all(),
            acne=patient.acne_records.all()[:5],
            acne_now=patient.acne_level_on(timezone.localdate()),
            adverse_events=patient.adverse_events.unresolved().select_related("scar_site"),
            instruments=scales.INSTRUMENTS.values(),
        )
    return render(request, "plans/patient_detail.html", context)


# --- assessments ---------------------------------------------------------------------------


@permission_required("plans.add_assessment", raise_exception=True)
def assessment_add(request, pk, site_pk):
    patient = get_patient(pk)
    site = get_object_or_404(ScarSite, pk=site_pk, patient=patient)
    code = request.POST.get("instrument") or request.GET.get("instrument") or "vss"
    if code not in scales.INSTRUMENTS:
        code = "vss"
    instrument = scales.get(code)
    choice = BaselineChoiceForm(request.POST or None, initial={"instrument": code})
    items = InstrumentForm(request.POST or None, instrument=instrument, prefix="items")
    if request.method == "POST" and choice.is_valid() and items.is_valid():
        assessment = services.assessment_record(
            patient=patient,
            scar_site=site,
            instrument=code,
            items=items.items(),
            user=request.user,
            assessed_on=choice.cleaned_data["assessed_on"],
            notes=choice.cleaned_data["notes"],
        )
        messages.success(
            request,
            f"{instrument.name} for {site}: total {assessment.total} "
            f"(range {instrument.min_total}-{instrument.max_total}).",
        )
        return redirect("patient_detail", pk=patient.pk)
    return render(
        request,
        "plans/assessment_form.html",
        {
            "patient": patient,
            "site": site,
            "instrument": instrument,
            "instruments": scales.INSTRUMENTS.values(),
            "choice": choice,
            "items": items,
        },
    )


# --- plans ---------------------------------------------------------------------------------


def _suggestions(patient, sites):
    scar_types = {t for site in sites for t in site.scar_types.all()}
    if not scar_types:
        return []
    return list(Treatment.objects.suited_to(scar_types).prefetch_related("best_for"))


def _unsaved_courses(formset):
    courses = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if not data or data.get("DELETE") or not data.get("treatment"):
            continue
        course = form.save(commit=False)
        course.default_parameters = course.default_parameters or {}
        courses.append(course)
    return courses


@permission_required("plans.add_plan", raise_exception=True)
def plan_create(request, pk):
    patient = get_patient(pk)
    if patient.is_archived:
        messages.error(request, "This patient is archived: no new plans.")
        return redirect("patient_detail", pk=patient.pk)
    initial = {"clinician": request.user.pk, "start_date": timezone.localdate()}
    form = PlanForm(request.POST or None, patient=patient, initial=initial)
    formset = CourseFormSet(request.POST or None, prefix="courses")
    preview = None
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        courses = _unsaved_courses(formset)
        if not courses:
            messages.error(request, "Add at least one course (a treatment with its sessions).")
        elif request.POST.get("action") == "save":
            plan = services.plan_create(
                patient=patient,
                title=form.cleaned_data["title"],
                clinician=form.cleaned_data["clinician"],
                start_date=form.cleaned_data["start_date"],
                preferred_time=form.cleaned_data["preferred_time"],
                target_sites=form.cleaned_data["target_sites"],
                goal=form.cleaned_data["goal"],
                internal_notes=form.cleaned_data["internal_notes"],
                courses=[
                    services.CourseInput(
                        treatment=c.treatment,
                        sessions_count=c.sessions_count,
                        interval_days=c.interval_days,
                        offset_days=c.offset_days,
                        label=c.label,
                    )
                    for c in courses
                ],
                user=request.user,
            )
            messages.success(
                request, "Plan saved as a draft. Check the calendar, then activate it."
            )
            return redirect("plan_detail", pk=plan.pk)
        else:
            preview = services.calendar_preview(
                patient=patient, start_date=form.cleaned_data["start_date"], courses=courses
            )
    sites = list(patient.scar_sites.active().prefetch_related("scar_types"))
    chosen = sites
    if form.is_bound and form.is_valid():
        chosen = list(form.cleaned_data["target_sites"])
    return render(
        request,
        "plans/plan_form.html",
        {
            "patient": patient,
            "form": form,
            "formset": formset,
            "preview": preview,
            "suggestions": _suggestions(patient, chosen),
            "treatments": Treatment.objects.active(),
        },
    )


@permission_required("plans.view_plan", raise_exception=True)
def plan_detail(request, pk):
    plan = get_plan(pk)
    sessions = list(plan.sessions.select_related("clinician").prefetch_related(_treatment_rows()))
    preview = services.plan_preview(plan) if plan.status == Plan.Status.DRAFT else None
    blocks = [c for visit in preview or [] for c in visit.findings if c.blocks]
    return render(
        request,
        "plans/plan_detail.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "courses": plan.courses.select_related("treatment"),
            "sites": plan.target_sites.prefetch_related("scar_types"),
            "sessions": sessions,
            "preview": preview,
            "blocks": blocks,
            "done": sum(s.status == Session.Status.COMPLETED for s in sessions),
            "planned": sum(s.status != Session.Status.CANCELLED for s in sessions),
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "clinical": request.user.has_perm("plans.view_assessment"),
            "book_form": BookForm(plan=plan) if plan.status == Plan.Status.ACTIVE else None,
            "today": timezone.localdate(),
        },
    )


@require_POST
@permission_required("plans.change_plan", raise_exception=True)
def plan_activate(request, pk):
    plan = get_plan(pk)
    try:
        sessions = services.plan_activate(
            plan=plan, user=request.user, overrides=_overrides_from(request.POST)
        )
    except services.SafetyBlocked:
        _blocked(request)
        return plan_detail(request, pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("plan_detail", pk=plan.pk)
    messages.success(request, f"Plan activated: {len(sessions)} sessions are on the calendar.")
    return redirect("plan_detail", pk=plan.pk)


@require_POST
@permission_required("plans.change_plan", raise_exception=True)
def plan_status(request, pk, action):
    plan = get_plan(pk)
    try:
        if action == "hold":
            services.plan_hold(plan=plan, user=request.user)
            messages.success(request, "Plan on hold: its future sessions are frozen.")
        elif action == "cancel":
            services.plan_cancel(plan=plan, user=request.user)
            messages.success(request, "Plan cancelled: future sessions are cancelled.")
        elif action == "resume":
            restart = date_param(request.POST.get("restart_on"))
            if not restart:
                messages.error(request, "Restart on: give a date (YYYY-MM-DD).")
                return redirect("plan_detail", pk=plan.pk)
            services.plan_resume(
                plan=plan,
                user=request.user,
                restart_on=restart,
                overrides=_overrides_from(request.POST),
            )
            messages.success(request, f"Plan resumed from {restart:%d %b %Y}.")
    except services.SafetyBlocked as exc:
        _blocked(request)
        for checked in exc.findings:
            messages.error(request, f"{checked.on:%d %b %Y}: {checked.finding.message}")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("plan_detail", pk=plan.pk)


# --- booking -------------------------------------------------------------------------------


@permission_required("plans.change_session", raise_exception=True)
def session_move(request, pk):
    session = get_session(pk)
    if session.status != Session.Status.SCHEDULED:
        messages.error(request, "Only a scheduled session can be moved.")
        return redirect("plan_detail", pk=session.plan_id)
    local = timezone.localtime(session.scheduled_at)
    form = RescheduleForm(
        request.POST or None,
        initial={"date": local.date(), "time": local.time(), "version": session.version},
    )
    blocked = []
    if request.method == "POST" and form.is_valid():
        try:
            findings = services.session_reschedule(
                session=session,
                new_start=form.new_start(),
                user=request.user,
                shift_following=form.cleaned_data["shift_following"],
                overrides=_overrides_from(request.POST),
                expected_version=form.cleaned_data["version"],
            )
        except services.SafetyBlocked as exc:
            _blocked(request)
            blocked = exc.findings
        except services.StaleEdit as exc:
            form.add_error(None, str(exc))
        except PermissionDenied:
            messages.error(request, "Only a clinician can override a blocking safety rule.")
            blocked = []
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            for checked in findings:
                messages.warning(request, f"{checked.on:%d %b %Y}: {checked.finding.message}")
            messages.success(request, "Session moved.")
            return redirect("plan_detail", pk=session.plan_id)
    return render(
        request,
        "plans/session_move.html",
        {
            "session": session,
            "patient": session.patient,
            "form": form,
            "blocked": blocked,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "findings": services.session_findings(session),
        },
    )


@permission_required("plans.add_session", raise_exception=True)
def session_book(request, pk):
    plan = get_plan(pk)
    form = BookForm(request.POST or None, plan=plan)
    blocked = []
    if request.method == "POST" and form.is_valid():
        try:
            session = services.session_book(
                course=form.cleaned_data["course"],
                scheduled_at=form.start(),
                user=request.user,
                overrides=_overrides_from(request.POST),
            )
        except services.SafetyBlocked as exc:
            _blocked(request)
            blocked = exc.findings
        except PermissionDenied:
            messages.error(request, "Only a clinician can override a blocking safety rule.")
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            messages.success(request, f"Booked: {session}.")
            return redirect("plan_detail", pk=plan.pk)
    return render(
        request,
        "plans/session_book.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "form": form,
            "blocked": blocked,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
        },
    )


@require_POST
@permission_required("plans.change_session", raise_exception=True)
def session_missed(request, pk):
    session = get_session(pk)
    try:
        services.session_mark_missed(session=session, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Session marked as missed.")
    return redirect("plan_detail", pk=session.plan_id)


# --- logging a session ---------------------------------------------------------------------


def _previous_parameters(session, rows):
    """Each row's parameters from the last completed session of the same treatment."""
    previous = {}
    done = (
        SessionTreatment.objects.filter(
            session__patient=session.patient_id,
            session__status=Session.Status.COMPLETED,
            treatment__in=[row.treatment_id for row in rows],
            session__scheduled_at__lt=session.scheduled_at,
        )
        .order_by("treatment_id", "-session__scheduled_at")
        .values_list("treatment_id", "parameters")
    )
    for treatment_id, parameters in done:
        previous.setdefault(treatment_id, parameters)
    return {row.pk: previous.get(row.treatment_id, {}) for row in rows}


def _site_instruments(sites):
    """Per scar site, the instruments used for it so far (baseline first), else a default."""
    used = {}
    for site_id, code in (
        Assessment.objects.filter(scar_site__in=sites)
        .exclude(instrument__in=scales.PER_SESSION)
        .order_by("assessed_on", "pk")
        .values_list("scar_site_id", "instrument")
    ):
        codes = used.setdefault(site_id, [])
        if code not in codes:
            codes.append(code)
    result = {}
    for site in sites:
        default = (
            "vss" if any(not t.is_atrophic for t in site.scar_types.all()) else "gb_qualitative"
        )
        result[site.pk] = used.get(site.pk) or [default]
    return result


@permission_required("plans.change_sessiontreatment", raise_exception=True)
@permission_required("plans.add_assessment", raise_exception=True)
def session_log(request, pk):
    session = get_session(pk)
    if session.status != Session.Status.SCHEDULED and request.method != "POST":
        messages.info(request, f"This session is {session.get_status_display().lower()}.")
        return redirect("session_detail", pk=session.pk)
    # A POST on a session someone else just logged falls through: the service refuses it
    # and the form comes back with everything this clinician typed.
    post = request.POST if request.method == "POST" else None
    files = request.FILES if request.method == "POST" else None
    rows = list(
        session.treatments.select_related("treatment", "course").prefetch_related(
            "treatment__parameters"
        )
    )
    previous = _previous_parameters(session, rows)
    parameter_forms = [
        ParametersForm(post, row=row, previous=previous[row.pk], prefix=f"t{row.pk}")
        for row in rows
    ]
    sites = list(session.plan.target_sites.active().prefetch_related("scar_types"))
    instruments = _site_instruments(sites)
    site_blocks = []
    for site in sites:
        site_blocks.append(
            {
                "site": site,
                "outcome": SiteOutcomeForm(post, files, prefix=f"s{site.pk}"),
                "instruments": [
                    InstrumentForm(
                        post,
                        instrument=scales.get(code),
                        optional=True,
                        prefix=f"s{site.pk}-{code}",
                    )
                    for code in instruments[site.pk]
                ],
            }
        )
    events = AdverseEventFormSet(
        post, prefix="ae", form_kwargs={"sites": session.plan.target_sites.active()}
    )
    notes = post.get("notes", session.notes) if post else session.notes
    findings = services.session_findings(session)
    existing = set(session.overrides.values_list("rule", "treatment__code"))
    open_blocks = [
        c for c in findings if c.blocks and (c.finding.rule, c.treatment.code) not in existing
    ]
    lost_photos = []
    if post is not None:
        forms_ok = all(f.is_valid() for f in parameter_forms)
        forms_ok &= all(b["outcome"].is_valid() for b in site_blocks)
        forms_ok &= all(f.is_valid() for b in site_blocks for f in b["instruments"])
        forms_ok &= events.is_valid()
        if forms_ok:
            try:
                services.session_complete(
                    session=session,
                    user=request.user,
                    parameters={f.row.pk: f.values() for f in parameter_forms},
                    assessments=_assessments_from(site_blocks),
                    adverse_events=_events_from(events),
                    photos=_photos_from(site_blocks),
                    notes=notes,
                    overrides=_overrides_from(request.POST),
                    expected_version=_int(request.POST.get("version")),
                )
            except services.SafetyBlocked as exc:
                _blocked(request)
                open_blocks = exc.findings
            except services.StaleEdit as exc:
                messages.error(request, str(exc))
            except PermissionDenied:
                messages.error(request, "Only a clinician can override a blocking safety rule.")
            except ValidationError as exc:
                messages.error(request, "Not saved: " + " ".join(exc.messages))
            else:
                messages.success(request, f"Session logged for {session.patient.full_name}.")
                return redirect("patient_detail", pk=session.patient_id)
        # Browsers cannot refill a file input: name each photo that must be chosen again.
        lost_photos = [f.name for f in (files or {}).values()]
        for block in site_blocks:
            upload = (files or {}).get(block["outcome"].add_prefix("photo"))
            block["lost_photo"] = upload.name if upload else ""
    return render(
        request,
        "plans/session_log.html",
        {
            "session": session,
            "patient": session.patient,
            "rows": list(zip(rows, parameter_forms, strict=True)),
            "site_blocks": site_blocks,
            "events": events,
            "notes": notes,
            "findings": findings,
            "open_blocks": open_blocks,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "lost_photos": lost_photos,
            "version": session.version if post is None else request.POST.get("version"),
        },
    )


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _assessments_from(site_blocks):
    result = []
    for block in site_blocks:
        site = block["site"]
        for form in block["instruments"]:
            if not form.is_blank:
                result.append(services.AssessmentInput(site, form.instrument.code, form.items()))
        outcome = block["outcome"].cleaned_data
        for code, name in (
            ("gais_clinician", "improvement"),
            ("gais_patient", "improvement"),
            ("pain", "pain"),
        ):
            value = outcome.get(code)
            if value is not None:
                result.append(services.AssessmentInput(site, code, {name: value}))
    return result


def _events_from(formset):
    return [
        services.AdverseEventInput(
            kind=data["kind"],
            severity=data["severity"],
            scar_site=data.get("scar_site"),
            onset_on=data.get("onset_on"),
            resolved_on=data.get("resolved_on"),
            notes=data.get("notes", ""),
        )
        for data in (form.cleaned_data for form in formset.forms)
        if data and data.get("kind")
    ]


def _photos_from(site_blocks):
    return [
        services.PhotoInput(
            block["site"],
            block["outcome"].cleaned_data["photo"],
            block["outcome"].cleaned_data.get("photo_caption", ""),
        )
        for block in site_blocks
        if block["outcome"].cleaned_data.get("photo")
    ]


@permission_required("plans.view_session", raise_exception=True)
def session_detail(request, pk):
    session = get_session(pk)
    clinical = request.user.has_perm("plans.view_assessment")
    context = {
        "session": session,
        "patient": session.patient,
        "rows": session.treatments.select_related("treatment", "course"),
        "clinical": clinical,
    }
    if clinical:
        context.update(
            assessments=session.assessments.select_related("scar_site").order_by("scar_site"),
            adverse_events=session.adverse_events.select_related("scar_site"),
            overrides=session.overrides.select_related("overridden_by", "treatment"),
            photos=session.photos.select_related("scar_site"),
        )
    return render(request, "plans/session_detail.html", context)


# --- adverse events ------------------------------------------------------------------------


@permission_required("plans.view_adverseevent", raise_exception=True)
def adverse_event_list(request):
    events = (
        AdverseEvent.objects.unresolved()
        .select_related("patient", "scar_site", "session")
        .order_by("onset_on", "pk")
    )
    return render(
        request,
        "plans/adverse_event_list.html",
        {"page": paginate(request, events), "form": ResolveForm()},
    )


@require_POST
@permission_required("plans.change_adverseevent", raise_exception=True)
def adverse_event_resolve(request, pk):
    event = get_object_or_404(AdverseEvent.objects.select_related("patient"), pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Resolved on: give a date (YYYY-MM-DD).")
    elif form.cleaned_data["resolved_on"] < event.onset_on:
        messages.error(
            request, f"Resolved on must be on or after the onset ({event.onset_on:%d %b %Y})."
        )
    else:
        event.resolved_on = form.cleaned_data["resolved_on"]
        event.full_clean()
        event._history_user = request.user
        event.save()
        messages.success(request, f"{event} for {event.patient.full_name} marked resolved.")
    return redirect(safe_next(request, reverse("adverse_event_list")))


# --- photos --------------------------------------------------------------------------------


@permission_required("plans.view_sessionphoto", raise_exception=True)
def photo(request, pk):
    """A clinical photo, only with clinical-photography consent in force on the day taken."""
    item = get_object_or_404(SessionPhoto.objects.select_related("session"), pk=pk)
    consents = Consent.objects.filter(
        patient=item.session.patient_id, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY
    )
    if not any(c.in_force_on(item.taken_on) for c in consents):
        return HttpResponseForbidden("No clinical photography consent on file for this photo.")
    return private_file_response(item.image, download_name=f"photo-{item.pk}", inline_images=True)
