"""Clinical safety rules as pure functions: facts in, findings out.

Loading the facts from the database and storing each clinic's rule settings happen elsewhere, so
that every rule can be tested, and shown on the help page, without a database.
"""

import calendar
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

logger = logging.getLogger(__name__)


class Action(StrEnum):
    BLOCK = "block"
    WARN = "warn"
    INFORM = "inform"


@dataclass(frozen=True)
class FlagPeriod:
    kind: str
    start: date | None  # None: since before records began
    end: date | None  # None: still ongoing

    def active_on(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class ConsentPeriod:
    """A signed treatment consent: in force from signing until withdrawn or past its expiry."""

    signed_on: date
    withdrawn_on: date | None = None  # no longer in force from this day
    expires_on: date | None = None  # the last day it is in force

    def in_force_on(self, day: date) -> bool:
        return (
            self.signed_on <= day
            and (self.withdrawn_on is None or day < self.withdrawn_on)
            and (self.expires_on is None or day <= self.expires_on)
        )


@dataclass(frozen=True)
class TreatmentFacts:
    code: str
    name: str
    category: str
    peel_depth: str = ""  # "" means it depends on the agent used in the session
    contains_salicylate: bool = False
    needs_clear_skin: bool = False
    in_office: bool = True
    min_interval_days: int | None = None


@dataclass(frozen=True)
class OtherSession:
    on: date
    treatment: TreatmentFacts


@dataclass(frozen=True)
class SafetyContext:
    on: date
    treatment: TreatmentFacts
    fitzpatrick: int | None = None
    # False when the patient's skin type is recorded as "not yet assessed".
    fitzpatrick_assessed: bool = True
    acne_level: str = ""
    acne_recorded_on: date | None = None  # the date of the record acne_level comes from
    flags: tuple[FlagPeriod, ...] = ()
    parameters: Mapping[str, object] = field(default_factory=dict)
    other_sessions: tuple[OtherSession, ...] = ()
    # The patient's treatment consents; None when the caller does not check consent.
    treatment_consents: tuple[ConsentPeriod, ...] | None = None


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    action: Action
    message: str

    @property
    def blocks(self) -> bool:
        return self.action == Action.BLOCK


@dataclass(frozen=True)
class RuleSetting:
    action: Action
    enabled: bool = True
    window: int | None = None  # None: the rule's default


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    default_action: Action
    window_unit: str
    default_window: int | None
    description: str
    check: Callable[[SafetyContext, int | None], str | None]


ACTIVE_ACNE = frozenset({"mild", "moderate", "severe"})
LASERS = frozenset({"vascular_laser", "ablative_laser"})
SALICYLATE_AGENTS = {
    "salicylic": "salicylic acid",
    "jessner": "Jessner's solution, which contains salicylic acid",  # 14% salicylic acid
}
SUPERFICIAL_AGENTS = frozenset({"glycolic", "salicylic", "lactic", "jessner", "mandelic"})
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
FLAG_NAMES = {
    "isotretinoin": "Isotretinoin",
    "pregnancy": "Pregnancy",
    "breastfeeding": "Breastfeeding",
    "salicylate_allergy": "Salicylate/aspirin allergy",
    "keloid_history": "Keloid history",
    "anticoagulant": "Anticoagulant use",
    "bleeding_disorder": "Bleeding disorder",
    "herpes_simplex": "Herpes simplex history",
}


def _agent(parameters: Mapping) -> str:
    return str(parameters.get("agent") or "").strip().lower()


def _concentration(parameters: Mapping) -> float | None:
    """The concentration as a number, or None when missing or not a number."""
    value = parameters.get("concentration")
    if isinstance(value, bool):  # bool is an int subclass, but True is not "1 %"
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))  # forms and JSON may keep "35" or "35%"
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def peel_depth(treatment: TreatmentFacts, parameters: Mapping) -> str:
    """The peel's depth from the catalogue, else from the agent; "" when unknown."""
    if treatment.peel_depth:
        return treatment.peel_depth
    agent = _agent(parameters)
    if agent == "tca":
        concentration = _concentration(parameters)
        if concentration is None:
            return ""
        if concentration >= 50:
            return "deep"
        return "medium" if concentration >= 35 else "superficial"
    if agent == "phenol":
        return "deep"
    return "superficial" if agent in SUPERFICIAL_AGENTS else ""


def involves_salicylate(treatment: TreatmentFacts, parameters: Mapping) -> bool:
    return treatment.contains_salicylate or _agent(parameters) in SALICYLATE_AGENTS


def add_months(day: date, months: int) -> date:
    """Calendar months later, on the same day or the month's last day if shorter; a date past
    the calendar's end is its last day (an end "never" is still never)."""
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    if year > date.max.year:
        return date.max
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(day.day, last_day))


def _active(ctx: SafetyContext, *kinds: str) -> FlagPeriod | None:
    return next((f for f in ctx.flags if f.kind in kinds and f.active_on(ctx.on)), None)


def _recorded(flag: FlagPeriod, on: date) -> str:
    """E.g. "Pregnancy (from 2026-01-10, ongoing) is recorded on 2026-05-01"."""
    if flag.start and flag.end:
        period = f"from {flag.start} to {flag.end}"
    elif flag.start:
        period = f"from {flag.start}, ongoing"
    elif flag.end:
        period = f"until {flag.end}"
    else:
        period = "ongoing"
    return f"{FLAG_NAMES.get(flag.kind, flag.kind)} ({period}) is recorded on {on}"


def _depth_label(ctx: SafetyContext) -> str:
    return peel_depth(ctx.treatment, ctx.parameters) or "depth unknown"


def _breakout(ctx: SafetyContext, window: int | None) -> str | None:
    """Treat all active blemishes before in-office treatments that need clear skin."""
    t = ctx.treatment
    level = ctx.acne_level.strip().lower()
    if not (t.needs_clear_skin and t.in_office and level in ACTIVE_ACNE):
        return None
    since = f" since {ctx.acne_recorded_on}" if ctx.acne_recorded_on else ""
    return (
        f"Acne is recorded as {level}{since} (session on {ctx.on}): {t.name} needs clear "
        "skin. Treat the breakout first, or record that it has cleared."
    )


def _isotretinoin_caveat(ctx: SafetyContext) -> str | None:
    """None when the treatment is safe after isotretinoin (ASDS 2017), else a caveat."""
    category = ctx.treatment.category
    if category in {"microneedling", "ablative_laser"}:
        return ""
    if category == "peel":
        depth = peel_depth(ctx.treatment, ctx.parameters)
        if depth in {"medium", "deep"}:
            return ""
        if depth == "":
            return " unless this is a superficial peel"
    return None


def _isotretinoin(ctx: SafetyContext, window: int | None) -> str | None:
    """Microneedling, medium/deep peels and ablative lasers soon after isotretinoin (ASDS 2017)."""
    months = window or 0
    caveat = _isotretinoin_caveat(ctx)
    if caveat is None:
        return None
    relevant = [
        f
        for f in ctx.flags
        if f.kind == "isotretinoin"
        and (f.start is None or f.start <= ctx.on)
        and (f.end is None or ctx.on <= add_months(f.end, months))
    ]
    if not relevant:
        return None
    latest = max(relevant, key=lambda f: f.end or date.max)
    risk = f"{ctx.treatment.name} risks poor healing and scarring{caveat}."
    if latest.end is None:
        wait = f"Consider waiting until {months} months after the course ends."
    else:
        wait = f"Consider waiting until after {add_months(latest.end, months)}."
    if latest.end is not None and latest.end < ctx.on:
        facts = f"Isotretinoin course ended {latest.end}, within {months} months of {ctx.on}"
    else:
        facts = _recorded(latest, ctx.on)
    return f"{facts}: {risk} {wait}"


def _salicylate_source(ctx: SafetyContext) -> str:
    if ctx.treatment.contains_salicylate:
        return f"{ctx.treatment.name} contains salicylic acid"
    return f"{ctx.treatment.name} uses {SALICYLATE_AGENTS[_agent(ctx.parameters)]}"


def _pregnancy(ctx: SafetyContext, window: int | None) -> str | None:
    """No salicylic acid, Jessner's solution included, in pregnancy or breastfeeding."""
    flag = _active(ctx, "pregnancy", "breastfeeding")
    if flag is None or not involves_salicylate(ctx.treatment, ctx.parameters):
        return None
    return (
        f"{_recorded(flag, ctx.on)}: {_salicylate_source(ctx)}. "
        "Use an agent without salicylic acid."
    )


def _salicylate_allergy(ctx: SafetyContext, window: int | None) -> str | None:
    """No salicylic acid, Jessner's solution included, with a salicylate/aspirin allergy."""
    flag = _active(ctx, "salicylate_allergy")
    if flag is None or not involves_salicylate(ctx.treatment, ctx.parameters):
        return None
    return f"{_recorded(flag, ctx.on)}: {_salicylate_source(ctx)}. Choose another agent."


def _consent(ctx: SafetyContext, window: int | None) -> str | None:
    """In-office treatments need a signed treatment consent in force on the session's date."""
    consents = ctx.treatment_consents
    if consents is None or not ctx.treatment.in_office:
        return None
    if any(c.in_force_on(ctx.on) for c in consents):
        return None
    latest = max(consents, key=lambda c: c.signed_on, default=None)
    if latest is None:
        state = "No treatment consent is on file"
    elif latest.signed_on > ctx.on:
        state = f"The treatment consent was signed on {latest.signed_on}, after {ctx.on}"
    elif latest.withdrawn_on is not None and latest.withdrawn_on <= ctx.on:
        state = f"The treatment consent was withdrawn on {latest.withdrawn_on}"
    else:
        state = f"The treatment consent expired on {latest.expires_on}"
    return (
        f"{state}: {ctx.treatment.name} on {ctx.on} needs the patient's signed treatment "
        "consent. Record it on the patient's page first."
    )


def _pigmentation_risk(ctx: SafetyContext) -> str | None:
    """What carries a pigmentation risk in skin types IV-VI (None when nothing does)."""
    t = ctx.treatment
    if t.category == "peel":
        if peel_depth(t, ctx.parameters) == "superficial":
            return None
        return f"{t.name} ({_depth_label(ctx)})"
    if t.category in LASERS or t.category == "cryotherapy":
        return t.name
    return None


def _fitzpatrick_unassessed(ctx: SafetyContext, window: int | None) -> str | None:
    """Skin type not yet assessed before a treatment whose risk depends on it."""
    if ctx.fitzpatrick_assessed:
        return None
    what = _pigmentation_risk(ctx)
    if what is None:
        return None
    return (
        f"Fitzpatrick skin type is not yet assessed: {what} carries a risk of "
        "post-inflammatory hyperpigmentation in types IV-VI. Assess the skin type first."
    )


def _pigmentation(ctx: SafetyContext, window: int | None) -> str | None:
    """Skin types IV-VI: pigmentation risk with medium/deep peels, lasers, cryotherapy."""
    if ctx.fitzpatrick not in {4, 5, 6}:
        return None
    what = _pigmentation_risk(ctx)
    if what is None:
        return None
    return (
        f"Fitzpatrick skin type {ROMAN[ctx.fitzpatrick]}: {what} carries a risk of "
        "post-inflammatory hyperpigmentation. Consider a test spot first."
    )


def _keloid(ctx: SafetyContext, window: int | None) -> str | None:
    """Microneedling and peels can provoke keloids in patients who form them."""
    flag = _active(ctx, "keloid_history")
    if flag is None or ctx.treatment.category not in {"microneedling", "peel"}:
        return None
    return f"{_recorded(flag, ctx.on)}: {ctx.treatment.name} can provoke new keloids."


def _bleeding(ctx: SafetyContext, window: int | None) -> str | None:
    """Microneedling with anticoagulants or a bleeding disorder."""
    flag = _active(ctx, "anticoagulant", "bleeding_disorder")
    if flag is None or ctx.treatment.category != "microneedling":
        return None
    return (
        f"{_recorded(flag, ctx.on)}: {ctx.treatment.name} may cause prolonged bleeding "
        "and bruising."
    )


def _herpes(ctx: SafetyContext, window: int | None) -> str | None:
    """Herpes simplex history: consider antiviral prophylaxis before peels and lasers."""
    flag = _active(ctx, "herpes_simplex")
    if flag is None or ctx.treatment.category not in {"peel", *LASERS}:
        return None
    return (
        f"{_recorded(flag, ctx.on)}: {ctx.treatment.name} can reactivate it. "
        "Consider antiviral prophylaxis."
    )


def _interval(ctx: SafetyContext, window: int | None) -> str | None:
    """Sessions of one treatment closer than its catalogue interval (a window here overrides)."""
    minimum = window if window is not None else ctx.treatment.min_interval_days
    if not minimum:
        return None
    too_close = [
        s
        for s in ctx.other_sessions
        if s.treatment.code == ctx.treatment.code and abs((s.on - ctx.on).days) < minimum
    ]
    if not too_close:
        return None
    nearest = min(too_close, key=lambda s: (abs((s.on - ctx.on).days), s.on))
    gap = abs((nearest.on - ctx.on).days)
    return (
        f"Another {ctx.treatment.name} session is on {nearest.on}, {gap} days from {ctx.on}: "
        f"the minimum interval is {minimum} days."
    )


def _peel_then_needling(ctx: SafetyContext, window: int | None) -> str | None:
    """A chemical peel within the window before microneedling; same day is allowed."""
    days = window or 0
    # Same day is excluded: a same-day combined protocol is a deliberate plan.
    if ctx.treatment.category == "microneedling":
        peel = _nearest(ctx, "peel", ctx.on - timedelta(days), ctx.on - timedelta(1))
        if peel is not None:
            return _too_close(peel.treatment.name, peel.on, ctx.treatment.name, ctx.on, days)
    elif ctx.treatment.category == "peel":
        later = _nearest(ctx, "microneedling", ctx.on + timedelta(1), ctx.on + timedelta(days))
        if later is not None:
            return _too_close(ctx.treatment.name, ctx.on, later.treatment.name, later.on, days)
    return None


def _nearest(ctx: SafetyContext, category: str, first: date, last: date) -> OtherSession | None:
    inside = [
        s for s in ctx.other_sessions if s.treatment.category == category and first <= s.on <= last
    ]
    return min(inside, key=lambda s: abs((s.on - ctx.on).days), default=None)


def _too_close(peel: str, peel_on: date, needling: str, needling_on: date, days: int) -> str:
    return (
        f"{peel} on {peel_on} is within {days} days before {needling} on {needling_on}: "
        "let the skin recover from the peel first."
    )


def _rule(code: str, title: str, action: Action, check: Callable, unit="", window=None) -> Rule:
    """A table row; the check's docstring is the rule's line on the help page."""
    return Rule(code, title, action, unit, window, check.__doc__ or "", check)


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        _rule("treatment_consent", "Treatment consent", Action.BLOCK, _consent),
        _rule("active_breakout", "Active breakout", Action.BLOCK, _breakout),
        _rule(
            "isotretinoin_recent", "Recent isotretinoin", Action.WARN, _isotretinoin, "months", 6
        ),
        _rule("pregnancy_salicylic", "Salicylic acid in pregnancy", Action.BLOCK, _pregnancy),
        _rule("salicylate_allergy", "Salicylate allergy", Action.BLOCK, _salicylate_allergy),
        _rule("fitzpatrick_pih", "Pigmentation risk", Action.WARN, _pigmentation),
        _rule(
            "fitzpatrick_unassessed",
            "Skin type not assessed",
            Action.WARN,
            _fitzpatrick_unassessed,
        ),
        _rule("keloid_history", "Keloid history", Action.WARN, _keloid),
        _rule("anticoagulant", "Bleeding risk", Action.WARN, _bleeding),
        _rule("herpes_simplex", "Herpes simplex history", Action.INFORM, _herpes),
        _rule("min_interval", "Too soon after the same treatment", Action.WARN, _interval, "days"),
        _rule(
            "peel_before_microneedling",
            "Peel shortly before microneedling",
            Action.WARN,
            _peel_then_needling,
            "days",
            14,
        ),
    )
}

_SEVERITY = {Action.BLOCK: 0, Action.WARN: 1, Action.INFORM: 2}


def evaluate(
    ctx: SafetyContext, settings: Mapping[str, RuleSetting] | None = None
) -> list[Finding]:
    """Every enabled rule's finding, blocks first, then warnings, then information."""
    settings = settings or {}
    findings = []
    for rule in RULES.values():
        setting = settings.get(rule.code)
        if setting is not None and not setting.enabled:
            continue
        window = rule.default_window
        if setting is not None and setting.window is not None:
            window = setting.window
        try:
            message = rule.check(ctx, window)
        except Exception:
            # A rule that cannot be evaluated (a damaged record, a date at the calendar's end)
            # must not hide a risk nor take the page down: it blocks until someone checks.
            logger.exception("Safety rule %s could not be evaluated for %s", rule.code, ctx.on)
            findings.append(Finding(rule.code, rule.title, Action.BLOCK, _could_not_check(rule)))
            continue
        if message:
            action = Action(setting.action) if setting is not None else rule.default_action
            findings.append(Finding(rule.code, rule.title, action, message))
    return sorted(findings, key=lambda f: _SEVERITY[f.action])


def _could_not_check(rule: Rule) -> str:
    return (
        f"Could not check: {rule.title}. A record this rule reads (a medical flag, acne record "
        "or session date) could not be evaluated. Check the patient's record before going ahead."
    )
