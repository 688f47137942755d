"""Today: the sessions due on a day, the week ahead and the overdue ones."""

from datetime import timedelta

from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.utils import timezone

from clinic.roles import CLINICIAN, MANAGER
from clinic.views_helpers import date_param, paginate
from plans import services
from plans.forms import clinicians
from plans.models import Session
from plans.rule_governance import disabled_block_rules_for
from plans.views._common import _treatment_rows


@permission_required("plans.view_session", raise_exception=True)
def today(request):
    local_today = timezone.localdate()
    day = date_param(request.GET.get("day")) or local_today
    staff = list(clinicians())
    clinician = None
    if "clinician" not in request.GET:
        clinician = own_day(request.user)
    elif request.GET["clinician"]:
        clinician = next((c for c in staff if str(c.pk) == request.GET["clinician"]), None)
    sessions = Session.objects.select_related(
        "patient", "plan__clinician", "clinician"
    ).prefetch_related(_treatment_rows())
    if clinician:
        sessions = sessions.for_clinician(clinician)
    # One clinician's day fits a page; a whole clinic's busy day (hundreds) is paged.
    due = paginate(
        request,
        sessions.on_days(day)
        .exclude(status=Session.Status.CANCELLED)
        .order_by("scheduled_at", "pk"),
        per_page=50,
        param="due",
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
    listed = list(due) + list(week) + list(overdue)
    findings = services.findings_for_sessions([s for s in listed if s.status in Session.OPEN])
    for session in listed:
        session.findings = findings.get(session.pk, [])
        session.neutral = services.neutral_badge(session.findings)
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
            "clinical": request.user.has_perm("plans.view_assessment"),
            # Managers see a switched-off block rule here until it is on again.
            "disabled_rules": disabled_block_rules_for(request.user),
        },
    )


def own_day(user):
    """A clinician's Today starts with their own day; front desk and managers see everyone."""
    if user.has_role(CLINICIAN) and not user.has_role(MANAGER):
        return user
    return None
