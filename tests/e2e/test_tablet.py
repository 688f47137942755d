"""The staff pages on a tablet beside the chair (768 x 1024 in Chromium), with the demo clinic."""

import io
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import MedicalFlag, Patient
from tests.factories import (
    AcneActivityFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    course,
    make_plan,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=8, stdout=io.StringIO())
    settings.DEBUG = False


@pytest.fixture
def flagged_visit_today(demo):
    """A visit today for the demo clinician that a safety rule blocks (an active breakout)."""
    today = timezone.localdate()
    patient = PatientFactory(first_name="Greer", last_name="Ramsdell")
    MedicalFlagFactory(
        patient=patient, kind=MedicalFlag.Kind.values[0], started_on=date(2025, 6, 1)
    )
    AcneActivityFactory(patient=patient, recorded_on=today, level="severe")
    make_plan(
        user=get_user_model().objects.get(username="clinician"),
        sites=[ScarSiteFactory(patient=patient, scar_types=["rolling"])],
        courses=[course("microneedling", 2, every=42)],
        start=today,
        overrides={"rule:active_breakout": "Reviewed in clinic"},
    )
    return patient


def assert_no_sideways_scroll(page):
    width = page.evaluate("document.scrollingElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url} scrolls sideways: {width} px on a {inner} px screen"


def assert_inside_viewport(locator, what):
    """Every element the locator finds is visible and wholly on screen horizontally."""
    count = locator.count()
    assert count > 0, f"no {what} found"
    for index in range(count):
        element = locator.nth(index)
        expect(element).to_be_visible()
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= TABLET["width"], (
            f"{what} {element.inner_text()!r} is at x={box['x']:.0f}..{box['x'] + box['width']:.0f}"
        )
        # Not clipped by a scroll box or an overflow: the centre is the element itself.
        hit = element.evaluate(
            # "instant": Bootstrap's smooth scrolling would measure mid-scroll.
            "el => { el.scrollIntoView({block: 'center', behavior: 'instant'});"
            " const s = el.getBoundingClientRect();"
            " const top = document.elementFromPoint(s.x + s.width / 2, s.y + s.height / 2);"
            " return top === el || el.contains(top) || top.outerHTML.slice(0, 120); }"
        )
        assert hit is True, f"{hit}: {what} {element.inner_text()!r} is covered or clipped"


def chart_text_px(page, selector):
    """The on-screen size of the first label of a chart (its font size times the SVG's scale)."""
    return page.locator(selector).first.evaluate(
        "svg => { const text = svg.querySelector('text');"
        " const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;"
        " return parseFloat(text.getAttribute('font-size')) * scale; }"
    )


def test_clinician_on_a_tablet_sees_every_action_and_opens_safety_details(
    flagged_visit_today, login, live_server
):
    page = login("clinician", "cicatrix-demo")
    page.set_viewport_size(TABLET)
    page.goto(live_server.url + "/")
    assert_no_sideways_scroll(page)
    assert_inside_viewport(page.locator("#due-today .row-actions .btn"), "Today's action")
    expect(page.get_by_role("link", name="Log session for ").first).to_be_visible()
    # Repeated actions name their visit ("Move for Maya Castellanos, 10:00"), so a screen
    # reader's list of links and buttons tells them apart.
    names = page.locator("#due-today .row-actions .btn").evaluate_all(
        "els => els.map(e => (e.getAttribute('aria-labelledby') || '').split(' ')"
        ".map(id => document.getElementById(id).textContent.trim()).join(' '))"
    )
    assert all(" for " in name for name in names), names
    assert len(set(names)) == len(names), names

    # Safety details open on a tap, not in a tooltip that a touch screen cannot show.
    row = page.locator("#due-today tr", has_text=flagged_visit_today.full_name)
    finding = row.locator("details.finding").first
    detail = finding.locator(".finding-detail")
    expect(detail).to_be_hidden()
    finding.locator("summary").click()
    expect(detail).to_be_visible()
    assert finding.evaluate("d => d.open")
    expect(finding.locator("summary")).to_contain_text(":")
    assert finding.locator("summary").inner_text().split(":")[0] in {"Block", "Warning", "Note"}

    page.goto(live_server.url + "/diary/")
    assert_no_sideways_scroll(page)
    assert_inside_viewport(page.locator(".diary .appt-actions .btn"), "the diary's action")

    patient = Patient.objects.filter(plans__sessions__status="completed").order_by("pk").first()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    assert_no_sideways_scroll(page)
    page.goto(f"{live_server.url}/patients/{patient.pk}/report/")
    assert_no_sideways_scroll(page)
    size = chart_text_px(page, "svg.trend-chart")
    assert 12 <= size <= 14, f"trend chart text is {size:.1f} px on screen"


def test_manager_on_a_tablet_has_separate_links_and_wrapping_filters(demo, login, live_server):
    page = login("manager", "cicatrix-demo")
    page.set_viewport_size(TABLET)
    page.goto(live_server.url + "/reports/outcomes/")
    assert_no_sideways_scroll(page)

    links = page.locator("nav[aria-label=Main] .nav-link, nav[aria-label=Main] .account-link")
    boxes = [links.nth(i).bounding_box() for i in range(links.count())]
    assert len(boxes) >= 6
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["width"] <= TABLET["width"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"] + 1
                or b["x"] + b["width"] <= a["x"] + 1
                or a["y"] + a["height"] <= b["y"] + 1
                or b["y"] + b["height"] <= a["y"] + 1
            )
            assert apart, f"navigation links overlap: {a} and {b}"

    assert_inside_viewport(
        page.locator(".outcomes-filters .form-control, .outcomes-filters .form-select"),
        "outcomes filter",
    )
    assert_inside_viewport(page.get_by_role("button", name="Show"), "the Show button")
    if page.locator("svg.bar-chart").count():
        size = chart_text_px(page, "svg.bar-chart")
        assert 11.5 <= size <= 13, f"outcomes chart text is {size:.1f} px on screen"
