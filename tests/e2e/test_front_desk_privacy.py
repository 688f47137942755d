"""Front desk's Today in Chromium: a patient with every flag shows a neutral badge and no flag
word, on Today and on the page to move the visit (issue 10, point 4)."""

from datetime import date

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import MedicalFlag
from tests.conftest import PASSWORD
from tests.factories import (
    AcneActivityFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    course,
    make_plan,
)
from tests.test_front_desk_privacy import FLAG_DETAILS, flag_words

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _flag_words_in(text):
    text = text.lower()
    return [word for word in flag_words() if word in text]


def test_front_desk_today_shows_clinician_review_and_no_flag_word(login, front_desk, clinician):
    today = timezone.localdate()
    patient = PatientFactory(
        first_name="Greer",
        last_name="Ramsdell",
        fitzpatrick_type=5,
        other_allergies="Penicillin rash",
        medications="Metformin 500 mg",
    )
    for kind in MedicalFlag.Kind.values:
        MedicalFlagFactory(
            patient=patient, kind=kind, started_on=date(2025, 6, 1), detail=FLAG_DETAILS[kind]
        )
    AcneActivityFactory(patient=patient, recorded_on=today, level="severe")
    make_plan(
        user=clinician,
        sites=[ScarSiteFactory(patient=patient, scar_types=["rolling"])],
        courses=[course("microneedling", 2, every=42)],
        start=today,
        overrides={"rule:active_breakout": "Reviewed in clinic"},
    )

    page = login("fd_user", PASSWORD)
    page.get_by_role("link", name="Today").first.click()
    row = page.locator("#due-today tr", has_text="Greer Ramsdell")
    expect(row).to_be_visible()
    expect(row.get_by_text("Clinician review")).to_be_visible()
    assert _flag_words_in(page.locator("body").inner_text()) == []
    # Tooltips are text too: no title attribute may carry a rule's reasons.
    assert _flag_words_in(page.content()) == []

    # Moving the visit: the page says a clinician must check, never why.
    row.get_by_role("link", name="Move").click()
    expect(page.get_by_role("heading", name="Move session")).to_be_visible()
    expect(page.get_by_text("Check with clinician").first).to_be_visible()
    assert _flag_words_in(page.content()) == []
