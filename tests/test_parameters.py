"""Session parameters checked against the seeded catalogue's parameter definitions."""

import pytest
from django.core.exceptions import ValidationError

from plans.models import TreatmentParameter
from plans.parameters import clean_parameters, clean_value

pytestmark = pytest.mark.django_db

PDL_OK = {
    "wavelength": 595,
    "fluence": 7.5,
    "spot_size": 7,
    "pulse_duration": 1.5,
    "passes": 1,
    "cooling": "dynamic",
}
PEEL_OK = {"agent": "glycolic", "concentration": 70, "layers": 1, "neutralised": "yes"}


def definition(treatment_code, code):
    return TreatmentParameter.objects.get(treatment__code=treatment_code, code=code)


def definitions(treatment_code):
    return TreatmentParameter.objects.filter(treatment__code=treatment_code)


def error_of(treatment_code, code, raw):
    with pytest.raises(ValidationError) as caught:
        clean_value(definition(treatment_code, code), raw)
    return caught.value.messages


@pytest.mark.parametrize(
    ("treatment", "code", "raw", "message"),
    [
        ("pulsed_dye_laser", "fluence", 16, "Fluence must be from 3 to 15 J/cm²."),
        ("pulsed_dye_laser", "fluence", "2.9", "Fluence must be from 3 to 15 J/cm²."),
        ("pulsed_dye_laser", "wavelength", 1064, "Wavelength must be from 585 to 600 nm."),
        ("pulsed_dye_laser", "pulse_duration", 0.4, "Pulse duration must be from 0.45 to 40 ms."),
        ("pulsed_dye_laser", "passes", 4, "Passes must be from 1 to 3."),
        ("microneedling", "needle_depth", "3.5", "Needle depth must be from 0.25 to 3 mm."),
        ("chemical_peel", "concentration", 101, "Concentration must be from 1 to 100 %."),
    ],
)
def test_a_number_out_of_range_names_the_label_range_and_unit(treatment, code, raw, message):
    assert error_of(treatment, code, raw) == [message]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, 3), ("15", 15), ("7,5", 7.5), (" 7.25 ", 7.25), ("10.0", 10), (12.5, 12.5)],
)
def test_numbers_in_range_are_accepted_with_a_comma_or_a_point(raw, expected):
    value = clean_value(definition("pulsed_dye_laser", "fluence"), raw)

    assert value == expected
    assert type(value) is type(expected)


def test_the_range_ends_are_inside_the_range():
    fluence = definition("pulsed_dye_laser", "fluence")

    assert clean_value(fluence, "3") == 3
    assert clean_value(fluence, "15") == 15


@pytest.mark.parametrize(
    "raw", ["abc", "nan", "NaN", "inf", "-Infinity", float("nan"), float("inf"), True, False, "7 J"]
)
def test_non_numbers_are_refused_with_the_allowed_range(raw):
    assert error_of("pulsed_dye_laser", "fluence", raw) == [
        "Fluence must be a number from 3 to 15 J/cm²."
    ]


def test_a_choice_outside_the_list_names_the_allowed_values():
    assert error_of("pulsed_dye_laser", "cooling", "liquid nitrogen") == [
        "Cooling must be one of: dynamic, cold air, contact, none."
    ]
    assert error_of("cryotherapy", "method", "laser") == [
        "Method must be one of: spray, contact, intralesional."
    ]


def test_a_listed_choice_is_accepted_as_written():
    assert clean_value(definition("pulsed_dye_laser", "cooling"), " cold air ") == "cold air"
    assert clean_value(definition("chemical_peel", "frost_level"), 2) == "2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("Yes", True), ("on", True), (True, True), ("1", True), (1, True)]
    + [("no", False), ("NO", False), ("off", False), (False, False), ("0", False)],
)
def test_yes_no_accepts_the_usual_spellings(raw, expected):
    assert clean_value(definition("chemical_peel", "neutralised"), raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "y e s"])
def test_yes_no_refuses_anything_else(raw):
    assert error_of("chemical_peel", "neutralised", raw) == ["Neutralised must be yes or no."]


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_a_required_parameter_left_empty_is_reported(raw):
    assert error_of("pulsed_dye_laser", "fluence", raw) == ["Fluence is required."]


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_an_optional_parameter_left_empty_is_left_out(raw):
    assert clean_value(definition("chemical_peel", "ph"), raw) is None
    assert clean_parameters(definitions("chemical_peel"), {**PEEL_OK, "ph": raw}) == {
        "agent": "glycolic",
        "concentration": 70,
        "layers": 1,
        "neutralised": True,
    }


def test_zero_is_a_value_not_an_empty_field():
    assert clean_value(definition("chemical_peel", "contact_time"), 0) == 0


def test_text_is_kept_trimmed():
    assert clean_value(definition("microneedling", "device"), "  Dermapen 4 ") == "Dermapen 4"


def test_a_complete_set_of_laser_parameters_is_cleaned():
    cleaned = clean_parameters(definitions("pulsed_dye_laser"), {**PDL_OK, "fluence": "7,5"})

    assert cleaned == {**PDL_OK, "fluence": 7.5}


def test_unknown_parameter_codes_are_reported_with_the_allowed_codes():
    with pytest.raises(ValidationError) as caught:
        clean_parameters(
            definitions("cryotherapy"),
            {"method": "spray", "cycles": 2, "seconds": 10, "temperature": -196},
        )

    assert caught.value.message_dict == {
        "__all__": [
            "Unknown parameter(s) temperature; this treatment logs: cycles, method, seconds."
        ]
    }


def test_every_error_is_reported_together_keyed_by_field():
    values = {"wavelength": 595, "fluence": 20, "spot_size": "big", "passes": 1, "colour": "red"}

    with pytest.raises(ValidationError) as caught:
        clean_parameters(definitions("pulsed_dye_laser"), values, prefix="params-7-")

    assert caught.value.message_dict == {
        "params-7-fluence": ["Fluence must be from 3 to 15 J/cm²."],
        "params-7-spot_size": ["Spot size must be a number from 3 to 12 mm."],
        "params-7-pulse_duration": ["Pulse duration is required."],
        "params-7-cooling": ["Cooling is required."],
        "params-7-__all__": [
            "Unknown parameter(s) colour; this treatment logs: cooling, fluence, passes, "
            "pulse_duration, spot_size, wavelength."
        ],
    }


def test_partial_checks_only_the_planned_values_given():
    planned = clean_parameters(definitions("chemical_peel"), {"agent": "tca"}, partial=True)

    assert planned == {"agent": "tca"}
    with pytest.raises(ValidationError) as caught:
        clean_parameters(definitions("chemical_peel"), {"layers": 9}, partial=True)
    assert caught.value.message_dict == {"layers": ["Layers must be from 1 to 6."]}
