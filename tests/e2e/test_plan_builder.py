"""The plan builder on one page in Chromium: Use, Add another treatment, a protocol, the live
preview without a reload and Save and activate (issue 14)."""

import pytest
from playwright.sync_api import expect

from plans.models import Plan, PlanTemplate, PlanTemplateCourse, Treatment
from tests.conftest import PASSWORD
from tests.factories import PatientFactory, ScarSiteFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def back(db):
    patient = PatientFactory(first_name="Isolde", last_name="Marchetti")
    return ScarSiteFactory(patient=patient, body_site="upper_back", scar_types=["hypertrophic"])


@pytest.fixture
def protocol(db):
    template = PlanTemplate.objects.create(name="Combined microneedling + peel")
    for order, (code, every, offset, label) in enumerate(
        (("microneedling", 42, 0, ""), ("chemical_peel", 42, 21, "70% glycolic peel"))
    ):
        PlanTemplateCourse.objects.create(
            template=template,
            treatment=Treatment.objects.get(code=code),
            sessions_count=3,
            interval_days=every,
            offset_days=offset,
            label=label,
            default_parameters={"agent": "glycolic"} if label else {},
            order=order,
        )
    return template


def test_a_clinician_builds_and_activates_a_cryotherapy_plan_on_one_page(
    login, clinician, live_server, back
):
    page = login("clin_user", PASSWORD)
    page.goto(f"{live_server.url}/patients/{back.patient_id}/plans/new/")
    expect(page.get_by_label("Upper back")).to_be_checked()
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_role("button", name="Use Cryotherapy").click()
    treatment = page.locator("[name=courses-0-treatment]")
    expect(treatment).to_be_focused()
    expect(page.locator("[name=courses-0-sessions_count]")).to_have_value("4")
    expect(page.locator("[name=courses-0-interval_days]")).to_have_value("28")
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(4)
    expect(page.get_by_label("Title")).to_have_value("Cryotherapy x 4, every 4 weeks")
    expect(
        page.get_by_text("Nothing to confirm: Save and activate books 4 visits.")
    ).to_be_visible()

    # A second row, then a treatment chosen in it: its usual course fills sessions/interval.
    page.get_by_role("button", name="Add another treatment").click()
    second = page.locator("[name=courses-1-treatment]")
    expect(second).to_be_focused()
    second.select_option(label="Pulsed-dye laser")
    expect(page.locator("[name=courses-1-sessions_count]")).to_have_value("4")
    expect(page.locator("[name=courses-1-interval_days]")).to_have_value("42")
    # Days 0/28/56/84 and 0/42/84/126: two days shared.
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(6)
    expect(page.get_by_label("Title")).to_have_value("Cryotherapy + pulsed-dye laser")
    # Removing it again: the calendar follows.
    page.get_by_label("Remove course 2").check()
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(4)
    assert page.evaluate("window.stillTheSamePage") is True  # no reload

    page.get_by_role("button", name="Save and activate").click()
    expect(
        page.get_by_text("Plan saved and activated: 4 sessions are on the calendar.")
    ).to_be_visible()
    plan = Plan.objects.get()
    assert (plan.status, plan.title, plan.courses.count()) == (
        Plan.Status.ACTIVE,
        "Cryotherapy x 4, every 4 weeks",
        1,
    )


def test_a_protocol_fills_the_course_rows_in_place(login, clinician, live_server, back, protocol):
    page = login("clin_user", PASSWORD)
    page.goto(f"{live_server.url}/patients/{back.patient_id}/plans/new/")
    expect(page.get_by_text("weeks 0/6/12 and 3/9/15")).to_be_visible()
    page.get_by_label("Goal").fill("Smoother texture")
    page.get_by_role("button", name="Apply Combined microneedling + peel").click()
    expect(page.locator("[name=courses-1-label]")).to_have_value("70% glycolic peel")
    expect(page.locator("[name=courses-1-offset_days]")).to_have_value("21")
    expect(page.locator("[name=courses-1-param_agent]")).to_have_value("glycolic")
    expect(page.get_by_label("Goal")).to_have_value("Smoother texture")
    expect(page.get_by_label("Title")).to_have_value("Combined microneedling + peel")
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(6)
