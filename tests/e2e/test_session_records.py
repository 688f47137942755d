"""Issue 10 in Chromium: a clinician logs a session booked for next month (a confirmation
names its booked date; the real date is stored) and amends a logged score with a reason,
seeing both values in the session's history."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from plans import services
from plans.models import Amendment, Assessment, Session
from tests.conftest import PASSWORD
from tests.factories import PatientFactory, ScarSiteFactory, course, make_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CRYO = {"method": "spray", "cycles": 2, "seconds": 15}
VSS = {"vascularity": 2, "pigmentation": 1, "pliability": 3, "height": 2}


@pytest.fixture
def cryo_course(clinician):
    """Cryotherapy x3 every 35 days from today; session 1 logged today with a VSS of 8."""
    today = timezone.localdate()
    patient = PatientFactory(first_name="Marlow", last_name="Tennant")
    site = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["hypertrophic"])
    plan = make_plan(
        user=clinician,
        patient=patient,
        sites=[site],
        start=today,
        courses=[course("cryotherapy", 3, every=35)],
    )
    first, second, _ = plan.sessions.order_by("scheduled_at")
    services.session_complete(
        session=first,
        user=clinician,
        parameters={row.pk: CRYO for row in first.treatments.all()},
        assessments=[services.AssessmentInput(site, "vss", VSS)],
    )
    return plan, first, second


def test_a_clinician_logs_next_months_session_after_confirming_it_is_done_today(login, cryo_course):
    plan, _, second = cryo_course
    booked = second.scheduled_at
    page = login("clin_user", PASSWORD)
    page.goto(page.url.rsplit("/", 1)[0] + f"/plans/{plan.pk}/")

    page.get_by_role("link", name="Log early").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"This session is booked for {timezone.localtime(booked):%A %-d %B %Y}"
    )
    page.get_by_role("button", name="Yes, it is done today: log it").click()

    expect(page.locator("#early-log")).to_contain_text("as the real date of treatment")
    # Parameters are carried forward from session 1; save as they are.
    page.get_by_role("button", name="Save and complete session").click()
    expect(page.get_by_text("it had been booked for")).to_be_visible()

    second.refresh_from_db()
    assert second.status == Session.Status.COMPLETED
    assert second.booked_for == booked
    assert timezone.localtime(second.scheduled_at).date() == timezone.localdate()
    assert booked.date() - timezone.localdate() > timedelta(days=20)


def test_a_clinician_amends_a_logged_score_and_sees_both_values(login, cryo_course):
    _, first, _ = cryo_course
    page = login("clin_user", PASSWORD)
    page.goto(page.url.rsplit("/", 1)[0] + f"/sessions/{first.pk}/")

    page.get_by_role("link", name="Amend this session").click()
    # As on the log page, an item of a few values is a row of choices with the logged one checked.
    vascularity = page.get_by_role("group", name="Vascularity (0-3)")
    expect(vascularity.get_by_role("radio", name="2 red")).to_be_checked()
    vascularity.locator("label", has_text="3 purple").click()
    page.get_by_label("Why is this session amended?").fill("Vascularity misread: it is 3.")
    page.get_by_role("button", name="Save the amendment").click()

    amendments = page.locator("#amendments")
    expect(amendments).to_contain_text("Vascularity misread: it is 3.")
    row = amendments.get_by_role("row", name="Chest: Vancouver Scar Scale")
    expect(row.locator(".before")).to_have_text("8")
    expect(row.locator(".after")).to_have_text("9")
    assert Assessment.objects.get(session=first).total == 9
    assert Amendment.objects.get().amended_by.username == "clin_user"
