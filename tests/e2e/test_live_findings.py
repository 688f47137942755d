"""The log page re-checks the safety rules as the peel's agent changes, before Save."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from plans.models import Session
from tests.conftest import PASSWORD
from tests.factories import MedicalFlagFactory, PatientFactory, ScarSiteFactory, course, make_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def peel_session(clinician):
    """Today's first peel (agent not planned) for a patient who is pregnant."""
    patient = PatientFactory(first_name="Marisol", last_name="Everdeen")
    MedicalFlagFactory(patient=patient, kind="pregnancy", ended_on=None)
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(
        user=clinician,
        sites=[site],
        courses=[course("chemical_peel", 3, every=21)],
        start=timezone.localdate(),
    )
    return plan.sessions.order_by("scheduled_at").first()


def test_choosing_salicylic_shows_the_pregnancy_block_without_saving(
    login, clinician, live_server, peel_session
):
    page = login("clin_user", PASSWORD)
    log_url = f"{live_server.url}/sessions/{peel_session.pk}/log/"
    page.goto(log_url)
    block = page.locator("#live-findings").get_by_text("Blocked: Salicylic acid in pregnancy")
    expect(block).to_have_count(0)

    page.get_by_label("Agent", exact=True).select_option("salicylic")
    expect(block).to_be_visible()
    expect(page.get_by_label("Override reason for “Salicylic acid in pregnancy”")).to_be_visible()
    assert page.url == log_url  # nothing was submitted
    page.get_by_label("Override reason for “Salicylic acid in pregnancy”").fill("Written")

    page.get_by_label("Concentration (%)").fill("20")
    page.get_by_label("Concentration (%)").blur()
    expect(block).to_be_visible()
    # A reason already written survives the refresh of the findings.
    expect(page.get_by_label("Override reason for “Salicylic acid in pregnancy”")).to_have_value(
        "Written"
    )

    page.get_by_label("Agent", exact=True).select_option("glycolic")
    expect(block).to_have_count(0)
    peel_session.refresh_from_db()
    assert peel_session.status != Session.Status.COMPLETED
    assert peel_session.treatments.get().parameters == {}
