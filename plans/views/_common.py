"""Helpers shared by several page families: treatment rows, safety overrides and blocks."""

from django.contrib import messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from clinic.form_tools import text_problem
from clinic.validators import refuse_nul
from plans import safety, services
from plans.models import SessionTreatment

OVERRIDE_PREFIX = "override-"
# Who may read a safety finding's rule and reasons: they name conditions and medications.
# Everyone else (front desk) sees only that a clinician must look (issue 10, point 4).
READS_FINDINGS = "patients.view_medicalflag"


def _treatment_rows():
    return Prefetch(
        "treatments",
        queryset=SessionTreatment.objects.select_related("treatment", "course").order_by("id"),
    )


def _overrides_from(post):
    """Override reasons by rule key; a NUL character in one is refused (ValidationError,
    which every caller shows as a message) before it reaches the database."""
    overrides = {
        key[len(OVERRIDE_PREFIX) :]: value
        for key, value in post.items()
        if key.startswith(OVERRIDE_PREFIX)
    }
    for key, reason in overrides.items():
        refuse_nul(key, "Override reason")
        refuse_nul(reason, "Override reason")
    return overrides


def input_problems(request, *, texts=None, formsets=()):
    """Flash what cannot be saved in text read straight from the POST ({label: text}) and in
    formsets' own checks (too many rows); True when there is any. Nothing typed is lost:
    the page is shown again with the values as sent."""
    problems = [text_problem(value, label) for label, value in (texts or {}).items()]
    problems += [" ".join(f.non_form_errors()) for f in formsets if f.is_bound]
    for problem in filter(None, problems):
        messages.error(request, problem)
    return any(problems)


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


def findings_for(user, findings):
    """The findings a page lists for this user: all of them for clinical staff; for front
    desk one per day, treatment and action, information-only ones left out, since
    includes/finding.html shows them nothing but a neutral badge."""
    if user.has_perm(READS_FINDINGS):
        return list(findings)
    shown = {}
    for checked in findings:
        if checked.finding.action != safety.Action.INFORM:
            shown.setdefault((checked.on, checked.treatment.pk, checked.finding.action), checked)
    return list(shown.values())


def finding_messages(request, findings, level=messages.WARNING):
    """Flash what a change was saved (or refused) with: each finding in full for clinical
    staff, one neutral line per day for front desk ("Check with clinician before 5 Jan 2027")."""
    if request.user.has_perm(READS_FINDINGS):
        for checked in findings:
            messages.add_message(
                request, level, f"{checked.on:%d %b %Y}: {checked.finding.message}"
            )
        return
    by_day = {}
    for checked in findings:
        by_day.setdefault(checked.on, []).append(checked)
    for day, found in sorted(by_day.items()):
        badge = services.neutral_badge(found)
        if badge:
            messages.add_message(request, level, f"{badge} before {day:%-d %b %Y}")


def refusal_text(refused) -> str:
    """A refused booking as one message: what is wrong, then the next free slots."""
    text = "Not booked: " + " ".join(p.message for p in refused.problems)
    if refused.alternatives:
        slots = ", ".join(
            f"{timezone.localtime(slot.start):%a %-d %b %H:%M}" for slot in refused.alternatives
        )
        text += f" Next free: {slots}."
    return text


def back_to(session):
    """Where to go after changing a session: its plan, or the diary for a visit outside one."""
    if session.plan_id:
        return reverse("plan_detail", args=[session.plan_id])
    return f"{reverse('diary_day')}?day={timezone.localtime(session.scheduled_at):%Y-%m-%d}"


def visit_sites(session):
    """The scar sites a session scores: its plan's targets, or any of the patient's."""
    if session.plan_id:
        return session.plan.target_sites.active()
    return session.patient.scar_sites.active()


def _int(value):
    """A whole number from a request parameter; None when missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
