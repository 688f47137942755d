"""Plans: the builder (live preview, protocols), detail, activation, hold/resume/cancel,
saving a plan as a template, and booking an extra session."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.forms.utils import ErrorDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clinic.validators import date_range_text, in_clinic_range
from clinic.views_helpers import date_param
from patients.models import ScarType
from patients.views import get_patient
from plans import safety, services
from plans.forms import (
    BookForm,
    CourseFormSet,
    PlanForm,
    PlanTemplateSaveForm,
    plan_title,
    template_rows,
)
from plans.models import Plan, PlanTemplate, PlanTemplateCourse, Session, Treatment
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


@dataclass
class Suggestion:
    treatment: Treatment
    covered: list  # the chosen sites' scar types it is best for
    sites: list  # the chosen sites it matches
    reason: str


def ranked_suggestions(sites, treatments, every_type_count):
    """Treatments for the sites' scar types, best fit first: the more of the sites' types a
    treatment is best for, the higher; then the more specific (fewer types) above the one
    that suits every type; then by name. Each says why it is there."""
    wanted = {t.pk: t for site in sites for t in site.scar_types.all()}
    found = []
    for treatment in treatments:
        best_for = list(treatment.best_for.all())
        own = {t.pk for t in best_for}
        covered = [t for pk, t in wanted.items() if pk in own]
        if not covered:
            continue
        matched = [site for site in sites if own & {t.pk for t in site.scar_types.all()}]
        if len(own) >= every_type_count:
            what = "Suits every scar type"
        else:
            what = "Best for " + ", ".join(t.name.lower() for t in best_for)
        reason = f"{what}: matches {', '.join(site.get_body_site_display() for site in matched)}"
        found.append(Suggestion(treatment, covered, matched, reason))
    found.sort(key=lambda s: (-len(s.covered), len(s.treatment.best_for.all()), s.treatment.name))
    return found


def _suggestions(sites):
    scar_types = {t for site in sites for t in site.scar_types.all()}
    if not scar_types:
        return []
    treatments = Treatment.objects.suited_to(scar_types).prefetch_related("best_for")
    return ranked_suggestions(sites, treatments, ScarType.objects.count())


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


def _chosen_sites(request, form, sites):
    """The sites ticked on the form as sent (valid or not); unbound: the ticked or all."""
    if not form.is_bound:
        ticked = form.initial.get("target_sites")
        return [s for s in sites if s.pk in ticked] if ticked else sites
    ticked = set(request.POST.getlist("target_sites"))
    return [site for site in sites if str(site.pk) in ticked]


def _quiet(form):
    """Re-rendered for another row, not submitted: show what was typed, no errors yet."""
    form._errors = ErrorDict()
    form.cleaned_data = {}


def _with_template(post, template):
    """The form as sent with the protocol's courses in place of the course rows: applying a
    protocol without JavaScript keeps everything else that was typed (sites, goal, dates,
    notes, a title of one's own; an empty title becomes the protocol's name)."""
    data = post.copy()
    for key in [k for k in data if k.startswith("courses-")]:
        del data[key]
    rows = template_rows(template)
    data.update(
        {
            "courses-TOTAL_FORMS": str(max(len(rows), 1)),
            "courses-INITIAL_FORMS": "0",
            "courses-MIN_NUM_FORMS": str(CourseFormSet.min_num),
            "courses-MAX_NUM_FORMS": str(CourseFormSet.max_num),
        }
    )
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"courses-{index}-{name}"] = "" if value is None else str(value)
    if not data.get("title", "").strip():
        data["title"] = template.name
    return data


def _course_formset(request, action, template, data=None):
    if request.method != "POST":
        rows = template_rows(template) if template else []
        formset = CourseFormSet(prefix="courses", initial=rows)
        formset.extra = max(len(rows) - formset.min_num, 0)
        return formset
    data = request.POST if data is None else data
    if action == "add_row":
        data = data.copy()
        key = "courses-TOTAL_FORMS"
        try:
            rows = int(data.get(key, "1"))
        except ValueError:
            rows = 1
        data[key] = str(min(max(rows, 0) + 1, CourseFormSet.max_num))
    return CourseFormSet(data, prefix="courses")


def _active_template(pk_text):
    """The active protocol with this id (text from a form or URL) and its courses, or None."""
    if not pk_text.isdigit():
        return None
    return PlanTemplate.objects.active().prefetch_related("courses").filter(pk=int(pk_text)).first()


def _builder(request, patient, *, live=False):
    """The form, course rows and what is beside them (suggestions, the calendar preview)."""
    sites = list(patient.scar_sites.active().prefetch_related("scar_types"))
    action = request.POST.get("action", "preview")
    template = None
    if request.method != "POST":
        template = _active_template(request.GET.get("template", ""))
    data = request.POST or None
    if request.method == "POST" and not live:  # "Apply" a protocol without JavaScript
        template = _active_template(request.POST.get("template", ""))
        if template is not None:
            action = "apply_template"
            data = _with_template(request.POST, template)
    initial = {"clinician": request.user.pk, "start_date": timezone.localdate()}
    if template:
        initial["title"] = template.name
    form = PlanForm(data, patient=patient, sites=sites, initial=initial)
    formset = _course_formset(request, action, template, data)
    state = {
        "patient": patient,
        "form": form,
        "formset": formset,
        "action": action,
        "courses": [],
        "preview": None,
        "template": template,
        "sites": sites,
    }
    if action == "apply_template" and form.is_valid() and formset.is_valid():
        state["courses"] = _unsaved_courses(formset)
        state["preview"] = services.calendar_preview(
            patient=patient, start_date=form.cleaned_data["start_date"], courses=state["courses"]
        )
    if action in ("add_row", "apply_template") and not live:
        _quiet(form)
        for course in formset.forms:
            _quiet(course)
        formset._non_form_errors = formset.error_class()
    elif request.method == "POST" and form.is_valid() and formset.is_valid():
        courses = _unsaved_courses(formset)
        state["courses"] = courses
        if courses:
            state["preview"] = services.calendar_preview(
                patient=patient, start_date=form.cleaned_data["start_date"], courses=courses
            )
    if request.method == "POST" and action not in ("add_row", "apply_template"):
        state["to_correct"] = [
            str(form.fields[name].label if name in form.fields else "the plan")
            for name in form.errors
        ] + [f"course {n}" for n, course in enumerate(formset.forms, 1) if course.errors]
    state["suggestions"] = _suggestions(_chosen_sites(request, form, sites))
    state["title"] = plan_title(state["courses"])
    state["one_step"] = _clean(state["preview"])
    return state


def _clean(preview):
    """Nothing to confirm or override: the plan can be saved and activated at once."""
    if not preview:
        return False
    return not any(
        checked.finding.action in (safety.Action.BLOCK, safety.Action.WARN)
        for visit in preview
        for checked in visit.findings
    )


@permission_required("plans.add_plan", raise_exception=True)
def plan_create(request, pk):
    patient = get_patient(pk)
    if patient.is_archived:
        messages.error(request, "This patient is archived: no new plans.")
        return redirect("patient_detail", pk=patient.pk)
    state = _builder(request, patient)
    form, action = state["form"], state["action"]
    if request.method == "POST" and action in ("save", "activate") and form.is_bound:
        if form.is_valid() and state["formset"].is_valid() and not state["courses"]:
            messages.error(request, "Add at least one course (a treatment with its sessions).")
        elif state["courses"]:
            plan = _save_plan(request, patient, form, state["courses"], state["title"])
            if action == "activate":
                _activate_if_clean(request, plan)
            else:
                messages.success(
                    request, "Plan saved as a draft. Check the calendar, then activate it."
                )
            return redirect("plan_detail", pk=plan.pk)
    elif action == "apply_template":
        messages.info(
            request,
            f"{state['template'].name}: {len(state['formset'].forms)} course"
            f"{'s' if len(state['formset'].forms) != 1 else ''} filled in; "
            "everything else you typed is kept.",
        )
    elif (
        request.method == "POST"
        and action == "preview"
        and form.is_valid()
        and state["formset"].is_valid()
        and not state["courses"]
    ):
        messages.error(request, "Add at least one course (a treatment with its sessions).")
    return render(
        request,
        "plans/plan_form.html",
        state
        | {
            "treatments": Treatment.objects.active(),
            "templates": PlanTemplate.objects.active().prefetch_related(
                Prefetch("courses", queryset=PlanTemplateCourse.objects.order_by("order", "id"))
            ),
        },
    )


@require_POST
@permission_required("plans.add_plan", raise_exception=True)
def plan_builder_preview(request, pk):
    """The calendar preview and suggestions for the builder's current input, as a fragment
    the page swaps in without a reload (static/js/plan-form.js)."""
    patient = get_patient(pk)
    return render(request, "plans/_builder_live.html", _builder(request, patient, live=True))


def _save_plan(request, patient, form, courses, title):
    return services.plan_create(
        patient=patient,
        title=form.cleaned_data["title"].strip() or title,
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


def _activate_if_clean(request, plan):
    """Save and activate in one step when nothing needs confirming; a warning to confirm, a
    block to override or a visit with no free slot leaves the draft for the plan page."""
    preview = services.plan_preview(plan)
    if not _clean(preview) or any(v.slot is None or v.problems for v in preview):
        messages.warning(
            request,
            "Plan saved as a draft: confirm the safety findings or the times below, "
            "then activate it.",
        )
        return
    try:
        sessions = services.plan_activate(plan=plan, user=request.user)
    except (services.SafetyBlocked, PermissionDenied):
        messages.warning(request, "Plan saved as a draft: a safety rule needs a decision below.")
    except services.BookingRefused as exc:
        messages.warning(request, f"Plan saved as a draft. {refusal_text(exc)}")
    except ValidationError as exc:
        messages.warning(request, f"Plan saved as a draft. {' '.join(exc.messages)}")
    else:
        messages.success(
            request, f"Plan saved and activated: {len(sessions)} sessions are on the calendar."
        )


@require_POST
@permission_required("plans.add_plantemplate", raise_exception=True)
def plan_save_template(request, pk):
    """A manager keeps a plan's courses as a named protocol for the builder."""
    plan = get_plan(pk)
    form = PlanTemplateSaveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect("plan_detail", pk=plan.pk)
    with transaction.atomic():
        template = PlanTemplate(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            created_by=request.user,
        )
        template.full_clean()
        template.save()
        for order, course in enumerate(plan.courses.all()):
            saved = PlanTemplateCourse(
                template=template,
                treatment_id=course.treatment_id,
                sessions_count=course.sessions_count,
                interval_days=course.interval_days,
                offset_days=course.offset_days,
                label=course.label,
                default_parameters=dict(course.default_parameters or {}),
                order=order,
            )
            saved.full_clean()
            saved.save()
    messages.success(request, f"Saved as the plan template \u201c{template.name}\u201d.")
    return redirect("plan_detail", pk=plan.pk)


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
            "template_form": PlanTemplateSaveForm(initial={"name": plan.title})
            if request.user.has_perm("plans.add_plantemplate")
            else None,
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
