"""Validate a session's parameters against its treatment's parameter definitions."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from clinic.validators import refuse_nul

YES = {"yes", "true", "1", "on"}
NO = {"no", "false", "0", "off"}


def clean_value(definition, raw):
    """One parameter's value, normalised; raises ValidationError naming the parameter."""
    label = definition.label
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if definition.required:
            raise ValidationError(f"{label} is required.")
        return None
    kind = definition.kind
    if kind == "number":
        return _clean_number(definition, raw)
    if kind == "choice":
        value = str(raw).strip()
        allowed = definition.choice_list
        if value not in allowed:
            raise ValidationError(f"{label} must be one of: {', '.join(allowed)}.")
        return value
    if kind == "yes_no":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in YES | NO:
            return text in YES
        raise ValidationError(f"{label} must be yes or no.")
    # Free text, from a form or from JSON typed in the admin: PostgreSQL refuses NUL in it.
    return refuse_nul(str(raw).strip(), label)


def _clean_number(definition, raw):
    low, high, unit = definition.min_value, definition.max_value, definition.unit
    span = _range_text(low, high, unit)
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        number = Decimal(str(raw).strip().replace(",", "."))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ValidationError(f"{definition.label} must be a number{span}.") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValidationError(f"{definition.label} must be{span}.")
    # JSON keeps floats; integral values stay ints so they read as typed.
    return int(number) if number == number.to_integral_value() else float(number)


def _range_text(low, high, unit):
    unit = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f" from {_fmt(low)} to {_fmt(high)}{unit}"
    if low is not None:
        return f" of at least {_fmt(low)}{unit}"
    if high is not None:
        return f" of at most {_fmt(high)}{unit}"
    return ""


def _fmt(number):
    return format(number.normalize(), "f")


def clean_parameters(definitions, values, *, prefix="", partial=False):
    """All parameters of one treatment: returns {code: value}; errors keyed by code.

    `partial` checks only the values given (planned values before the session is done).
    """
    cleaned, errors = {}, {}
    known = set()
    for definition in definitions:
        known.add(definition.code)
        if partial and definition.code not in values:
            continue
        try:
            value = clean_value(definition, values.get(definition.code))
        except ValidationError as exc:
            errors[prefix + definition.code] = exc.messages
            continue
        if value is not None:
            cleaned[definition.code] = value
    unknown = sorted(set(values) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        errors[prefix + "__all__"] = [
            f"Unknown parameter(s) {', '.join(unknown)}; this treatment logs: {allowed}."
        ]
    if errors:
        raise ValidationError(errors)
    return cleaned
