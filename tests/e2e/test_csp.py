"""Under the strict Content-Security-Policy the main journeys run in Chromium without one
violation, and the behaviours that were inline handlers still work from static/js."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import Patient
from plans.models import Plan
from tests.conftest import PASSWORD, make_user
from tests.factories import PatientFactory, ScarSiteFactory, course, make_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Every violation, wherever it happens, reaches the test through an exposed function; the
# browser's own console line ("Refused to ... because it violates ...") is caught as well.
REPORTER = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.cspViolation(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " on " +
    event.documentURI + (event.sample ? " (" + event.sample + ")" : "")
  );
});
"""


@pytest.fixture
def violations(page):
    found = []

    def report(text):
        found.append(text)

    def console(message):
        if "Content Security Policy" in message.text:
            found.append(f"console: {message.text}")

    page.expose_function("cspViolation", report)
    page.add_init_script(REPORTER)
    page.on("console", console)
    return found


@pytest.fixture
def clinic(clinician, django_user_model):
    """Two clinicians with a patient each due today; one patient with a scar site to score."""
    other = make_user(django_user_model, "other_clin", "Clinician", last_name="Oakhurst")
    today = timezone.localdate()
    plans = {}
    for person, first, last in ((clinician, "Isolde", "Farthing"), (other, "Mabyn", "Quarrier")):
        patient = PatientFactory(first_name=first, last_name=last)
        site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
        plans[first] = make_plan(
            user=person,
            sites=[site],
            courses=[course("microneedling", 2, every=42)],
            start=today,
            title=f"Needling for {first}",
        )
    return plans["Isolde"], plans["Mabyn"], other


def test_clinician_journeys_raise_no_csp_violation_and_the_js_behaviours_work(
    login, live_server, clinic, violations
):
    plan, other_plan, other = clinic
    patient = plan.patient
    page = login("clin_user", PASSWORD)
    expect(page.get_by_role("heading", name="Today", exact=False).first).to_be_visible()

    # Today: choosing a clinician filters at once (data-autosubmit, no button needed).
    due = page.locator("#due-today")
    expect(due).to_contain_text("Isolde")  # a clinician starts on their own list
    expect(due).not_to_contain_text("Mabyn")
    with page.expect_navigation():
        page.get_by_label("Clinician").select_option(str(other.pk))
    assert f"clinician={other.pk}" in page.url
    expect(due).to_contain_text("Mabyn")
    expect(due).not_to_contain_text("Isolde")
    with page.expect_navigation():
        page.get_by_label("Clinician").select_option(label="Everyone")
    expect(due).to_contain_text("Mabyn")
    expect(due).to_contain_text("Isolde")

    # Patient overview, scores with the instrument pick (data-autosubmit), plan builder preview.
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", name=patient.full_name).first).to_be_visible()
    page.goto(f"{live_server.url}/patients/{patient.pk}/sites/{plan.target_sites.get().pk}/assess/")
    with page.expect_navigation():
        page.get_by_label("Instrument").select_option("gb_qualitative")
    expect(page.get_by_label("Grade")).to_be_visible()
    page.goto(f"{live_server.url}/patients/{patient.pk}/plans/new/")
    page.get_by_label("Title").fill("Second course")
    page.get_by_label("Left cheek").check()
    page.get_by_label("Start date").fill(timezone.localdate().isoformat())
    page.locator("[name=courses-0-treatment]").select_option(label="Cryotherapy")
    page.locator("[name=courses-0-sessions_count]").fill("2")
    page.locator("[name=courses-0-interval_days]").fill("28")
    page.locator("[name=courses-0-offset_days]").fill("0")
    page.get_by_role("button", name="Preview calendar").click()
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(2)

    # Session log: the live-findings script fetches the findings as parameters change.
    session = plan.sessions.order_by("scheduled_at").first()
    page.goto(f"{live_server.url}/sessions/{session.pk}/log/")
    expect(page.get_by_role("heading", name=f"Log session: {patient.full_name}")).to_be_visible()
    with page.expect_response(lambda r: "/findings/" in r.url):
        page.get_by_label("Needle depth").fill("1.5")
        page.get_by_label("Needle depth").blur()

    # Report: the print button appears with the script and opens the print dialog.
    page.goto(f"{live_server.url}/patients/{patient.pk}/report/")
    heading = page.get_by_role("heading", name=f"Progress report: {patient.full_name}")
    expect(heading).to_be_visible()
    page.evaluate("window.print = function () { window.printed = true; }")
    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed") is True

    # Cancel plan asks first: dismissing keeps the plan, accepting cancels it.
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    questions = []

    def answer(accept):
        def handle(dialog):
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Cancel plan").click()
    expect(page.get_by_role("button", name="Cancel plan")).to_be_visible()
    assert questions == ["Cancel this plan? Done sessions are kept; future ones are cancelled."]
    plan.refresh_from_db()
    assert plan.status == Plan.Status.ACTIVE
    page.once("dialog", answer(True))
    with page.expect_navigation():
        page.get_by_role("button", name="Cancel plan").click()
    assert len(questions) == 2
    plan.refresh_from_db()
    assert plan.status == Plan.Status.CANCELLED

    assert violations == []


def test_manager_admin_and_archive_raise_no_csp_violation(
    login, live_server, manager, clinic, violations
):
    plan = clinic[0]
    page = login("mgr_user", PASSWORD)
    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Clinic back office")).to_be_visible()
    page.goto(f"{live_server.url}/admin/plans/plan/{plan.pk}/change/")
    expect(page.locator("#sessions-group")).to_be_visible()
    page.goto(f"{live_server.url}/admin/patients/patient/{plan.patient.pk}/change/")
    expect(page.get_by_label("First name")).to_have_value("Isolde")
    page.goto(f"{live_server.url}/admin/plans/treatment/")
    expect(page.locator("#result_list")).to_be_visible()

    # Archiving a patient asks first; dismissing keeps the record as it was.
    page.goto(f"{live_server.url}/patients/{plan.patient.pk}/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("button", name="Archive")).to_be_visible()
    assert asked == ["Archive this patient? The record is kept."]
    assert Patient.objects.get(pk=plan.patient.pk).archived_at is None

    assert violations == []


def test_a_style_attribute_would_be_reported(login, live_server, clinician, violations):
    """The listener sees what the policy refuses, so the tests above can fail."""
    page = login("clin_user", PASSWORD)
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)
    assert any("style-src" in found for found in violations), violations
