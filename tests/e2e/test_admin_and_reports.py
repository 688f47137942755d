"""The manager's admin and the progress report, in Chromium with the demo clinic loaded."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect
from pypdf import PdfReader

from patients.models import Patient
from plans.models import Assessment, Plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=8, stdout=io.StringIO())
    settings.DEBUG = False


def test_manager_opens_a_plan_in_the_admin_and_sees_its_sessions(demo, login, live_server):
    plan = Plan.objects.filter(status=Plan.Status.ACTIVE).order_by("pk").first()
    page = login("manager", "cicatrix-demo")
    page.goto(f"{live_server.url}/admin/plans/plan/")
    expect(page.get_by_role("heading", name="Select plan to change")).to_be_visible()
    page.get_by_role("link", name=plan.title).first.click()
    sessions = page.locator("#sessions-group")
    expect(sessions).to_be_visible()
    expect(sessions.locator("tbody tr.has_original")).to_have_count(plan.sessions.count())


def test_clinician_reads_a_demo_report_with_one_point_per_score_and_gets_the_pdf(
    demo, login, live_server
):
    assessment = (
        Assessment.objects.filter(session__isnull=False, instrument="vss")
        .order_by("pk")
        .select_related("patient", "scar_site")
        .first()
    )
    patient, site = assessment.patient, assessment.scar_site
    expected = Assessment.objects.filter(scar_site=site, instrument="vss").count()
    assert expected >= 2

    page = login("clinician", "cicatrix-demo")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Progress report").click()
    expect(
        page.get_by_role("heading", name=f"Progress report: {patient.full_name}")
    ).to_be_visible()
    section = page.locator(f"#r-site-{site.pk}").locator("xpath=..")
    chart = section.locator('.series[data-instrument="vss"] svg.trend-chart')
    expect(chart).to_be_visible()
    expect(chart.locator("circle.point")).to_have_count(expected)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Staff report (PDF)").click()
    path = download_info.value.path()
    text = " ".join(p.extract_text() for p in PdfReader(path).pages)
    assert patient.full_name in text
    assert Patient.objects.get(pk=patient.pk).record_number in text
