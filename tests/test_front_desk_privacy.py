"""Front desk sees that a clinician must look, never why: no condition, medication or rule
name on Today or the diary (issue 10, point 4, for the pages the appointment book touches)."""

from datetime import date

import pytest
from django.urls import reverse

from patients.models import MedicalFlag
from tests.factories import (
    TODAY,
    AcneActivityFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    course,
    frozen,
    make_plan,
)

pytestmark = pytest.mark.django_db

FLAG_WORDS = [
    "isotretinoin",
    "Isotretinoin",
    "pregnan",
    "Pregnan",
    "alicyl",
    "erpes",
    "leeding",
    "eloid",
    "Anticoagulant",
    "Warfarin",
    "Breakout",
    "breakout",
    "Fitzpatrick",
]


@pytest.fixture
def flagged(clinician):
    """A patient with every flag, a breakout and a microneedling visit today."""
    patient = PatientFactory(first_name="Greer", fitzpatrick_type=5)
    for kind in MedicalFlag.Kind.values:
        MedicalFlagFactory(
            patient=patient, kind=kind, started_on=date(2025, 6, 1), detail="Warfarin 5 mg"
        )
    make_plan(
        user=clinician,
        sites=[ScarSiteFactory(patient=patient)],
        courses=[
            course("microneedling", 1),
            course("chemical_peel", 1, default_parameters={"agent": "salicylic"}),
        ],
        start=TODAY,
        overrides={
            "rule:active_breakout": "x",
            "rule:pregnancy_salicylic": "x",
            "rule:salicylate_allergy": "x",
        },
    )
    AcneActivityFactory(patient=patient, recorded_on=TODAY, level="severe")
    return patient


@pytest.mark.parametrize("page", ["home", "diary_day"])
def test_front_desk_sees_a_neutral_badge_and_no_flag_word(front_desk_client, flagged, page):
    with frozen(TODAY):
        html = front_desk_client.get(reverse(page)).content.decode()
    assert "Greer" in html
    assert "Clinician review" in html
    for word in FLAG_WORDS:
        assert word not in html, word


def test_a_clinician_sees_the_rules_by_name(clinician_client, flagged):
    with frozen(TODAY):
        html = clinician_client.get(reverse("home"), {"clinician": ""}).content.decode()
    assert "Active breakout" in html and "Salicylic acid in pregnancy" in html
