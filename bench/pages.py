"""The in-process half of `make bench`: each key page's queries, SQL time and total time.

`measure()` picks the busiest day and the patient, plan and session with the most sessions,
logs in the demo clinician and manager (both factors), requests every page in interleaved
rounds with django.test.Client and returns one row per page. Any answer but 200 stops it: a
benchmark of an error page is a lie.
"""

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from django.contrib.auth import get_user_model
from django.core.cache.backends.dummy import DummyCache
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

BASELINE = "admin sessions"
# The outcomes page just after a session of the busiest completed day changed (as logging,
# amending or cancelling it does): its refresh, then a read that misses the cache.
AFTER_CHANGE = "clinic outcomes, after a change"
# A report's first download: WeasyPrint lays it out (the PDF cache misses); "progress report
# PDF" is the repeat download of the same report, from the cache.
FIRST_PDF = "progress report PDF, first download"


class BenchError(RuntimeError):
    """A page did not answer 200, or the data has nothing to measure."""


@dataclass
class Row:
    page: str
    url: str
    status: int
    queries: int
    sql_ms: float
    total_ms: float
    ratio: float = 0.0


def login(username):
    """A client logged in as `username` with its session bound to a TOTP device, as entering
    the authenticator code does (clinic.middleware.SecondFactorMiddleware lets it through)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.get(username=username)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Bench phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def targets():
    """The busiest day and the records with the most sessions (ties broken by id)."""
    from patients.models import Patient
    from plans.models import Plan, Session

    zone = timezone.get_current_timezone()
    busiest = (
        Session.objects.annotate(day=TruncDate("scheduled_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("-n", "day")
        .first()
    )
    if busiest is None:
        raise BenchError("No sessions: seed the demo clinic first.")
    top_patient = (
        Session.objects.values("patient").annotate(n=Count("id")).order_by("-n", "patient").first()
    )
    top_plan = (
        Session.objects.exclude(plan=None)
        .values("plan")
        .annotate(n=Count("id"))
        .order_by("-n", "plan")
        .first()
    )
    patient = Patient.objects.get(pk=top_patient["patient"])
    plan = Plan.objects.get(pk=top_plan["plan"])
    scheduled = Session.objects.filter(status=Session.Status.SCHEDULED)
    scheduled = scheduled.order_by("scheduled_at", "pk")
    session = scheduled.filter(plan=plan).first() or scheduled.first()
    if session is None:
        raise BenchError("No scheduled session to open the log form of.")
    busiest_done = (
        Session.objects.filter(status=Session.Status.COMPLETED)
        .annotate(day=TruncDate("scheduled_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("-n", "day")
        .first()
    )
    done = Session.objects.filter(status=Session.Status.COMPLETED)
    if busiest_done:
        done = done.filter(scheduled_at__date=busiest_done["day"])
    return {
        "day": busiest["day"],
        "day_sessions": busiest["n"],
        # Sessions of the busiest day with completed ones: "a session is logged" marks one.
        "changed": list(done.order_by("pk").values_list("pk", flat=True)[:50]),
        "patient": patient,
        "plan": plan,
        "session": session,
    }


def pages(t):
    """(page, login, url) for every key page."""
    day = t["day"].isoformat()
    patient, plan, session = t["patient"], t["plan"], t["session"]
    prefix = patient.last_name[:3]
    record = patient.record_number
    log_url = f"/sessions/{session.pk}/log/"
    if session.scheduled_on > timezone.localdate():
        log_url += "?performed_today=1"  # the form itself, not the "booked for later" page
    return [
        ("Today, one clinician", "clinician", f"/?day={day}"),
        ("Today, whole clinic", "clinician", f"/?day={day}&clinician="),
        ("diary day", "clinician", f"/diary/?day={day}"),
        ("patient search, name", "clinician", f"/patients/?q={prefix}"),
        ("patient search, record number", "clinician", f"/patients/?q={record}"),
        ("patient overview", "clinician", f"/patients/{patient.pk}/"),
        ("progress report HTML", "clinician", f"/patients/{patient.pk}/report/"),
        ("progress report PDF", "clinician", f"/patients/{patient.pk}/report.pdf"),
        (FIRST_PDF, "clinician", f"/patients/{patient.pk}/report.pdf"),
        ("plan detail", "clinician", f"/plans/{plan.pk}/"),
        ("session log form", "clinician", log_url),
        ("clinic outcomes, one year", "manager", "/reports/outcomes/"),
        (AFTER_CHANGE, "manager", "/reports/outcomes/"),
        (BASELINE, "manager", "/admin/plans/session/"),
        ("admin plans", "manager", "/admin/plans/plan/"),
        ("admin patients", "manager", "/admin/patients/patient/"),
        ("admin assessments", "manager", "/admin/plans/assessment/"),
        ("admin search, name", "manager", f"/admin/patients/patient/?q={prefix}"),
        ("admin search, record number", "manager", f"/admin/patients/patient/?q={record}"),
    ]


def _get(client, page, url):
    response = client.get(url)
    if response.streaming:
        b"".join(response.streaming_content)
    else:
        response.content  # noqa: B018 (rendered already; read it as a server would)
    if response.status_code != 200:
        where = response.get("Location", "")
        raise BenchError(f"{page}: GET {url} answered {response.status_code} {where}".strip())
    return response.status_code


class _SqlTimer:
    """Sums each query's time. CaptureQueriesContext counts them, but keeps each time as
    "%.3f" seconds, too coarse to sum a page of sub-millisecond queries."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def measure(rounds=7, t=None):
    """One warm-up round, then `rounds` interleaved rounds; medians per page."""
    if rounds < 1:
        raise BenchError("BENCH_ROUNDS must be 1 or more.")
    t = t or targets()
    plan = pages(t)
    clients = {name: login(name) for name in {who for _, who, _ in plan}}
    for page, who, url in plan:  # warm-up: templates, caches, connection
        _get(clients[who], page, url)
    samples = {page: [] for page, _, _ in plan}
    changed = iter(t["changed"] * (rounds + 1))
    for _ in range(rounds):
        for page, who, url in plan:
            if page == AFTER_CHANGE:
                _change_a_session(next(changed, None))
            timer = _SqlTimer()
            with (
                _no_pdf_cache(page == FIRST_PDF),
                CaptureQueriesContext(connection) as queries,
                connection.execute_wrapper(timer),
            ):
                started = time.perf_counter()
                status = _get(clients[who], page, url)
                total = (time.perf_counter() - started) * 1000
            samples[page].append((status, len(queries), timer.seconds * 1000, total))
    rows = []
    for page, _, url in plan:
        runs = samples[page]
        rows.append(
            Row(
                page=page,
                url=url,
                status=runs[-1][0],
                queries=max(r[1] for r in runs),
                sql_ms=statistics.median(r[2] for r in runs),
                total_ms=statistics.median(r[3] for r in runs),
            )
        )
    base = next(r.total_ms for r in rows if r.page == BASELINE)
    for row in rows:
        row.ratio = row.total_ms / base if base else 0.0
    return rows


@contextmanager
def _no_pdf_cache(miss):
    """With `miss`, the report views' cache is Django's dummy backend: nothing is found."""
    if not miss:
        yield
        return
    from plans import report_views

    with mock.patch.object(report_views, "cache", DummyCache("bench", {})):
        yield


def _change_a_session(session_id):
    """What a write to a completed session leaves behind: its mark (outcome_summary)."""
    from plans import outcome_summary

    if session_id is None:
        raise BenchError("No completed session to change: seed the demo clinic first.")
    outcome_summary.mark_sessions([session_id])


def table(rows):
    """The rows as one markdown table."""
    lines = [
        f"| page | queries | SQL ms | total ms | x {BASELINE} |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.page} | {r.queries} | {r.sql_ms:.1f} | {r.total_ms:.1f} | {r.ratio:.2f} |"
        )
    return "\n".join(lines)
