"""axe-core on every staff page each role can open, and the admin pages a manager uses, at
desk (1280 px) and tablet (768 px) widths.

axe runs its default rules (WCAG 2.0-2.2 A and AA and its best practices) plus `target-size`
(WCAG 2.2 AA 2.5.8, off in axe by default), and a test fails on any violation of impact
moderate, serious or critical. The axe script comes from the axe-playwright-python wheel
(axe-core 4.12) and is evaluated in the page by Playwright, so nothing is fetched from the
network and the page's Content-Security-Policy (which refuses inline scripts) does not get in
the way.
"""

import io

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from patients.models import Patient
from plans import services
from plans.models import Session

# `axe`: CI runs these once, in the SQLite pass (the pages' HTML is the same on PostgreSQL).
pytestmark = [pytest.mark.e2e, pytest.mark.axe, pytest.mark.django_db(transaction=True)]

# axe's default rules, plus target-size (a WCAG 2.2 AA rule axe leaves off by default).
# resultTypes: axe details only the violations (passes and the rest are not collected), which
# halves its time on a large admin page; the verdicts are the same.
AXE_OPTIONS = {"rules": {"target-size": {"enabled": True}}, "resultTypes": ["violations"]}
FAILING = {"moderate", "serious", "critical"}
SIZES = {"desk": {"width": 1280, "height": 900}, "tablet": {"width": 768, "height": 1024}}

_axe = Axe()


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=8, stdout=io.StringIO())
    settings.DEBUG = False


def violations_on(page):
    """axe's violations of impact moderate or above on the page as it is now, one readable
    line per node."""
    page.wait_for_load_state("load")
    results = _axe.run(page, options=AXE_OPTIONS)
    lines = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            if (node.get("impact") or violation["impact"]) not in FAILING:
                continue
            lines.append(
                f"{violation['id']} ({violation['impact']}): {node['target']} "
                f"{node.get('failureSummary', '').splitlines()[-1:]}"
            )
    return lines


def violations_at_each_size(page):
    """{size: [violation lines]} of the page as it is now, laid out at each width in turn
    (one load, two checks: the layout follows the new width as it would on a tablet turned
    round, media queries included)."""
    found = {}
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        lines = violations_on(page)
        if lines:
            found[size] = lines
    return found


def check_pages(page, base_url, paths):
    """Visit each path and return {"path at size": [violation lines]} for those with any."""
    found = {}
    for path in paths:
        response = page.goto(base_url + path)
        assert response.ok, f"{path} answered {response.status}"
        for size, lines in violations_at_each_size(page).items():
            found[f"{path} at {size}"] = lines
    return found


def report(found):
    return "\n".join(
        f"{path} ({len(lines)}):\n  " + "\n  ".join(lines) for path, lines in found.items()
    )


def _day_with_completed_rows():
    """The most recent day before today on which the demo completed sessions."""
    today = timezone.localdate()
    for session in Session.objects.filter(status="completed").order_by("-scheduled_at"):
        day = timezone.localdate(session.scheduled_at)
        if day < today:
            return day
    pytest.fail("the demo has no completed session in the past")


def _patient_with_sessions():
    patient = Patient.objects.filter(plans__sessions__status="completed").order_by("pk").first()
    assert patient is not None
    return patient


def staff_pages():
    """(path, roles that open it) for every staff page, with the demo clinic's records in
    the addresses. FD: front desk, CL: clinician, MG: manager."""
    everyone, clinical, managers = {"FD", "CL", "MG"}, {"CL", "MG"}, {"MG"}
    patient = _patient_with_sessions()
    site = patient.scar_sites.filter(photos__isnull=False).order_by("pk").first()
    site = site or patient.scar_sites.order_by("pk").first()
    plan = patient.plans.exclude(status="draft").order_by("pk").first()
    scheduled = (
        Session.objects.filter(status="scheduled", plan__isnull=False)
        .order_by("scheduled_at")
        .first()
    )
    done = Session.objects.filter(status="completed", plan=plan).order_by("scheduled_at").first()
    completed_day = _day_with_completed_rows()
    pages = [
        ("/", everyone),
        (f"/?day={completed_day.isoformat()}&clinician=", everyone),
        ("/diary/", everyone),
        ("/diary/week/", everyone),
        ("/diary/book/", everyone),
        ("/diary/free/", everyone),
        ("/patients/", everyone),
        ("/patients/new/", everyone),
        (f"/patients/{patient.pk}/", everyone),
        (f"/patients/{patient.pk}/edit/", everyone),
        (f"/patients/{patient.pk}/consents/new/", everyone),
        (f"/plans/{plan.pk}/", everyone),
        (f"/sessions/{done.pk}/", everyone),
        (f"/sessions/{scheduled.pk}/move/", everyone),
        ("/account/", everyone),
        (f"/patients/{patient.pk}/sites/new/", clinical),
        (f"/patients/{patient.pk}/sites/{site.pk}/", clinical),
        (f"/patients/{patient.pk}/sites/{site.pk}/assess/", clinical),
        (f"/patients/{patient.pk}/sites/{site.pk}/photos/compare/", clinical),
        (f"/patients/{patient.pk}/flags/new/", clinical),
        (f"/patients/{patient.pk}/acne/", clinical),
        (f"/patients/{patient.pk}/plans/new/", clinical),
        (f"/sessions/{scheduled.pk}/log/", clinical),  # booked later: asks first
        (f"/sessions/{scheduled.pk}/log/?performed_today=1", clinical),
        (f"/sessions/{done.pk}/aftercare/", clinical),
        ("/adverse-events/", clinical),
        (f"/patients/{patient.pk}/report/", clinical),
        (f"/patients/{patient.pk}/plans/{plan.pk}/report/", clinical),
        ("/reports/outcomes/", managers),
        ("/patients/import/", managers),  # its later steps: tests/e2e/test_patient_import.py
        # The manager amends any session; a clinician only those they logged (below).
        (f"/sessions/{done.pk}/amend/", managers),
    ]
    clinician = get_user_model().objects.get(username="clinician")
    own = next(
        (
            s
            for s in Session.objects.filter(status="completed", plan__isnull=False)
            if services.can_amend(clinician, s)
        ),
        None,
    )
    if own is not None:
        pages.append((f"/sessions/{own.pk}/amend/", {"CL"}))
    return pages


ROLES = {"FD": "frontdesk", "CL": "clinician", "MG": "manager"}


@pytest.mark.parametrize("role", ROLES)
def test_every_staff_page_a_role_opens_has_no_violation(demo, login, live_server, role):
    page = login(ROLES[role], "cicatrix-demo")
    paths = [path for path, roles in staff_pages() if role in roles]
    assert len(paths) >= 15
    found = check_pages(page, live_server.url, paths)
    assert not found, report(found)


@pytest.mark.parametrize("role", ["CL", "MG"])
def test_the_session_log_with_errors_has_no_violation(demo, login, live_server, role):
    """The log page after a refused save: the error summary, invalid fields, started
    adverse event rows and an open "More scores"."""
    session = (
        Session.objects.filter(status="scheduled", plan__isnull=False)
        .order_by("scheduled_at")
        .first()
    )
    page = login(ROLES[role], "cicatrix-demo")
    page.set_viewport_size(SIZES["tablet"])
    page.goto(f"{live_server.url}/sessions/{session.pk}/log/?performed_today=1")
    page.wait_for_load_state("load")
    page.locator("[name$=-pain]").first.fill("99")
    page.locator("details.more-scores > summary").first.click()
    page.get_by_role("button", name="Add adverse event").click()
    page.locator("[name=ae-0-notes]").fill("Started but no kind")
    page.get_by_role("button", name="Save and complete session").click()
    page.wait_for_load_state("load")
    assert page.locator("#error-summary").count() == 1
    found = violations_at_each_size(page)
    assert not found, report(found)


def manager_admin_pages():
    """The admin as a manager sees it: the index, each app's page, and for every model the
    manager may view its list, its add form (if they may add) and one record's form."""
    from django.contrib import admin
    from django.test import RequestFactory
    from django.urls import reverse

    manager = get_user_model().objects.get(username="manager")
    request = RequestFactory().get("/admin/")
    request.user = manager
    paths, apps = [reverse("admin:index")], set()  # reversing loads the URLs: every admin
    for model, model_admin in list(admin.site._registry.items()):
        meta = model._meta
        if not model_admin.has_view_permission(request):
            continue
        apps.add(meta.app_label)
        name = f"admin:{meta.app_label}_{meta.model_name}"
        paths.append(reverse(f"{name}_changelist"))
        if model_admin.has_add_permission(request):
            paths.append(reverse(f"{name}_add"))
        first = model_admin.get_queryset(request).order_by("pk").first()
        if first is not None:
            paths.append(reverse(f"{name}_change", args=[first.pk]))
    paths += [reverse("admin:app_list", args=[label]) for label in sorted(apps)]
    return paths


@pytest.mark.parametrize("half", [0, 1])
def test_every_admin_page_a_manager_opens_has_no_violation(demo, login, live_server, half):
    """Every admin page a manager opens, in two halves (one per test worker)."""
    page = login("manager", "cicatrix-demo")
    paths = manager_admin_pages()
    assert len(paths) >= 100
    found = check_pages(page, live_server.url, paths[half::2])
    assert not found, report(found)
