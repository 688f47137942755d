"""Today: the sessions due on a day, the week ahead and the overdue ones."""

from datetime import timedelta

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from clinic.roles import CLINICIAN, MANAGER
from clinic.views_helpers import PAGE_SIZE, date_param, paginate
from plans import services
from plans.forms import clinicians
from plans.models import Session
from plans.rule_governance import disabled_block_rules_for
from plans.views._common import _treatment_rows

# What the page and the safety checks read of a session, its patient and its clinicians: the
# rest of those wide rows (notes, addresses, password hashes) is never shown here.
_PERSON = ("first_name", "last_name", "username")
TODAY_FIELDS = (
    "kind",
    "status",
    "scheduled_at",
    "ends_at",
    "version",
    "patient__first_name",
    "patient__last_name",
    "patient__record_number",
    "patient__fitzpatrick_type",
    *(f"clinician__{f}" for f in _PERSON),
    "plan__clinician_id",
    *(f"plan__clinician__{f}" for f in _PERSON),
)


# Each row's links, by the URL name of their page; reversed once a page, not once a row.
ROW_LINKS = {
    "patient": "patient_detail",
    "detail": "session_detail",
    "log": "session_log",
    "move": "session_move",
    "missed": "session_missed",
    "status": "session_status",
}
_PK_MARK = 918273645


def pk_url(name):
    """A function giving reverse(name, args=[pk]) for any pk, from a single reverse(): the
    URL is the same around its <int:pk> for every pk."""
    head, mark, tail = reverse(name, args=[_PK_MARK]).rpartition(str(_PK_MARK))
    assert mark, name
    return lambda pk: f"{head}{int(pk)}{tail}"


def first_page_without_count(request, queryset, *, per_page, param):
    """paginate(), without its COUNT query when the first page holds the whole list (one
    clinician's day nearly always does): rows per_page + 1 tell whether there is more."""
    if request.GET.get(param) not in (None, "", "1"):
        return paginate(request, queryset, per_page=per_page, param=param)
    rows = list(queryset[: per_page + 1])
    if len(rows) <= per_page:
        return Paginator(rows, per_page).page(1)
    page = Paginator(queryset, per_page).page(1)  # counts the rows for "Page 1 of n"
    page.object_list = rows[:per_page]
    return page


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
    sessions = Session.objects.select_related("patient", "plan__clinician", "clinician").only(
        *TODAY_FIELDS
    )
    if clinician:
        sessions = sessions.for_clinician(clinician)
    # One clinician's day fits a page; a whole clinic's busy day (hundreds) is paged.
    due = first_page_without_count(
        request,
        sessions.on_days(day)
        .exclude(status=Session.Status.CANCELLED)
        .order_by("scheduled_at", "pk"),
        per_page=50,
        param="due",
    )
    week = first_page_without_count(
        request,
        sessions.on_days(day + timedelta(days=1), 6)
        .filter(status=Session.Status.SCHEDULED)
        .order_by("scheduled_at", "pk"),
        per_page=50,
        param="week",
    )
    overdue = first_page_without_count(
        request,
        sessions.overdue(local_today).order_by("-scheduled_at", "pk"),
        per_page=PAGE_SIZE,
        param="overdue",
    )
    listed = list(due) + list(week) + list(overdue)
    # The three lists' treatments in one query rather than one per list.
    prefetch_related_objects(listed, _treatment_rows())
    findings = services.findings_for_sessions([s for s in listed if s.status in Session.OPEN])
    links = {key: pk_url(name) for key, name in ROW_LINKS.items()}
    for session in listed:
        session.findings = findings.get(session.pk, [])
        session.neutral = services.neutral_badge(session.findings)
        session.rows = list(session.treatments.all())
        session.urls = {key: link(session.pk) for key, link in links.items()}
        session.urls["patient"] = links["patient"](session.patient_id)
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
