"""Today: the sessions due on a day, the week ahead and the overdue ones."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse
from django.utils import dateformat, timezone

from clinic.roles import CLINICIAN, MANAGER
from clinic.timeutils import day_start
from clinic.views_helpers import PAGE_SIZE, date_param, paginate
from plans import services
from plans.forms import clinicians
from plans.models import Session, SessionTreatment, Treatment
from plans.rule_governance import disabled_block_rules_for

# What the page and the safety checks read of a session, its patient and its plan (whose
# clinician a session without its own has): the rest of those wide rows (notes, addresses)
# is never shown here. Clinicians come from the staff list.
TODAY_FIELDS = (
    "kind",
    "status",
    "scheduled_at",
    "ends_at",
    "version",
    "clinician_id",
    "patient__first_name",
    "patient__last_name",
    "patient__record_number",
    "patient__fitzpatrick_type",
    "plan__clinician_id",
)
# The catalogue columns a row shows (name) or the safety rules read (Treatment.facts()).
TREATMENT_FIELDS = ("code", "name", *services.TREATMENT_FACT_FIELDS)

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


@dataclass
class TreatmentRow:
    """What a Today row shows and checks of one SessionTreatment."""

    treatment: Treatment
    parameters: dict
    numbering: str  # SessionTreatment.numbering: "2 of 4", or "" outside a course


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
    # The plan comes by select_related, not an annotation: a list longer than its page is
    # counted, and COUNT drops select_related's join (an annotation's join it keeps).
    sessions = Session.objects.select_related("patient", "plan").only(*TODAY_FIELDS)
    if clinician:
        sessions = sessions.for_clinician(clinician)
    # One clinician's day fits a page; a whole clinic's busy day (hundreds) is paged.
    due, week = due_and_week(request, sessions, day)
    overdue = first_page_without_count(
        request,
        sessions.overdue(local_today).order_by("-scheduled_at", "pk"),
        per_page=PAGE_SIZE,
        param="overdue",
    )
    booked = list(due) + list(week)
    listed = booked + list(overdue)
    rows = treatment_rows({s.pk for s in listed})
    # Safety badges are shown for the day and the week; an overdue row has none (logging it
    # checks the rules on the day it is logged), so its patient's facts are not read.
    findings = services.findings_for_sessions(
        [s for s in booked if s.status in Session.OPEN], rows=rows
    )
    people = people_by_pk(staff, listed)
    links = {key: pk_url(name) for key, name in ROW_LINKS.items()}
    words = RowWords()
    for session in listed:
        words.label(session)
        session.rows = rows.get(session.pk, [])
        session.findings = findings.get(session.pk, [])
        session.neutral = services.neutral_badge(session.findings)
        session.who = people.get(clinician_of(session))
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
            # The filter's options as plain strings: a clinic has dozens of clinicians.
            "clinician_choices": [(str(person.pk), str(person)) for person in staff],
            "clinician_value": str(clinician.pk) if clinician else None,
            "clinician": clinician,
            "clinical": request.user.has_perm("plans.view_assessment"),
            # Managers see a switched-off block rule here until it is on again.
            "disabled_rules": disabled_block_rules_for(request.user),
        },
    )


class RowWords:
    """A row's words, made once in the view rather than by template filters per row: its
    times, dates (each distinct day and format through Django's date format once a page, so
    the words stay the site's language), patient name and the number strings of its ids."""

    def __init__(self):
        self._days = {}

    def _day(self, moment, fmt):
        key = (moment.date(), fmt)
        if key not in self._days:
            self._days[key] = dateformat.format(moment, fmt)
        return self._days[key]

    def label(self, session):
        start = timezone.localtime(session.scheduled_at)
        end = timezone.localtime(session.ends_at)
        time = f"{start:%H:%M}"
        session.start_time = time
        session.time_range = f"{time}–{end:%H:%M}"
        session.when = f"{self._day(start, 'D j M')}, {time}"
        session.was_due = f"{self._day(start, 'D j M Y')}, {time}"
        session.due_short = f"{self._day(start, 'j M Y')}, {time}"
        session.name = session.patient.full_name
        session.dom = str(session.pk)
        session.version_text = str(session.version)


def own_day(user):
    """A clinician's Today starts with their own day; front desk and managers see everyone."""
    if user.has_role(CLINICIAN) and not user.has_role(MANAGER):
        return user
    return None


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


def due_and_week(request, sessions, day):
    """The first pages of the day's appointments (all but cancelled ones) and of the six days
    after it (scheduled ones), from one query when both fit their pages of 50."""
    per_page = 50
    day_end = day_start(day + timedelta(days=1))
    due = sessions.on_days(day).exclude(status=Session.Status.CANCELLED)
    due = due.order_by("scheduled_at", "pk")
    week = sessions.on_days(day + timedelta(days=1), 6).filter(status=Session.Status.SCHEDULED)
    week = week.order_by("scheduled_at", "pk")
    if request.GET.get("due") in (None, "", "1") and request.GET.get("week") in (None, "", "1"):
        both = sessions.on_days(day, 7).filter(
            (Q(scheduled_at__lt=day_end) & ~Q(status=Session.Status.CANCELLED))
            | Q(scheduled_at__gte=day_end, status=Session.Status.SCHEDULED)
        )
        rows = list(both.order_by("scheduled_at", "pk")[: 2 * per_page + 1])
        on_day = [s for s in rows if s.scheduled_at < day_end]
        after = rows[len(on_day) :]
        if len(rows) <= 2 * per_page and len(on_day) <= per_page and len(after) <= per_page:
            return Paginator(on_day, per_page).page(1), Paginator(after, per_page).page(1)
    return (
        first_page_without_count(request, due, per_page=per_page, param="due"),
        first_page_without_count(request, week, per_page=per_page, param="week"),
    )


def treatment_rows(session_pks):
    """Each listed session's TreatmentRows by session pk, in one query: plain values joined
    with the catalogue and the course, one Treatment per treatment rather than per row."""
    treatments, result = {}, {}
    for session_id, treatment_id, course_id, number, parameters, of, *columns in (
        SessionTreatment.objects.filter(session__in=session_pks)
        .order_by("id")
        .values_list(
            "session_id",
            "treatment_id",
            "course_id",
            "number",
            "parameters",
            "course__sessions_count",
            *(f"treatment__{name}" for name in TREATMENT_FIELDS),
        )
    ):
        if treatment_id not in treatments:
            values = dict(zip(TREATMENT_FIELDS, columns, strict=True))
            treatments[treatment_id] = Treatment(pk=treatment_id, **values)
        numbering = f"{number} of {of}" if course_id and number else ""
        row = TreatmentRow(treatments[treatment_id], parameters, numbering)
        result.setdefault(session_id, []).append(row)
    return result


def clinician_of(session):
    """The pk of the session's own clinician, else of its plan's (None: neither)."""
    return session.clinician_id or (session.plan.clinician_id if session.plan_id else None)


def people_by_pk(staff, sessions):
    """The clinicians of these sessions by pk: the staff list has nearly all of them; anyone
    else (someone no longer a clinician) is looked up in one query."""
    people = {person.pk: person for person in staff}
    missing = {clinician_of(s) for s in sessions} - people.keys() - {None}
    if missing:
        people.update(get_user_model().objects.in_bulk(missing))
    return people
