"""The main staff journeys, driven in Chromium against the live server."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from patients.models import AcneActivity, Consent, Patient, ScarSite, ScarType
from plans import services
from plans.models import Plan, SafetyOverride, Session, Treatment
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def _shot(page, name):
    """Screenshots for the issue note: Today and session logging at 1280 and 768 px."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 768):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _png(tmp_path):
    path = tmp_path / "back-scar.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (190, 110, 110)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_clinician_registers_plans_and_logs_a_first_session(
    login, clinician, live_server, tmp_path
):
    today = timezone.localdate()
    page = login("clin_user", PASSWORD)

    # Register a patient.
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Record number").fill("cx-9001")
    page.get_by_label("First name").fill("Robin")
    page.get_by_label("Last name").fill("Aldous")
    page.get_by_label("Date of birth").fill("1994-03-17")
    page.get_by_label("Sex").select_option("F")
    page.get_by_label("Fitzpatrick skin type").select_option("2")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Registered Robin Aldous (CX-9001).")).to_be_visible()

    # Treatment consent first: without it in-office treatment is blocked (issue 10).
    page.get_by_role("link", name="Record the treatment consent").click()
    page.get_by_label("Kind").select_option("treatment")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Consent recorded.")).to_be_visible()
    # Photos of the session need clinical photography consent.
    page.get_by_role("link", name="Record consent").click()
    page.get_by_label("Kind").select_option("clinical_photography")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Clinical photography consent: in force")).to_be_visible()

    # A back site (hypertrophic) and a face site (rolling atrophic).
    for body_site, scar_type in (
        ("Upper back", "Hypertrophic"),
        ("Left cheek", "Atrophic: rolling"),
    ):
        page.get_by_role("link", name="Add scar site").click()
        page.get_by_label("Body site").select_option(label=body_site)
        page.get_by_label(scar_type).check()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text(f"Scar site added: {body_site}.")).to_be_visible()

    # Baseline scores: Vancouver for the back, Goodman & Baron grade for the cheek.
    back = page.locator("li", has_text="Upper back").filter(
        has=page.get_by_role("link", name="Record scores")
    )
    back.get_by_role("link", name="Record scores").click()
    for label, value in (
        ("Vascularity", "2"),
        ("Pigmentation", "1"),
        ("Pliability", "3"),
        ("Height", "2"),
    ):
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Save scores").click()
    expect(page.get_by_text("Vancouver Scar Scale for Upper back: total 8")).to_be_visible()
    cheek = page.locator("li", has_text="Left cheek").filter(
        has=page.get_by_role("link", name="Record scores")
    )
    cheek.get_by_role("link", name="Record scores").click()
    page.get_by_label("Instrument").select_option("gb_qualitative")
    page.get_by_label("Grade").fill("3")
    page.get_by_role("button", name="Save scores").click()
    expect(page.get_by_text("total 3")).to_be_visible()

    # Combined peel + microneedling plan (Rana 2017 spacing), previewed then saved.
    page.get_by_role("link", name="New treatment plan").click()
    page.get_by_label("Title").fill("Peel + microneedling")
    page.get_by_label("Upper back").check()
    page.get_by_label("Left cheek").check()
    page.get_by_label("Start date").fill(today.isoformat())
    rows = (
        ("Microneedling", "", "3", "42", "0"),
        ("Chemical peel", "70% glycolic", "3", "42", "21"),
    )
    for index, (name, label, sessions, interval, offset) in enumerate(rows):
        if index:  # the builder starts with one course row
            page.get_by_role("button", name="Add another treatment").click()
        page.locator(f"[name=courses-{index}-treatment]").select_option(label=name)
        page.locator(f"[name=courses-{index}-label]").fill(label)
        page.locator(f"[name=courses-{index}-sessions_count]").fill(sessions)
        page.locator(f"[name=courses-{index}-interval_days]").fill(interval)
        page.locator(f"[name=courses-{index}-offset_days]").fill(offset)
    page.get_by_role("button", name="Preview calendar").click()
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(6)
    page.get_by_role("button", name="Save draft plan").click()
    page.get_by_role("button", name="Activate plan and book 6 sessions").click()
    expect(page.get_by_text("Plan activated: 6 sessions are on the calendar.")).to_be_visible()

    # The first session is on Today; log it from there.
    page.get_by_role("link", name="Today").first.click()
    row = page.locator("#due-today tr", has_text="Robin Aldous")
    expect(row).to_contain_text("Microneedling")
    expect(row).to_contain_text("session 1 of 3")
    _shot(page, "today")
    row.get_by_role("link", name="Log session").click()
    expect(page.get_by_role("heading", name="Log session: Robin Aldous")).to_be_visible()
    page.get_by_label("Device").fill("Dermapen 4")
    page.get_by_label("Needle depth").fill("1.5")
    page.get_by_label("Passes").first.fill("3")
    back_outcome = page.locator("fieldset.site-block", has_text="Outcome: Upper back")
    # Vancouver items are rows of choices with their words: tap the one that applies.
    vss = back_outcome.locator("fieldset.instrument", has_text="Vancouver Scar Scale")
    expect(vss.locator("output")).to_have_text("not scored")
    for item, choice in (
        ("Vascularity", "1 pink"),
        ("Pigmentation", "1 hypopigmented"),
        ("Pliability", "2 yielding"),
        ("Height", "1 under 2 mm"),
    ):
        group = vss.get_by_role("group", name=item)
        group.locator("label", has_text=choice).click()
        expect(group.get_by_role("radio", name=choice)).to_be_checked()
    expect(vss.locator("output")).to_have_text("5")  # the live total, before saving
    back_outcome.get_by_label("Improvement (clinician)").select_option("2")
    back_outcome.get_by_label("Pain (0-10)").fill("3")
    back_outcome.get_by_label("Photo", exact=True).set_input_files(str(_png(tmp_path)))
    events = page.locator("#adverse-events")
    expect(events.locator("[name=ae-0-kind]")).to_be_hidden()  # behind the button
    events.get_by_role("button", name="Add adverse event").click()
    expect(events.locator("[name=ae-0-kind]")).to_be_focused()
    events.locator("[name=ae-0-kind]").select_option("erythema")
    events.locator("[name=ae-0-severity]").select_option("mild")
    _shot(page, "session-log")
    page.get_by_role("button", name="Save and complete session").click()

    expect(page.get_by_text("Session logged for Robin Aldous.")).to_be_visible()
    plan_row = page.locator("#plans-heading").locator("xpath=../..")
    expect(plan_row).to_contain_text("1 of 6 done")
    back_site = page.locator("li", has_text="Upper back").filter(has=page.locator(".score"))
    expect(back_site).to_contain_text("Vancouver Scar Scale 5")
    expect(page.locator("#ae-heading").locator("xpath=../..")).to_contain_text("Erythema")
    patient = Patient.objects.get(record_number="CX-9001")
    assert patient.sessions.filter(status=Session.Status.COMPLETED).count() == 1
    assert patient.sessions.get(status="completed").photos.count() == 1


@pytest.fixture
def breakout_patient(clinician):
    """A patient with a rolling cheek scar and a draft microneedling plan starting today."""
    patient = Patient.objects.create(
        record_number="CX-7002",
        first_name="Sasha",
        last_name="Breakwell",
        date_of_birth="1999-08-01",
        fitzpatrick_type=2,
    )
    Consent.objects.create(patient=patient, kind="treatment", signed_on=timezone.localdate())
    site = ScarSite.objects.create(patient=patient, body_site="left_cheek")
    site.scar_types.set(ScarType.objects.filter(code="rolling"))
    plan = services.plan_create(
        patient=patient,
        title="Microneedling course",
        clinician=clinician,
        start_date=timezone.localdate(),
        target_sites=[site],
        courses=[services.CourseInput(Treatment.objects.get(code="microneedling"), 3, 42)],
        user=clinician,
    )
    return patient, plan


def test_a_breakout_blocks_microneedling_until_a_clinician_overrides(
    login, breakout_patient, live_server
):
    patient, plan = breakout_patient
    page = login("clin_user", PASSWORD)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("button", name="Record active breakout today").click()
    expect(page.locator("#acne-now")).to_contain_text("active")

    page.get_by_role("link", name="Microneedling course").click()
    expect(page.get_by_text("Blocked: Active breakout").first).to_be_visible()
    page.get_by_role("button", name="Activate plan and book 3 sessions").click()
    expect(page.get_by_text("Blocked by a safety rule. Nothing was saved.")).to_be_visible()
    assert Plan.objects.get(pk=plan.pk).status == Plan.Status.DRAFT

    page.get_by_label("Override reason").first.fill("Single papule far from the cheek; agreed.")
    page.get_by_role("button", name="Activate plan and book 3 sessions").click()
    expect(page.get_by_text("Plan activated: 3 sessions are on the calendar.")).to_be_visible()
    overrides = SafetyOverride.objects.filter(session__plan=plan)
    assert overrides.count() == 3  # one reason covered the three blocked dates
    assert {o.rule for o in overrides} == {"active_breakout"}
    assert {o.overridden_by.username for o in overrides} == {"clin_user"}

    page.get_by_role("link", name="Plan report").click()
    expect(page.get_by_text("Single papule far from the cheek; agreed.").first).to_be_visible()


def test_front_desk_cannot_override_a_block_nor_see_clinical_notes(
    login, breakout_patient, clinician, front_desk, live_server
):
    patient, plan = breakout_patient
    services.plan_activate(plan=plan, user=clinician)
    first = plan.sessions.order_by("scheduled_at").first()
    later = first.scheduled_at + timedelta(days=2)
    services.session_reschedule(session=first, new_start=later, user=clinician)
    first.refresh_from_db()
    Session.objects.filter(pk=first.pk).update(notes="Clinical-note-not-for-front-desk")
    AcneActivity.objects.create(patient=patient, level="severe", recorded_on=timezone.localdate())

    page = login("fd_user", PASSWORD)
    page.goto(f"{live_server.url}/sessions/{first.pk}/move/")
    page.get_by_label("New date").fill(timezone.localdate().isoformat())
    page.get_by_role("button", name="Move session").click()
    expect(page.get_by_text("Only a clinician can override a block").first).to_be_visible()
    expect(page.get_by_label("Override reason")).to_have_count(0)
    first.refresh_from_db()
    assert first.scheduled_at == later

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", name="Sasha Breakwell")).to_be_visible()
    expect(page.get_by_text("Medical flags")).to_have_count(0)
    expect(page.get_by_text("Acne activity")).to_have_count(0)
    page.goto(f"{live_server.url}/sessions/{first.pk}/")
    expect(page.get_by_text("Clinical-note-not-for-front-desk")).to_have_count(0)
    assert page.goto(f"{live_server.url}/sessions/{first.pk}/log/").status == 403
