"""Plans: the builder, detail, activation, hold/resume/cancel and booking an extra session."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clinic.validators import date_range_text, in_clinic_range
from clinic.views_helpers import date_param
from patients.views import get_patient
from plans import services
from plans.forms import BookForm, CourseFormSet, PlanForm
from plans.models import Plan, Session, Treatment
from plans.views import _once
from plans.views._common import (
    _blocked,
    _overrides_from,
    _treatment_rows,
    finding_messages,
    findings_for,
    refusal_text,
)


def get_plan(pk):
    return get_object_or_404(Plan.objects.select_related("patient", "clinician"), pk=pk)


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
                location=form.cleaned_data.get("location"),
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
                        default_parameters=c.default_parameters,
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
    preview = None
    if plan.status == Plan.Status.DRAFT:
        preview = services.plan_preview(plan, pinned=pinned_from(request))
    for visit in preview or []:
        visit.neutral = services.neutral_badge(visit.findings)
    blocks = findings_for(
        request.user, [c for visit in preview or [] for c in visit.findings if c.blocks]
    )
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


def pinned_from(request):
    """Times a person chose on the calendar preview: field "slot-<visit>" = YYYY-MM-DDTHH:MM.
    An empty or unreadable field keeps the proposed slot (a message says so)."""
    pinned = {}
    for key, value in request.POST.items():
        if not key.startswith("slot-") or not value.strip():
            continue
        try:
            index = int(key.removeprefix("slot-"))
            moment = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
        except ValueError:
            messages.error(request, f"{value!r} is not a date and time (YYYY-MM-DD HH:MM).")
            continue
        if not in_clinic_range(moment):
            messages.error(request, f"{value} is outside the dates the clinic works with.")
            continue
        pinned[index] = timezone.make_aware(moment)
    return pinned


@require_POST
@permission_required("plans.change_plan", raise_exception=True)
def plan_activate(request, pk):
    plan = get_plan(pk)
    try:
        sessions = services.plan_activate(
            plan=plan,
            user=request.user,
            overrides=_overrides_from(request.POST),
            pinned=pinned_from(request),
        )
    except services.SafetyBlocked:
        _blocked(request)
        return plan_detail(request, pk)
    except services.BookingRefused as exc:
        messages.error(request, refusal_text(exc))
        return redirect("plan_detail", pk=plan.pk)
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
                messages.error(
                    request, f"Restart on: give a date {date_range_text()} (YYYY-MM-DD)."
                )
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
        finding_messages(request, exc.findings, messages.ERROR)
    except services.BookingRefused as exc:
        messages.error(request, refusal_text(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("plan_detail", pk=plan.pk)


# --- booking an extra session --------------------------------------------------------------


@permission_required("plans.add_session", raise_exception=True)
def session_book(request, pk):
    plan = get_plan(pk)
    form = BookForm(request.POST or None, plan=plan)
    blocked = []
    if request.method == "POST" and form.is_valid():
        try:
            session, fresh = _once.book_once(
                request,
                lambda: services.session_book(
                    course=form.cleaned_data["course"],
                    scheduled_at=form.start(),
                    user=request.user,
                    overrides=_overrides_from(request.POST),
                ),
            )
        except services.SafetyBlocked as exc:
            _blocked(request)
            blocked = findings_for(request.user, exc.findings)
        except PermissionDenied:
            messages.error(request, "Only a clinician can override a blocking safety rule.")
        except services.BookingRefused as exc:
            form.add_error(None, refusal_text(exc))
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            if not fresh:
                _once.say_already_booked(request, session)
                return redirect("plan_detail", pk=plan.pk)
            finding_messages(request, session.findings)
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
            "booking_token": _once.token_for(request),
        },
    )
