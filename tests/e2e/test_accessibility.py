"""axe-core on the staff pages and the admin pages a manager uses, at desk and tablet widths.

The axe script comes from the axe-playwright-python wheel (axe-core 4.12) and is evaluated in
the page by Playwright, so nothing is fetched from the network and the page's
Content-Security-Policy (which refuses inline scripts) does not get in the way.
"""

import io

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from django.utils import timezone

from patients.models import Patient
from plans.models import Session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# WCAG 2.0, 2.1 and 2.2, levels A and AA (target-size is a 2.2 AA rule).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
SIZES = {"desk": {"width": 1280, "height": 900}, "tablet": {"width": 768, "height": 1024}}

_axe = Axe()


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=8, stdout=io.StringIO())
    settings.DEBUG = False


def violations_on(page):
    """axe's WCAG A/AA violations on the page as it is now, one readable line per node."""
    page.wait_for_load_state("load")
    results = _axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    lines = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            lines.append(
                f"{violation['id']} ({violation['impact']}): {node['target']} "
                f"{node.get('failureSummary', '').splitlines()[-1:]}"
            )
    return lines


def check_pages(page, base_url, paths):
    """Visit each path and return {path: [violation lines]} for those with any."""
    found = {}
    for path in paths:
        response = page.goto(base_url + path)
        assert response.ok, f"{path} answered {response.status}"
        lines = violations_on(page)
        if lines:
            found[path] = lines
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


@pytest.mark.parametrize("size", SIZES)
def test_front_desk_pages_have_no_wcag_violation(demo, login, live_server, size):
    page = login("frontdesk", "cicatrix-demo")
    page.set_viewport_size(SIZES[size])
    found = check_pages(page, live_server.url, ["/", "/diary/", "/patients/"])
    assert not found, report(found)


@pytest.mark.parametrize("size", SIZES)
def test_clinician_pages_have_no_wcag_violation(demo, login, live_server, size):
    completed_day = _day_with_completed_rows()
    patient = _patient_with_sessions()
    page = login("clinician", "cicatrix-demo")
    page.set_viewport_size(SIZES[size])
    found = check_pages(
        page,
        live_server.url,
        [
            "/",
            f"/?day={completed_day.isoformat()}&clinician=",
            "/diary/",
            "/patients/",
            f"/patients/{patient.pk}/",
            f"/patients/{patient.pk}/report/",
        ],
    )
    assert not found, report(found)


@pytest.mark.parametrize("size", SIZES)
def test_manager_pages_and_admin_have_no_wcag_violation(demo, login, live_server, size):
    page = login("manager", "cicatrix-demo")
    page.set_viewport_size(SIZES[size])
    found = check_pages(
        page,
        live_server.url,
        [
            "/",
            "/reports/outcomes/",
            "/admin/plans/safetyrulesetting/",
            "/admin/patients/patient/",
        ],
    )
    assert not found, report(found)
