"""The front desk's day in the appointment book, in Chromium at desk and tablet widths."""

from datetime import time
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clinic.models import Location, OpeningHours, Room, WorkingPattern
from plans.models import Session
from tests.conftest import PASSWORD
from tests.factories import PatientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


@pytest.fixture
def clinic_day(clinician):
    """A site open every day 08:00-20:00 (so the test runs on any day), one clinician."""
    location = Location.objects.create(name="Harbour Street")
    for weekday in range(7):
        OpeningHours.objects.create(
            location=location, weekday=weekday, starts=time(8), ends=time(20)
        )
        WorkingPattern.objects.create(
            clinician=clinician, location=location, weekday=weekday, starts=time(8), ends=time(20)
        )
    Room.objects.create(location=location, name="Room 1")
    return location


@pytest.mark.parametrize("width", [1280, 768])
def test_front_desk_books_a_free_slot_and_cannot_double_book_the_clinician(
    login, front_desk, clinician, clinic_day, width
):
    first = PatientFactory(first_name="Elowen", last_name="Stroud", record_number="CX-000501")
    second = PatientFactory(first_name="Fenwick", last_name="Umber", record_number="CX-000502")
    page = login("fd_user", PASSWORD)
    page.set_viewport_size({"width": width, "height": 900})

    page.get_by_role("link", name="Diary").first.click()
    expect(page.get_by_role("grid")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"diary-day-{width}.png"), full_page=True)

    # A free 10:00 cell opens booking with the clinician, place and time filled in.
    page.get_by_role("gridcell", name=f"Book 10:00 with {clinician}").click()
    expect(page.get_by_label("Time")).to_have_value("10:00")
    page.get_by_label("Patient record number").fill(first.record_number)
    page.get_by_label("Appointment").select_option("consultation")
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_text("Booked: Consultation for Elowen Stroud")).to_be_visible()
    expect(page.get_by_role("gridcell", name="Elowen Stroud")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / f"diary-booked-{width}.png"), full_page=True)

    # The same clinician at 10:15 for someone else: refused, with the next free slots.
    day = timezone.localdate().isoformat()
    page.get_by_role("link", name="Book a visit").click()
    page.get_by_label("Patient record number").fill(second.record_number)
    page.get_by_label("Appointment").select_option("consultation")
    page.get_by_label("Date").fill(day)
    page.get_by_label("Time").fill("10:15")
    page.get_by_label("Clinician").select_option(str(clinician.pk))
    page.get_by_label("Location").select_option(str(clinic_day.pk))
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_text("Not booked:")).to_be_visible()
    expect(page.get_by_text("CX-000501")).to_be_visible()
    alternatives = page.get_by_role("region", name="Next free slots that fit").get_by_role("link")
    expect(alternatives).to_have_count(3)
    expect(alternatives.first).to_contain_text("10:30")
    page.screenshot(path=str(SCREENSHOTS / f"diary-refused-{width}.png"), full_page=True)

    # Taking the first alternative books it.
    alternatives.first.click()
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_text("Booked: Consultation for Fenwick Umber")).to_be_visible()
    times = sorted(
        timezone.localtime(s.scheduled_at).time()
        for s in Session.objects.filter(location=clinic_day)
    )
    assert times == [time(10), time(10, 30)]
