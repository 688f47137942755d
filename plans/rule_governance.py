"""Changing a safety rule is clinical governance: what a change will stop checking, in plain
words for the confirmation page, and which block rules are switched off.

The wording is plain Python so that it is tested without HTTP; the admin only shows it.
"""

from dataclasses import dataclass

from django.db.models import Q

from plans import safety


@dataclass(frozen=True)
class Choice:
    """A rule setting's governed values: what a change to the rule is about."""

    action: str
    enabled: bool
    window: int | None


def fingerprint(before: Choice, after: Choice) -> str:
    """The change a confirmation was given for; a different change must be confirmed anew."""
    return ">".join(f"{c.action}|{c.enabled}|{c.window}" for c in (before, after))


def consequences(code: str, before: Choice, after: Choice) -> list[str]:
    """What the change from before to after means for the sessions it checks, one line each."""
    rule = safety.RULES.get(code)
    title = f"“{rule.title if rule else code}”"
    lines = []
    if before.enabled and not after.enabled:
        lines.append(f"{title} will no longer be checked: {_not_checked(before.action)}.")
    elif after.enabled and not before.enabled:
        lines.append(f"{title} will be checked again: {_checked(after.action)}.")
    if before.action != after.action:
        if after.enabled:
            lines.append(f"{title} {_action_change(before.action, after.action)}.")
        else:
            lines.append(
                f"Its action changes from {before.action} to {after.action}, "
                "for when it is switched on again."
            )
    if before.window != after.window:
        lines.append(_window_change(rule, before.window, after.window))
    return lines


def is_block_rule(code: str, action: str) -> bool:
    """A rule that blocks by default, or that this clinic set to block."""
    rule = safety.RULES.get(code)
    return action == safety.Action.BLOCK or (
        rule is not None and rule.default_action == safety.Action.BLOCK
    )


def disabled_block_rules():
    """The switched-off block rules (one query), for the managers' alert."""
    from plans.models import SafetyRuleSetting

    default_block = [c for c, r in safety.RULES.items() if r.default_action == safety.Action.BLOCK]
    return list(
        SafetyRuleSetting.objects.filter(enabled=False)
        .filter(Q(action=safety.Action.BLOCK) | Q(rule__in=default_block))
        .order_by("rule")
    )


def _not_checked(action: str) -> str:
    if action == safety.Action.INFORM:
        return "staff will no longer see a note for it"
    if action == safety.Action.WARN:
        return "no session will be warned for it"
    return "no session will be blocked or warned for it"


def _checked(action: str) -> str:
    return {
        safety.Action.BLOCK: "a session it finds is blocked unless someone writes an override",
        safety.Action.WARN: "a session it finds shows a warning",
    }.get(action, "a session it finds shows a note")


_VERB = {"block": "blocking", "warn": "warning", "inform": "only informing"}


def _action_change(old: str, new: str) -> str:
    instead = f"instead of {_VERB.get(old, old)}"
    if new == safety.Action.BLOCK:
        return f"will block {instead}: a session it finds goes ahead only with a written override"
    if new == safety.Action.WARN:
        if old == safety.Action.BLOCK:
            return f"will warn {instead}: staff can go ahead without a written override"
        return f"will warn {instead}"
    if old == safety.Action.BLOCK:
        return (
            f"will only inform {instead}: staff see a note and can go ahead without a written "
            "override"
        )
    return f"will only inform {instead}: staff see a note, not a warning"


def _window_change(rule: safety.Rule | None, old: int | None, new: int | None) -> str:
    unit = rule.window_unit if rule else ""
    default = rule.default_window if rule else None
    line = (
        f"The time window changes from {_window(old, unit, default)} "
        f"to {_window(new, unit, default)}"
    )
    old_value = default if old is None else old
    new_value = default if new is None else new
    if old_value is not None and new_value is not None and new_value < old_value:
        return f"{line}: a shorter window flags fewer sessions."
    if old_value is not None and new_value is not None and new_value > old_value:
        return f"{line}: a longer window flags more sessions."
    return f"{line}."


def _window(value: int | None, unit: str, default: int | None) -> str:
    if value is None:
        if default is None:
            return "the rule's default"
        return f"{_amount(default, unit)} (the rule's default)"
    return _amount(value, unit)


def _amount(value: int, unit: str) -> str:
    if not unit:
        return str(value)
    return f"{value} {unit[:-1] if value == 1 and unit.endswith('s') else unit}"


def disabled_block_rules_for(user):
    """The switched-off block rules for someone who may switch them on again; else none."""
    if not user.has_perm("plans.change_safetyrulesetting"):
        return []
    return disabled_block_rules()
