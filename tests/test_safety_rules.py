"""The clinical safety rules, evaluated as pure functions without a database."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from plans.safety import (
    RULES,
    Action,
    FlagPeriod,
    OtherSession,
    RuleSetting,
    SafetyContext,
    TreatmentFacts,
    evaluate,
    involves_salicylate,
    peel_depth,
)

MICRONEEDLING = TreatmentFacts(
    "microneedling", "Microneedling", "microneedling", needs_clear_skin=True, min_interval_days=28
)
PEEL = TreatmentFacts(
    "chemical_peel", "Chemical peel", "peel", needs_clear_skin=True, min_interval_days=14
)
SUPERFICIAL_PEEL = TreatmentFacts("glycolic_peel", "Glycolic peel", "peel", "superficial")
PDL = TreatmentFacts("pulsed_dye_laser", "Pulsed-dye laser", "vascular_laser")
CO2 = TreatmentFacts("co2_laser", "CO2 laser", "ablative_laser")
CRYO = TreatmentFacts("cryotherapy", "Cryotherapy", "cryotherapy", min_interval_days=20)
HOME_SALICYLIC = TreatmentFacts(
    "salicylic_acid",
    "Salicylic acid",
    "home_acid",
    contains_salicylate=True,
    needs_clear_skin=True,
    in_office=False,
)
AHA = TreatmentFacts("aha", "Alpha hydroxy acids", "home_acid", in_office=False)

DAY = date(2026, 6, 15)
LONG_AGO = date(2020, 1, 1)
TCA_35 = {"agent": "tca", "concentration": 35}


def days(n):
    return DAY + timedelta(days=n)


def ctx(treatment=MICRONEEDLING, on=DAY, flags=(), others=(), **facts):
    return SafetyContext(
        on=on, treatment=treatment, flags=tuple(flags), other_sessions=tuple(others), **facts
    )


def flag(kind, start=LONG_AGO, end=None):
    return FlagPeriod(kind, start, end)


def session(treatment, on):
    return OtherSession(on, treatment)


def finding(context, code, settings=None):
    return next((f for f in evaluate(context, settings) if f.rule == code), None)


def fires(context, code, settings=None):
    return finding(context, code, settings) is not None


def test_rules_table_lists_every_rule_in_order_with_its_defaults():
    assert [
        (r.code, r.default_action, r.window_unit, r.default_window) for r in RULES.values()
    ] == [
        ("treatment_consent", Action.BLOCK, "", None),
        ("active_breakout", Action.BLOCK, "", None),
        ("isotretinoin_recent", Action.WARN, "months", 6),
        ("pregnancy_salicylic", Action.BLOCK, "", None),
        ("salicylate_allergy", Action.BLOCK, "", None),
        ("fitzpatrick_pih", Action.WARN, "", None),
        ("fitzpatrick_unassessed", Action.WARN, "", None),
        ("keloid_history", Action.WARN, "", None),
        ("anticoagulant", Action.WARN, "", None),
        ("herpes_simplex", Action.INFORM, "", None),
        ("min_interval", Action.WARN, "days", None),
        ("peel_before_microneedling", Action.WARN, "days", 14),
    ]
    assert all(r.title and r.description for r in RULES.values())


@pytest.mark.parametrize(
    ("start", "end", "day", "active"),
    [
        (None, None, DAY, True),
        (DAY, None, DAY, True),
        (days(1), None, DAY, False),
        (None, DAY, DAY, True),
        (None, days(-1), DAY, False),
    ],
)
def test_flag_period_is_active_between_its_dates_inclusive(start, end, day, active):
    assert FlagPeriod("pregnancy", start, end).active_on(day) is active


# 1. Active breakout


@pytest.mark.parametrize(
    ("level", "expected"),
    [("mild", True), ("moderate", True), ("severe", True), ("none", False), ("", False)],
)
def test_breakout_blocks_treatments_needing_clear_skin_while_acne_is_active(level, expected):
    result = finding(ctx(MICRONEEDLING, acne_level=level), "active_breakout")
    assert (result is not None) is expected
    assert result is None or result.blocks


@pytest.mark.parametrize(
    ("treatment", "expected"), [(MICRONEEDLING, True), (PDL, False), (HOME_SALICYLIC, False)]
)
def test_breakout_only_concerns_in_office_treatments_needing_clear_skin(treatment, expected):
    assert fires(ctx(treatment, acne_level="severe"), "active_breakout") is expected


def test_breakout_message_names_the_level_dates_and_treatment():
    context = ctx(
        MICRONEEDLING,
        on=date(2026, 11, 20),
        acne_level="moderate",
        acne_recorded_on=date(2026, 11, 2),
    )
    assert finding(context, "active_breakout").message == (
        "Acne is recorded as moderate since 2026-11-02 (session on 2026-11-20): Microneedling "
        "needs clear skin. Treat the breakout first, or record that it has cleared."
    )


# 2. Recent isotretinoin


@pytest.mark.parametrize(
    ("end", "on", "expected"),
    [
        (date(2026, 3, 1), date(2026, 9, 1), True),
        (date(2026, 3, 1), date(2026, 9, 2), False),
        (date(2026, 1, 31), date(2026, 7, 31), True),
        (date(2026, 1, 31), date(2026, 8, 1), False),
        (date(2026, 8, 31), date(2027, 2, 28), True),  # clamped to February's last day
        (date(2026, 8, 31), date(2027, 3, 1), False),
        (date(2027, 8, 31), date(2028, 2, 29), True),  # leap year
        (date(2027, 8, 31), date(2028, 3, 1), False),
        (date(2026, 9, 30), date(2027, 3, 30), True),  # across the new year
        (date(2026, 9, 30), date(2027, 3, 31), False),
    ],
)
def test_isotretinoin_warns_up_to_six_calendar_months_after_the_course(end, on, expected):
    context = ctx(MICRONEEDLING, on=on, flags=[flag("isotretinoin", end=end)])
    assert fires(context, "isotretinoin_recent") is expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, True),
        (days(-30), None, True),
        (DAY, None, True),
        (days(-30), days(30), True),
        (days(1), None, False),  # the course starts after the session
    ],
)
def test_isotretinoin_counts_courses_running_on_the_session_date(start, end, expected):
    context = ctx(MICRONEEDLING, flags=[FlagPeriod("isotretinoin", start, end)])
    assert fires(context, "isotretinoin_recent") is expected


@pytest.mark.parametrize(
    ("treatment", "parameters", "expected"),
    [
        (MICRONEEDLING, {}, True),
        (CO2, {}, True),
        (PEEL, TCA_35, True),
        (PEEL, {"agent": "phenol"}, True),
        (PEEL, {}, True),
        (PEEL, {"agent": "glycolic"}, False),
        (SUPERFICIAL_PEEL, {}, False),
        (PDL, {}, False),
        (CRYO, {}, False),
    ],
)
def test_isotretinoin_spares_superficial_peels_and_vascular_lasers(treatment, parameters, expected):
    context = ctx(treatment, flags=[flag("isotretinoin")], parameters=parameters)
    assert fires(context, "isotretinoin_recent") is expected


@pytest.mark.parametrize(("parameters", "caveat"), [({}, True), (TCA_35, False)])
def test_isotretinoin_on_a_peel_of_unknown_depth_says_unless_superficial(parameters, caveat):
    context = ctx(PEEL, flags=[flag("isotretinoin")], parameters=parameters)
    message = finding(context, "isotretinoin_recent").message
    assert ("unless this is a superficial peel" in message) is caveat


def test_isotretinoin_message_names_the_end_date_and_when_to_wait_until():
    context = ctx(
        MICRONEEDLING, on=date(2026, 8, 15), flags=[flag("isotretinoin", end=date(2026, 3, 1))]
    )
    assert finding(context, "isotretinoin_recent").message == (
        "Isotretinoin course ended 2026-03-01, within 6 months of 2026-08-15: Microneedling risks "
        "poor healing and scarring. Consider waiting until after 2026-09-01."
    )


def test_isotretinoin_reports_the_latest_of_several_courses():
    courses = [flag("isotretinoin", end=days(-60)), flag("isotretinoin", end=days(-10))]
    message = finding(ctx(MICRONEEDLING, flags=courses), "isotretinoin_recent").message
    assert str(days(-10)) in message
    assert str(days(-60)) not in message


@pytest.mark.parametrize(("on", "expected"), [(date(2026, 4, 30), True), (date(2026, 5, 1), False)])
def test_isotretinoin_window_setting_moves_the_edge(on, expected):
    context = ctx(MICRONEEDLING, on=on, flags=[flag("isotretinoin", end=date(2026, 1, 31))])
    settings = {"isotretinoin_recent": RuleSetting(Action.WARN, window=3)}
    assert fires(context, "isotretinoin_recent", settings) is expected


# 3. Pregnancy or breastfeeding and salicylic acid


@pytest.mark.parametrize(
    ("treatment", "parameters", "expected"),
    [
        (PEEL, {"agent": "salicylic"}, True),
        (PEEL, {"agent": "jessner"}, True),
        (HOME_SALICYLIC, {}, True),
        (PEEL, {"agent": "glycolic"}, False),
        (PEEL, TCA_35, False),
        (AHA, {}, False),
    ],
)
@pytest.mark.parametrize("kind", ["pregnancy", "breastfeeding"])
def test_pregnancy_or_breastfeeding_blocks_salicylic_acid(kind, treatment, parameters, expected):
    context = ctx(treatment, flags=[flag(kind)], parameters=parameters)
    result = finding(context, "pregnancy_salicylic")
    assert (result is not None) is expected
    assert result is None or result.blocks


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (days(-200), days(-1), False),  # ended the day before
        (days(-200), DAY, True),  # ended on the day
        (days(1), None, False),  # starts the day after
        (None, None, True),
    ],
)
def test_pregnancy_is_read_as_of_the_session_date(start, end, expected):
    context = ctx(HOME_SALICYLIC, flags=[FlagPeriod("pregnancy", start, end)])
    assert fires(context, "pregnancy_salicylic") is expected


def test_pregnancy_message_names_the_flag_agent_and_dates():
    context = ctx(PEEL, flags=[flag("pregnancy", start=days(-40))], parameters={"agent": "jessner"})
    assert finding(context, "pregnancy_salicylic").message == (
        f"Pregnancy (from {days(-40)}, ongoing) is recorded on {DAY}: Chemical peel uses "
        "Jessner's solution, which contains salicylic acid. Use an agent without salicylic acid."
    )


# 4. Salicylate allergy


@pytest.mark.parametrize(
    ("kind", "treatment", "parameters", "expected"),
    [
        ("salicylate_allergy", HOME_SALICYLIC, {}, True),
        ("salicylate_allergy", PEEL, {"agent": "jessner"}, True),
        ("salicylate_allergy", PEEL, {"agent": "glycolic"}, False),
        ("other_allergy", HOME_SALICYLIC, {}, False),
    ],
)
def test_salicylate_allergy_blocks_salicylic_acid(kind, treatment, parameters, expected):
    context = ctx(treatment, flags=[flag(kind)], parameters=parameters)
    result = finding(context, "salicylate_allergy")
    assert (result is not None) is expected
    assert result is None or result.blocks


@pytest.mark.parametrize(("start", "expected"), [(DAY, True), (days(1), False)])
def test_salicylate_allergy_recorded_after_the_session_does_not_count(start, expected):
    context = ctx(HOME_SALICYLIC, flags=[flag("salicylate_allergy", start=start)])
    assert fires(context, "salicylate_allergy") is expected


# 5. Fitzpatrick IV-VI: post-inflammatory hyperpigmentation


@pytest.mark.parametrize(
    ("fitzpatrick", "treatment", "parameters", "expected"),
    [
        (3, PEEL, {}, False),
        (4, PEEL, {}, True),
        (5, PEEL, TCA_35, True),
        (6, PEEL, {"agent": "phenol"}, True),
        (6, PEEL, {"agent": "glycolic"}, False),
        (6, SUPERFICIAL_PEEL, {}, False),
        (4, PDL, {}, True),
        (4, CO2, {}, True),
        (3, CO2, {}, False),
        (4, CRYO, {}, True),
        (3, CRYO, {}, False),
        (6, MICRONEEDLING, {}, False),
        (None, CRYO, {}, False),
    ],
)
def test_dark_skin_types_warn_of_pigmentation(fitzpatrick, treatment, parameters, expected):
    context = ctx(treatment, fitzpatrick=fitzpatrick, parameters=parameters)
    assert fires(context, "fitzpatrick_pih") is expected


def test_pigmentation_message_names_skin_type_treatment_and_unknown_depth():
    message = finding(ctx(PEEL, fitzpatrick=5), "fitzpatrick_pih").message
    assert message.startswith("Fitzpatrick skin type V: Chemical peel (depth unknown)")
    assert "hyperpigmentation" in message


# 6. Keloid history


@pytest.mark.parametrize(
    ("treatment", "expected"), [(MICRONEEDLING, True), (PEEL, True), (PDL, False), (CRYO, False)]
)
def test_keloid_history_warns_for_microneedling_and_peels(treatment, expected):
    assert fires(ctx(treatment, flags=[flag("keloid_history")]), "keloid_history") is expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(LONG_AGO, DAY, True), (LONG_AGO, days(-1), False), (days(1), None, False)],
)
def test_keloid_history_is_read_as_of_the_session_date(start, end, expected):
    context = ctx(MICRONEEDLING, flags=[FlagPeriod("keloid_history", start, end)])
    assert fires(context, "keloid_history") is expected


# 7. Anticoagulants or a bleeding disorder


@pytest.mark.parametrize(
    ("kind", "treatment", "expected"),
    [
        ("anticoagulant", MICRONEEDLING, True),
        ("bleeding_disorder", MICRONEEDLING, True),
        ("anticoagulant", PEEL, False),
        ("herpes_simplex", MICRONEEDLING, False),
    ],
)
def test_bleeding_risk_warns_for_microneedling(kind, treatment, expected):
    assert fires(ctx(treatment, flags=[flag(kind)]), "anticoagulant") is expected


@pytest.mark.parametrize(("end", "expected"), [(DAY, True), (days(-1), False)])
def test_anticoagulant_stopped_before_the_session_does_not_count(end, expected):
    context = ctx(MICRONEEDLING, flags=[flag("anticoagulant", end=end)])
    assert fires(context, "anticoagulant") is expected


# 8. Herpes simplex


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [
        (PEEL, True),
        (SUPERFICIAL_PEEL, True),
        (PDL, True),
        (CO2, True),
        (MICRONEEDLING, False),
        (CRYO, False),
    ],
)
def test_herpes_simplex_informs_about_antivirals_before_peels_and_lasers(treatment, expected):
    result = finding(ctx(treatment, flags=[flag("herpes_simplex")]), "herpes_simplex")
    assert (result is not None) is expected
    assert result is None or (result.action == Action.INFORM and "antiviral" in result.message)


def test_herpes_simplex_recorded_after_the_session_does_not_count():
    context = ctx(PEEL, flags=[flag("herpes_simplex", start=days(1))])
    assert not fires(context, "herpes_simplex")
    assert fires(replace(context, on=days(1)), "herpes_simplex")


# 9. Minimum interval between sessions of one treatment


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-19, True), (-20, False), (19, True), (20, False), (-1, True), (0, True), (-60, False)],
)
def test_min_interval_fires_for_the_same_treatment_closer_than_its_minimum(offset, expected):
    context = ctx(CRYO, others=[session(CRYO, days(offset))])
    assert fires(context, "min_interval") is expected


def test_min_interval_ignores_other_treatments():
    assert not fires(ctx(CRYO, others=[session(PDL, days(-1))]), "min_interval")


def test_min_interval_never_fires_without_a_catalogue_minimum():
    no_minimum = replace(CRYO, min_interval_days=None)
    context = ctx(no_minimum, others=[session(no_minimum, days(-1))])
    assert not fires(context, "min_interval")
    assert fires(context, "min_interval", {"min_interval": RuleSetting(Action.WARN, window=2)})


@pytest.mark.parametrize(("offset", "expected"), [(-29, True), (-30, False)])
def test_min_interval_window_setting_overrides_the_catalogue(offset, expected):
    context = ctx(CRYO, others=[session(CRYO, days(offset))])
    settings = {"min_interval": RuleSetting(Action.WARN, window=30)}
    assert fires(context, "min_interval", settings) is expected


def test_min_interval_message_names_the_nearest_date_gap_and_minimum():
    context = ctx(CRYO, others=[session(CRYO, days(-15)), session(CRYO, days(12))])
    assert finding(context, "min_interval").message == (
        f"Another Cryotherapy session is on {days(12)}, 12 days from {DAY}: "
        "the minimum interval is 20 days."
    )


# 10. Chemical peel shortly before microneedling


@pytest.mark.parametrize(
    ("offset", "expected"), [(-14, True), (-15, False), (-1, True), (0, False), (5, False)]
)
def test_microneedling_warns_of_a_peel_in_the_14_days_before(offset, expected):
    context = ctx(MICRONEEDLING, others=[session(PEEL, days(offset))])
    assert fires(context, "peel_before_microneedling") is expected


@pytest.mark.parametrize(
    ("offset", "expected"), [(14, True), (15, False), (1, True), (0, False), (-5, False)]
)
def test_peel_warns_of_microneedling_in_the_14_days_after(offset, expected):
    context = ctx(PEEL, others=[session(MICRONEEDLING, days(offset))])
    assert fires(context, "peel_before_microneedling") is expected


def test_peel_before_microneedling_ignores_other_treatments():
    assert not fires(ctx(CRYO, others=[session(PEEL, days(-3))]), "peel_before_microneedling")
    assert not fires(
        ctx(MICRONEEDLING, others=[session(CRYO, days(-3))]), "peel_before_microneedling"
    )


@pytest.mark.parametrize(("offset", "expected"), [(-7, True), (-8, False)])
def test_peel_before_microneedling_window_setting_moves_the_edge(offset, expected):
    context = ctx(MICRONEEDLING, others=[session(PEEL, days(offset))])
    settings = {"peel_before_microneedling": RuleSetting(Action.WARN, window=7)}
    assert fires(context, "peel_before_microneedling", settings) is expected


def test_peel_before_microneedling_message_names_both_dates():
    context = ctx(MICRONEEDLING, others=[session(PEEL, days(-14))])
    assert finding(context, "peel_before_microneedling").message == (
        f"Chemical peel on {days(-14)} is within 14 days before Microneedling on {DAY}: "
        "let the skin recover from the peel first."
    )


# Settings, ordering and messages across rules

SALICYLIC_PEEL = replace(PEEL, contains_salicylate=True)
MANY_RISKS = ctx(
    SALICYLIC_PEEL,
    acne_level="mild",
    fitzpatrick=5,
    flags=[
        flag("herpes_simplex"),
        flag("keloid_history"),
        flag("isotretinoin"),
        flag("pregnancy"),
        flag("salicylate_allergy"),
    ],
    others=[session(SALICYLIC_PEEL, days(-3)), session(MICRONEEDLING, days(3))],
)


def test_a_setting_changes_the_action():
    settings = {"active_breakout": RuleSetting(Action.WARN)}
    result = finding(ctx(MICRONEEDLING, acne_level="severe"), "active_breakout", settings)
    assert result.action == Action.WARN
    assert not result.blocks


def test_a_disabled_rule_does_not_fire_and_the_others_still_do():
    settings = {"keloid_history": RuleSetting(Action.WARN, enabled=False)}
    assert not fires(MANY_RISKS, "keloid_history", settings)
    assert fires(MANY_RISKS, "herpes_simplex", settings)


def test_findings_are_ordered_block_warn_inform_keeping_rule_order_within_a_level():
    assert [f.rule for f in evaluate(MANY_RISKS)] == [
        "active_breakout",
        "pregnancy_salicylic",
        "salicylate_allergy",
        "isotretinoin_recent",
        "fitzpatrick_pih",
        "keloid_history",
        "min_interval",
        "peel_before_microneedling",
        "herpes_simplex",
    ]


def test_ordering_follows_the_configured_actions():
    settings = {
        "herpes_simplex": RuleSetting(Action.BLOCK),
        "active_breakout": RuleSetting(Action.INFORM),
        "salicylate_allergy": RuleSetting(Action.BLOCK, enabled=False),
    }
    assert [(f.rule, f.action) for f in evaluate(MANY_RISKS, settings)] == [
        ("pregnancy_salicylic", Action.BLOCK),
        ("herpes_simplex", Action.BLOCK),
        ("isotretinoin_recent", Action.WARN),
        ("fitzpatrick_pih", Action.WARN),
        ("keloid_history", Action.WARN),
        ("min_interval", Action.WARN),
        ("peel_before_microneedling", Action.WARN),
        ("active_breakout", Action.INFORM),
    ]


def test_nothing_fires_for_a_patient_without_risks():
    assert evaluate(ctx(MICRONEEDLING, acne_level="none", fitzpatrick=2)) == []


def test_every_rule_fires_somewhere_and_its_message_names_the_treatment():
    bleeding = ctx(MICRONEEDLING, flags=[flag("anticoagulant")])
    unknown_skin = ctx(CRYO, fitzpatrick=None, fitzpatrick_assessed=False)
    no_consent = ctx(CRYO, treatment_consents=())
    findings = [
        (context, f)
        for context in (MANY_RISKS, bleeding, unknown_skin, no_consent)
        for f in evaluate(context)
    ]
    assert {f.rule for _, f in findings} == set(RULES)
    for context, f in findings:
        assert context.treatment.name in f.message, f.rule
        assert f.title == RULES[f.rule].title


# Peel depth and salicylate helpers


@pytest.mark.parametrize(
    ("parameters", "depth"),
    [
        ({"agent": "tca", "concentration": 34.9}, "superficial"),
        ({"agent": "tca", "concentration": 35}, "medium"),
        ({"agent": "tca", "concentration": 49}, "medium"),
        ({"agent": "tca", "concentration": 49.9}, "medium"),
        ({"agent": "tca", "concentration": 50}, "deep"),
        ({"agent": "TCA", "concentration": "35"}, "medium"),
        ({"agent": "tca", "concentration": "50%"}, "deep"),
        ({"agent": "tca", "concentration": Decimal("34.99")}, "superficial"),
        ({"agent": "tca", "concentration": "strong"}, ""),
        ({"agent": "tca", "concentration": None}, ""),
        ({"agent": "tca", "concentration": True}, ""),
        ({"agent": "tca", "concentration": float("nan")}, ""),
        ({"agent": "tca"}, ""),
        ({"agent": "phenol"}, "deep"),
        ({"agent": "glycolic", "concentration": 70}, "superficial"),
        ({"agent": "salicylic"}, "superficial"),
        ({"agent": "lactic"}, "superficial"),
        ({"agent": "jessner"}, "superficial"),
        ({"agent": "mandelic"}, "superficial"),
        ({"agent": "mix"}, ""),
        ({}, ""),
    ],
)
def test_peel_depth_follows_the_agent_and_concentration(parameters, depth):
    assert peel_depth(PEEL, parameters) == depth


def test_peel_depth_from_the_catalogue_wins_over_the_agent():
    assert peel_depth(replace(PEEL, peel_depth="medium"), {"agent": "glycolic"}) == "medium"


@pytest.mark.parametrize(
    ("treatment", "parameters", "expected"),
    [
        (PEEL, {"agent": "jessner"}, True),
        (PEEL, {"agent": "Jessner "}, True),
        (PEEL, {"agent": "salicylic"}, True),
        (PEEL, {"agent": "glycolic"}, False),
        (PEEL, {}, False),
        (HOME_SALICYLIC, {}, True),
        (AHA, {}, False),
    ],
)
def test_involves_salicylate(treatment, parameters, expected):
    assert involves_salicylate(treatment, parameters) is expected
