"""Scar assessment instruments, each defined once, as data.

Totals are always computed here from validated items, never typed in, so a score stored
anywhere in the app can be recomputed and checked. Pure Python: the only Django import is
ValidationError, so forms and models can show the messages beside the right input.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError

Formula = Callable[[Mapping[str, int]], int]

# Form input arrives as text; a leading minus is allowed so "-1" is reported as out of range
# like any other wrong number rather than slipping through as something else.
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
# "0 normal, 1 pink, 2 red": a value, then its words up to the comma before the next value.
_DESCRIPTOR = re.compile(r"(?:^|,\s*)(\d+)\s+(.+?)(?=,\s*\d+\s|$)")
# Items with at most this many values are entered as a row of choices (plans/forms.py).
SMALL_RANGE = 6


@dataclass(frozen=True)
class Item:
    code: str
    label: str
    minimum: int
    maximum: int
    help: str = ""
    in_total: bool = True  # POSAS "overall opinion" is recorded but kept out of the total

    @property
    def message(self) -> str:
        return f"{self.label} must be a whole number from {self.minimum} to {self.maximum}."

    @property
    def values(self) -> range:
        return range(self.minimum, self.maximum + 1)

    @property
    def is_small(self) -> bool:
        """Few enough values to show them all as choices (0-3, 0-5, 1-5), not a number box."""
        return len(self.values) <= SMALL_RANGE

    def descriptors(self) -> dict[int, str]:
        """Each value's words from the help text ("0 normal, 1 pink" -> {0: "normal", ...});
        {} when the help does not describe every value one by one."""
        found = {int(n): words.strip() for n, words in _DESCRIPTOR.findall(self.help)}
        return found if set(found) == set(self.values) else {}


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    plain_name: str
    measures: str
    items: tuple[Item, ...]
    lower_is_better: bool
    min_total: int
    max_total: int
    formula: Formula

    def __post_init__(self):
        # The published ranges are written down separately from the formula on purpose:
        # checking one against the other at import catches a mistyped weight or range.
        codes = [item.code for item in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.code}: duplicate item codes in {codes}")
        lowest = self.formula({item.code: item.minimum for item in self.items})
        highest = self.formula({item.code: item.maximum for item in self.items})
        if (lowest, highest) != (self.min_total, self.max_total):
            raise ValueError(
                f"{self.code}: formula gives {lowest}-{highest}, "
                f"declared {self.min_total}-{self.max_total}"
            )

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(item.code for item in self.items)

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(f"{self.name} has no item {code!r}; items are {', '.join(self.codes)}")

    def validate(self, values: Mapping[str, object]) -> dict[str, int]:
        cleaned: dict[str, int] = {}
        errors: dict[str, list[str]] = {}
        for item in self.items:
            number = _as_int(values.get(item.code))
            if number is None or not item.minimum <= number <= item.maximum:
                errors[item.code] = [item.message]
            else:
                cleaned[item.code] = number
        codes = self.codes  # a tuple built per call: once, not once per key
        unknown = sorted(str(key) for key in values if key not in codes)
        if unknown:
            errors["__all__"] = [
                f"Unknown {self.name} item(s): {', '.join(unknown)}. "
                f"Allowed items: {', '.join(codes)}."
            ]
        if errors:
            raise ValidationError(errors)
        return cleaned

    def points(self, code: str) -> tuple[tuple[int, int], ...]:
        """What each value of one item adds to the total, as (from value, points) steps:
        ((0, 0), (1, 1), (11, 2), (21, 3)) for a Goodman & Baron count. Every formula here is
        a sum of one term per item (tests/test_scales.py checks it), so the live total on the
        log page is the lowest total plus each item's points, without the formula in JS."""
        item = self.item(code)
        lowest = {i.code: i.minimum for i in self.items}
        base = self.formula(lowest)
        steps: list[tuple[int, int]] = []
        for value in item.values:
            added = self.formula({**lowest, code: value}) - base
            if not steps or steps[-1][1] != added:
                steps.append((value, added))
        return tuple(steps)

    def total(self, values: Mapping[str, object]) -> int:
        result = self.formula(self.validate(values))
        # Unreachable while __post_init__ holds and formulas are monotone; a guard, not a rule.
        if not self.min_total <= result <= self.max_total:
            raise AssertionError(f"{self.code} total {result} outside its range")
        return result


def _as_int(value: object) -> int | None:
    # bool is an int subclass, and True would otherwise pass as 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        try:
            return int(value)
        except ValueError:  # more digits than Python will convert
            return None
    return None


def _weighted_sum(weights: Mapping[str, int], score: Callable[[int], int] = int) -> Formula:
    """Sum of weight x score(value); items not named in weights do not count."""

    def formula(values: Mapping[str, int]) -> int:
        return sum(weight * score(values[code]) for code, weight in weights.items())

    return formula


def _count_multiplier(count: int) -> int:
    """Goodman & Baron: 0 scars score nothing, 1-10 x1, 11-20 x2, over 20 x3."""
    if count <= 0:
        return 0
    if count <= 10:
        return 1
    if count <= 20:
        return 2
    return 3


def _sum_of(*formulas: Formula) -> Formula:
    return lambda values: sum(formula(values) for formula in formulas)


def _in_total(items: tuple[Item, ...]) -> Formula:
    return _weighted_sum({item.code: 1 for item in items if item.in_total})


_GAIS_WORDS = {
    1: "very much improved",
    2: "much improved",
    3: "improved",
    4: "no change",
    5: "worse",
}


def gais_label(value: int) -> str:
    """The GAIS words for a rating, lower case, e.g. 2 -> "much improved"."""
    if isinstance(value, bool) or value not in _GAIS_WORDS:
        raise ValueError(f"GAIS ratings are 1 to 5, not {value!r}")
    return _GAIS_WORDS[value]


# --- Goodman & Baron quantitative (2006): (code, label, points per kind) -----------------------
_GB_COUNTED = (
    ("macular", "Macular (erythematous or pigmented)", 1),
    ("mild_atrophic", "Mildly atrophic dish-like", 1),
    ("moderate_atrophic", "Moderately atrophic dish-like", 2),
    ("punched_out_shallow", "Punched-out, shallow base, under 5 mm", 2),
    ("shallow_broad_atrophic", "Shallow broad atrophic areas", 2),
    ("punched_out_deep_normal", "Punched-out, deep normal base, under 5 mm", 3),
    ("punched_out_deep_abnormal", "Punched-out, deep abnormal base, under 5 mm", 3),
    ("linear_troughed", "Linear or troughed", 3),
    ("deep_broad_atrophic", "Deep broad atrophic areas", 3),
    ("papular", "Hyperplastic papular", 2),
)
# Keloids are scored by area, and the area band is itself the multiplier (x1, x2, x3).
_GB_KELOID_POINTS = 6
_GB_MAX_COUNT = 500

_GB_QUANT_ITEMS = (
    *(
        Item(code, label, 0, _GB_MAX_COUNT, f"Number of scars ({points} point kind)")
        for code, label, points in _GB_COUNTED
    ),
    Item(
        "keloid_area_band",
        "Keloid or hypertrophic (area)",
        0,
        3,
        "0 none, 1 under 5 cm², 2 5-20 cm², 3 over 20 cm²",
    ),
)

# --- ECCA (Dreno 2007): (code, label, weight) --------------------------------------------------
_ECCA_KINDS = (
    ("v_atrophic", "V-shaped atrophic, under 2 mm", 15),
    ("u_atrophic", "U-shaped atrophic, 2-4 mm", 20),
    ("m_atrophic", "M-shaped atrophic, over 4 mm", 25),
    ("elastolysis", "Superficial elastolysis", 30),
    ("hypertrophic_recent", "Hypertrophic inflammatory, under 1 year", 40),
    ("keloid_old", "Keloid or hypertrophic, over 1 year", 50),
)
_ECCA_ITEMS = tuple(
    Item(code, label, 0, 3, "0 none, 1 fewer than 5, 2 5-20, 3 more than 20")
    for code, label, _ in _ECCA_KINDS
)

# --- POSAS 2.0 -------------------------------------------------------------------------------
_POSAS_HELP = "1 normal skin, 10 worst imaginable"


def _posas_items(*labels: str) -> tuple[Item, ...]:
    scored = tuple(
        Item(label.lower().replace(" ", "_"), label, 1, 10, _POSAS_HELP) for label in labels
    )
    overall = Item(
        "overall",
        "Overall opinion",
        1,
        10,
        "1 as normal skin, 10 very different; not part of the total",
        in_total=False,
    )
    return (*scored, overall)


_POSAS_OBSERVER_ITEMS = _posas_items(
    "Vascularity", "Pigmentation", "Thickness", "Relief", "Pliability", "Surface area"
)
_POSAS_PATIENT_ITEMS = _posas_items(
    "Pain", "Itching", "Colour", "Stiffness", "Thickness", "Irregularity"
)

_VSS_ITEMS = (
    Item("vascularity", "Vascularity", 0, 3, "0 normal, 1 pink, 2 red, 3 purple"),
    Item("pigmentation", "Pigmentation", 0, 2, "0 normal, 1 hypopigmented, 2 hyperpigmented"),
    Item(
        "pliability",
        "Pliability",
        0,
        5,
        "0 normal, 1 supple, 2 yielding, 3 firm, 4 banding, 5 contracture",
    ),
    Item("height", "Height", 0, 3, "0 flat, 1 under 2 mm, 2 2-5 mm, 3 over 5 mm"),
)

GAIS_WORDS = _GAIS_WORDS  # for reports in plain words

_GAIS_HELP = ", ".join(f"{value} {words}" for value, words in _GAIS_WORDS.items())


def _single_item(code: str, name: str, plain_name: str, measures: str, item: Item) -> Instrument:
    return Instrument(
        code=code,
        name=name,
        plain_name=plain_name,
        measures=measures,
        items=(item,),
        lower_is_better=True,
        min_total=item.minimum,
        max_total=item.maximum,
        formula=_in_total((item,)),
    )


def _gais(code: str, rater: str, plain_rater: str) -> Instrument:
    return _single_item(
        code,
        f"Global Aesthetic Improvement Scale ({rater})",
        f"Overall improvement ({plain_rater})",
        f"How much better the scars look since treatment began, as {plain_rater}.",
        Item("improvement", "Improvement", 1, 5, _GAIS_HELP),
    )


_ALL = (
    _single_item(
        "gb_qualitative",
        "Goodman & Baron qualitative grade",
        "Acne scar severity grade",
        "How visible the acne scars are, from colour changes only to severe.",
        Item(
            "grade",
            "Grade",
            1,
            4,
            "1 macular (colour only), 2 mild (hidden by make-up), "
            "3 moderate (flattens when stretched), 4 severe (does not flatten)",
        ),
    ),
    Instrument(
        code="gb_quantitative",
        name="Goodman & Baron quantitative score",
        plain_name="Acne scar count score",
        measures="How many acne scars of each kind there are, weighted by how severe each kind is.",
        items=_GB_QUANT_ITEMS,
        lower_is_better=True,
        min_total=0,
        max_total=84,
        formula=_sum_of(
            _weighted_sum({code: points for code, _, points in _GB_COUNTED}, _count_multiplier),
            _weighted_sum({"keloid_area_band": _GB_KELOID_POINTS}),
        ),
    ),
    Instrument(
        code="vss",
        name="Vancouver Scar Scale",
        plain_name="Scar appearance score (Vancouver)",
        measures="How red, dark, stiff and raised a scar is.",
        items=_VSS_ITEMS,
        lower_is_better=True,
        min_total=0,
        max_total=13,
        formula=_in_total(_VSS_ITEMS),
    ),
    Instrument(
        code="posas_observer",
        name="POSAS 2.0 observer scale",
        plain_name="Scar score (clinician's view)",
        measures="How different the scar looks and feels from normal skin, rated by the clinician.",
        items=_POSAS_OBSERVER_ITEMS,
        lower_is_better=True,
        min_total=6,
        max_total=60,
        formula=_in_total(_POSAS_OBSERVER_ITEMS),
    ),
    Instrument(
        code="posas_patient",
        name="POSAS 2.0 patient scale",
        plain_name="Scar score (your view)",
        measures="How the scar feels and looks to you: pain, itch, colour, stiffness and shape.",
        items=_POSAS_PATIENT_ITEMS,
        lower_is_better=True,
        min_total=6,
        max_total=60,
        formula=_in_total(_POSAS_PATIENT_ITEMS),
    ),
    Instrument(
        code="ecca",
        name="ECCA (échelle d'évaluation clinique des cicatrices d'acné)",
        plain_name="Acne scar score (ECCA)",
        measures="How many acne scars of each kind there are, weighted by how severe each kind is.",
        items=_ECCA_ITEMS,
        lower_is_better=True,
        min_total=0,
        max_total=540,
        formula=_weighted_sum({code: weight for code, _, weight in _ECCA_KINDS}),
    ),
    _gais("gais_clinician", "clinician", "judged by your clinician"),
    _gais("gais_patient", "patient", "judged by you"),
    _single_item(
        "pain",
        "Pain during the session",
        "Pain during treatment",
        "How much the treatment hurt, from 0 (none) to 10 (worst imaginable).",
        Item("pain", "Pain", 0, 10, "0 no pain, 10 worst imaginable pain"),
    ),
)

INSTRUMENTS: dict[str, Instrument] = {instrument.code: instrument for instrument in _ALL}
CHOICES: list[tuple[str, str]] = [(code, inst.name) for code, inst in INSTRUMENTS.items()]


# Rated per session (improvement, pain): they have no baseline to compare with.
PER_SESSION = frozenset({"gais_clinician", "gais_patient", "pain"})


def get(code: str) -> Instrument:
    try:
        return INSTRUMENTS[code]
    except KeyError:
        raise ValueError(
            f"Unknown instrument {code!r}; allowed: {', '.join(INSTRUMENTS)}"
        ) from None
