"""Helpers shared by several page families: treatment rows, safety overrides and blocks."""

from django.contrib import messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from plans import services
from plans.models import SessionTreatment

OVERRIDE_PREFIX = "override-"


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
