"""Scar assessment instruments: totals computed by hand, and validation that names the range."""

import pytest
from django.core.exceptions import ValidationError

from plans import scales
from plans.scales import CHOICES, INSTRUMENTS, Instrument, Item, gais_label, get

GB_COUNTED_POINTS = {
    "macular": 1,
    "mild_atrophic": 1,
    "moderate_atrophic": 2,
    "punched_out_shallow": 2,
    "shallow_broad_atrophic": 2,
    "punched_out_deep_normal": 3,
    "punched_out_deep_abnormal": 3,
    "linear_troughed": 3,
    "deep_broad_atrophic": 3,
    "papular": 2,
}
ECCA_WEIGHTS = {
    "v_atrophic": 15,
    "u_atrophic": 20,
    "m_atrophic": 25,
    "elastolysis": 30,
    "hypertrophic_recent": 40,
    "keloid_old": 50,
}
VSS_OK = {"vascularity": 2, "pigmentation": 1, "pliability": 3, "height": 1}


def all_at(code, end):
    """Every item of an instrument at its minimum ("min") or maximum ("max")."""
    return {item.code: item.minimum if end == "min" else item.maximum for item in get(code).items}


def gb_quant(**counts):
    values = dict.fromkeys(get("gb_quantitative").codes, 0)
    values.update(counts)
    return values


def errors_of(code, values):
    with pytest.raises(ValidationError) as caught:
        get(code).validate(values)
    return caught.value.message_dict


# --- Registry --------------------------------------------------------------------------------


def test_instruments_are_listed_in_display_order():
    assert list(INSTRUMENTS) == [
        "gb_qualitative",
        "gb_quantitative",
        "vss",
        "posas_observer",
        "posas_patient",
        "ecca",
        "gais_clinician",
        "gais_patient",
        "pain",
    ]


def test_choices_pair_each_code_with_its_clinical_name_in_the_same_order():
    assert [code for code, _ in CHOICES] == list(INSTRUMENTS)
    assert ("vss", "Vancouver Scar Scale") in CHOICES
    assert all(name == INSTRUMENTS[code].name for code, name in CHOICES)


def test_get_returns_the_registered_instrument():
    assert get("ecca") is INSTRUMENTS["ecca"]
    assert get("vss").code == "vss"


def test_get_with_an_unknown_code_raises_value_error_naming_the_allowed_codes():
    with pytest.raises(ValueError) as caught:
        get("vancouver")
    message = str(caught.value)
    assert "'vancouver'" in message
    assert all(code in message for code in INSTRUMENTS)


def test_every_instrument_has_patient_friendly_words_and_lower_is_better():
    for instrument in INSTRUMENTS.values():
        assert instrument.plain_name and instrument.measures, instrument.code
        assert instrument.plain_name != instrument.name, instrument.code
        assert instrument.lower_is_better is True, instrument.code
        assert all(item.help for item in instrument.items), instrument.code


def test_only_posas_overall_opinion_is_kept_out_of_the_total():
    outside = {
        (code, item.code)
        for code, instrument in INSTRUMENTS.items()
        for item in instrument.items
        if not item.in_total
    }
    assert outside == {("posas_observer", "overall"), ("posas_patient", "overall")}


def test_item_looks_up_by_code_and_rejects_unknown_codes():
    vascularity = get("vss").item("vascularity")
    assert (vascularity.label, vascularity.minimum, vascularity.maximum) == ("Vascularity", 0, 3)
    with pytest.raises(KeyError, match="vascularity, pigmentation, pliability, height"):
        get("vss").item("colour")


# --- Minimum and maximum totals --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "lowest", "highest"),
    [
        ("gb_qualitative", 1, 4),
        # 2 kinds x 1 pt x3 + 3 x 2 x3 + 4 x 3 x3 + papular 2 x3 + keloid 6 x band 3
        # = 6 + 18 + 36 + 6 + 18 = 84
        ("gb_quantitative", 0, 84),
        ("vss", 0, 13),  # 3 + 2 + 5 + 3
        ("posas_observer", 6, 60),  # six items 1..10; overall not added
        ("posas_patient", 6, 60),
        ("ecca", 0, 540),  # (15 + 20 + 25 + 30 + 40 + 50) x 3 = 180 x 3
        ("gais_clinician", 1, 5),
        ("gais_patient", 1, 5),
        ("pain", 0, 10),
    ],
)
def test_each_instrument_spans_its_published_range(code, lowest, highest):
    instrument = get(code)
    assert (instrument.min_total, instrument.max_total) == (lowest, highest)
    assert instrument.total(all_at(code, "min")) == lowest
    assert instrument.total(all_at(code, "max")) == highest


@pytest.mark.parametrize("code", ["posas_observer", "posas_patient"])
def test_posas_overall_opinion_is_validated_and_returned_but_not_added(code):
    lowest_with_worst_overall = {**all_at(code, "min"), "overall": 10}
    highest_with_best_overall = {**all_at(code, "max"), "overall": 1}
    assert get(code).total(lowest_with_worst_overall) == 6
    assert get(code).total(highest_with_best_overall) == 60
    assert get(code).validate(lowest_with_worst_overall)["overall"] == 10
    assert "overall" in errors_of(code, {**all_at(code, "min"), "overall": 11})


@pytest.mark.parametrize("grade", [1, 2, 3, 4])
def test_goodman_baron_qualitative_total_is_the_grade(grade):
    assert get("gb_qualitative").total({"grade": grade}) == grade


@pytest.mark.parametrize("code", ["gais_clinician", "gais_patient"])
@pytest.mark.parametrize("rating", [1, 2, 3, 4, 5])
def test_gais_total_is_the_rating(code, rating):
    assert get(code).total({"improvement": rating}) == rating


@pytest.mark.parametrize("level", range(11))
def test_pain_total_is_the_pain_level(level):
    assert get("pain").total({"pain": level}) == level


# --- Goodman & Baron quantitative -------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "multiplier"),
    [(0, 0), (1, 1), (10, 1), (11, 2), (20, 2), (21, 3), (500, 3)],
)
def test_gb_count_multiplier_bands(count, multiplier):
    # macular is 1 point, deep abnormal punched-out is 3: both scale by the same multiplier
    assert get("gb_quantitative").total(gb_quant(macular=count)) == 1 * multiplier
    assert get("gb_quantitative").total(gb_quant(punched_out_deep_abnormal=count)) == 3 * multiplier


@pytest.mark.parametrize(("code", "points"), GB_COUNTED_POINTS.items())
def test_each_gb_scar_kind_is_worth_its_points_per_multiplier(code, points):
    # one scar -> x1, so the total is that kind's points; 21 scars -> x3
    assert get("gb_quantitative").total(gb_quant(**{code: 1})) == points
    assert get("gb_quantitative").total(gb_quant(**{code: 21})) == points * 3


@pytest.mark.parametrize(("band", "expected"), [(0, 0), (1, 6), (2, 12), (3, 18)])
def test_gb_keloid_area_band_is_six_points_times_the_band(band, expected):
    assert get("gb_quantitative").total(gb_quant(keloid_area_band=band)) == expected


def test_gb_quantitative_mixed_face():
    values = gb_quant(
        macular=8,  # 1 pt x1 = 1
        mild_atrophic=15,  # 1 pt x2 = 2
        punched_out_shallow=12,  # 2 pt x2 = 4
        shallow_broad_atrophic=3,  # 2 pt x1 = 2
        punched_out_deep_normal=25,  # 3 pt x3 = 9
        linear_troughed=1,  # 3 pt x1 = 3
        papular=4,  # 2 pt x1 = 2
        keloid_area_band=1,  # 6 pt x1 = 6
    )
    assert get("gb_quantitative").total(values) == 1 + 2 + 4 + 2 + 9 + 3 + 2 + 6 == 29


def test_gb_counts_are_capped_at_500_and_keloid_band_at_3():
    assert errors_of("gb_quantitative", gb_quant(papular=501)) == {
        "papular": ["Hyperplastic papular must be a whole number from 0 to 500."]
    }
    assert list(errors_of("gb_quantitative", gb_quant(keloid_area_band=4))) == ["keloid_area_band"]


# --- Counted instruments: realistic examples --------------------------------------------------


def test_vss_mixed_hypertrophic_scar():
    # pink-red 2 + hyperpigmented 1 + firm 3 + raised under 2 mm 1 = 7
    assert get("vss").total(VSS_OK) == 7


def test_posas_observer_mixed_scar():
    values = {
        "vascularity": 3,
        "pigmentation": 2,
        "thickness": 4,
        "relief": 3,
        "pliability": 5,
        "surface_area": 2,
        "overall": 7,
    }
    # 3 + 2 + 4 + 3 + 5 + 2 = 19; overall 7 stays out
    assert get("posas_observer").total(values) == 19


def test_posas_patient_mixed_scar():
    values = {
        "pain": 2,
        "itching": 5,
        "colour": 3,
        "stiffness": 4,
        "thickness": 3,
        "irregularity": 6,
        "overall": 8,
    }
    # 2 + 5 + 3 + 4 + 3 + 6 = 23; overall 8 stays out
    assert get("posas_patient").total(values) == 23


@pytest.mark.parametrize(("code", "weight"), ECCA_WEIGHTS.items())
def test_each_ecca_kind_is_weighted(code, weight):
    values = {**all_at("ecca", "min"), code: 2}
    assert get("ecca").total(values) == weight * 2


def test_ecca_mixed_face():
    values = {
        "v_atrophic": 3,  # 15 x 3 = 45
        "u_atrophic": 2,  # 20 x 2 = 40
        "m_atrophic": 1,  # 25 x 1 = 25
        "elastolysis": 0,  # 0
        "hypertrophic_recent": 1,  # 40 x 1 = 40
        "keloid_old": 0,  # 0
    }
    assert get("ecca").total(values) == 45 + 40 + 25 + 40 == 150


# --- Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "item", "value", "message"),
    [
        ("vss", "vascularity", -1, "Vascularity must be a whole number from 0 to 3."),
        ("vss", "vascularity", 4, "Vascularity must be a whole number from 0 to 3."),
        ("vss", "pliability", "6", "Pliability must be a whole number from 0 to 5."),
        ("vss", "height", "-1", "Height must be a whole number from 0 to 3."),
        ("posas_observer", "surface_area", 0, "Surface area must be a whole number from 1 to 10."),
        ("posas_patient", "itching", 11, "Itching must be a whole number from 1 to 10."),
        ("gb_qualitative", "grade", 0, "Grade must be a whole number from 1 to 4."),
        ("gb_qualitative", "grade", 5, "Grade must be a whole number from 1 to 4."),
        (
            "ecca",
            "keloid_old",
            4,
            "Keloid or hypertrophic, over 1 year must be a whole number from 0 to 3.",
        ),
        ("gais_patient", "improvement", 6, "Improvement must be a whole number from 1 to 5."),
        ("gais_clinician", "improvement", 0, "Improvement must be a whole number from 1 to 5."),
        ("pain", "pain", 11, "Pain must be a whole number from 0 to 10."),
    ],
)
def test_out_of_range_item_is_rejected_with_its_label_and_range(code, item, value, message):
    values = {**all_at(code, "min"), item: value}
    assert errors_of(code, values) == {item: [message]}


@pytest.mark.parametrize(
    "value",
    ["2.5", 2.5, 2.0, "", " ", None, True, False, "two", "2a", "+2", "３", "١", [2], "9" * 5000],
)
def test_non_integer_values_are_rejected(value):
    # True and False are ints to Python, and "３" / "١" are digits to int(); none is form input
    values = {**VSS_OK, "vascularity": value}
    assert errors_of("vss", values) == {
        "vascularity": ["Vascularity must be a whole number from 0 to 3."]
    }


def test_missing_item_is_an_error_naming_its_range():
    values = dict(VSS_OK)
    del values["pliability"]
    assert errors_of("vss", values) == {
        "pliability": ["Pliability must be a whole number from 0 to 5."]
    }


def test_empty_input_reports_every_item():
    assert set(errors_of("posas_patient", {})) == set(get("posas_patient").codes)


def test_unknown_item_is_reported_under_all_with_the_allowed_codes():
    errors = errors_of("vss", {**VSS_OK, "colour": 2})
    assert list(errors) == ["__all__"]
    (message,) = errors["__all__"]
    assert "colour" in message
    assert "vascularity, pigmentation, pliability, height" in message


def test_all_bad_items_are_reported_together():
    values = {"vascularity": 9, "pigmentation": "x", "pliability": 2, "scar_age": 3, "zone": 1}
    errors = errors_of("vss", values)
    assert errors == {
        "vascularity": ["Vascularity must be a whole number from 0 to 3."],
        "pigmentation": ["Pigmentation must be a whole number from 0 to 2."],
        "height": ["Height must be a whole number from 0 to 3."],
        "__all__": [errors["__all__"][0]],
    }
    assert "scar_age, zone" in errors["__all__"][0]


def test_total_validates_before_computing():
    with pytest.raises(ValidationError):
        get("vss").total({**VSS_OK, "height": 4})


def test_string_digits_from_a_form_are_accepted_and_returned_as_ints():
    form_input = {"vascularity": "2", "pigmentation": "0", "pliability": " 5 ", "height": "3"}
    cleaned = get("vss").validate(form_input)
    assert cleaned == {"vascularity": 2, "pigmentation": 0, "pliability": 5, "height": 3}
    assert all(type(value) is int for value in cleaned.values())
    assert get("vss").total(form_input) == 10
    assert get("pain").total({"pain": "10"}) == 10


def test_validate_does_not_change_the_callers_values():
    form_input = {**VSS_OK, "height": "1"}
    get("vss").validate(form_input)
    assert form_input["height"] == "1"


# --- Help words and GAIS labels ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rating", "words"),
    [
        (1, "very much improved"),
        (2, "much improved"),
        (3, "improved"),
        (4, "no change"),
        (5, "worse"),
    ],
)
def test_gais_label_gives_the_words_for_each_rating(rating, words):
    assert gais_label(rating) == words
    assert f"{rating} {words}" in get("gais_clinician").item("improvement").help


@pytest.mark.parametrize("rating", [0, 6, True, "3"])
def test_gais_label_rejects_anything_but_a_rating_from_1_to_5(rating):
    with pytest.raises(ValueError):
        gais_label(rating)


@pytest.mark.parametrize(
    ("code", "item", "words"),
    [
        ("gb_qualitative", "grade", ["1 macular", "2 mild", "3 moderate", "4 severe"]),
        ("gais_patient", "improvement", ["1 very much improved", "4 no change", "5 worse"]),
        ("pain", "pain", ["0 no pain", "10 worst"]),
        ("gb_quantitative", "keloid_area_band", ["0 none", "1 under 5", "3 over 20"]),
        ("ecca", "v_atrophic", ["0 none", "1 fewer than 5", "2 5-20", "3 more than 20"]),
    ],
)
def test_scale_words_are_in_the_item_help(code, item, words):
    help_text = get(code).item(item).help
    assert all(word in help_text for word in words), help_text


# --- Definitions check themselves ---------------------------------------------------------------


def test_an_instrument_whose_declared_range_disagrees_with_its_formula_is_refused():
    item = Item("a", "A", 0, 3)
    with pytest.raises(ValueError, match="formula gives 0-6, declared 0-3"):
        Instrument("x", "X", "X", "x", (item,), True, 0, 3, lambda values: values["a"] * 2)


def test_an_instrument_with_duplicate_item_codes_is_refused():
    item = Item("a", "A", 0, 3)
    with pytest.raises(ValueError, match="duplicate"):
        Instrument("x", "X", "X", "x", (item, item), True, 0, 6, scales._in_total((item, item)))


# --- the log page's choices and live total (issue 14) ---------------------------------------


@pytest.mark.parametrize(
    ("code", "item", "words"),
    [
        ("vss", "vascularity", {0: "normal", 1: "pink", 2: "red", 3: "purple"}),
        ("vss", "height", {0: "flat", 1: "under 2 mm", 2: "2-5 mm", 3: "over 5 mm"}),
        ("ecca", "u_atrophic", {0: "none", 1: "fewer than 5", 2: "5-20", 3: "more than 20"}),
        ("gb_qualitative", "grade", {1: "macular (colour only)", 2: "mild (hidden by make-up)",
                                     3: "moderate (flattens when stretched)",
                                     4: "severe (does not flatten)"}),
    ],
)  # fmt: skip
def test_each_value_of_a_small_item_has_its_words(code, item, words):
    assert get(code).item(item).descriptors() == words


def test_every_small_item_describes_every_value_and_large_ones_are_not_small():
    for instrument in INSTRUMENTS.values():
        for item in instrument.items:
            if item.is_small:
                assert set(item.descriptors()) == set(item.values), (instrument.code, item.code)
            else:
                assert len(item.values) > scales.SMALL_RANGE


def test_help_that_does_not_name_every_value_gives_no_words():
    assert Item("x", "X", 0, 3, "0 none, 3 most").descriptors() == {}
    assert Item("x", "X", 1, 10, "1 normal skin, 10 worst imaginable").descriptors() == {}


def test_a_count_adds_points_in_steps_as_goodman_and_baron_multiply():
    assert get("gb_quantitative").points("punched_out_deep_normal") == (
        (0, 0),
        (1, 3),
        (11, 6),
        (21, 9),
    )
    assert get("gb_quantitative").points("keloid_area_band") == ((0, 0), (1, 6), (2, 12), (3, 18))
    assert get("ecca").points("keloid_old") == ((0, 0), (1, 50), (2, 100), (3, 150))
    assert get("posas_observer").points("overall") == ((1, 0),)  # kept out of the total


def _points(instrument, code, value):
    """The points of the last step at or below the value, as the page's script reads them."""
    return [points for start, points in instrument.points(code) if start <= value][-1]


@pytest.mark.parametrize("code", list(INSTRUMENTS))
def test_the_live_total_is_the_lowest_total_plus_each_items_points(code):
    """What static/js/session-log.js adds up equals the formula, for many random scores."""
    import random

    instrument = get(code)
    rng = random.Random(code)
    for _ in range(200):
        values = {item.code: rng.choice(item.values) for item in instrument.items}
        live = instrument.min_total + sum(_points(instrument, c, v) for c, v in values.items())
        assert live == instrument.total(values), values
