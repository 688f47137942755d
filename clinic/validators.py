"""Validators shared by every app's models and forms."""

import math
from datetime import date, datetime

from django.core.exceptions import ValidationError

# Every date a user can send lies in this range. Nothing clinical happens outside it, and date
# arithmetic on a day near date.max (a flag "ending" 9999-12-31, a week after it) overflows.
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2100, 12, 31)


def validate_clinic_date(value):
    """Refuse a date (or a date and time) outside DATE_MIN..DATE_MAX, naming the range."""
    if value is not None and not in_clinic_range(value):
        raise ValidationError(
            "Enter a date from %(first)s to %(last)s.",
            code="date_out_of_range",
            params={"first": f"{DATE_MIN:%d/%m/%Y}", "last": f"{DATE_MAX:%d/%m/%Y}"},
        )


def in_clinic_range(value) -> bool:
    if isinstance(value, datetime):
        value = value.date()
    return value is not None and DATE_MIN <= value <= DATE_MAX


def date_range_text() -> str:
    """'from 01/01/1900 to 31/12/2100', for messages that name the dates allowed."""
    return f"from {DATE_MIN:%d/%m/%Y} to {DATE_MAX:%d/%m/%Y}"


# --- text and JSON a user can send (issue 11.4) --------------------------------------------
# PostgreSQL refuses a NUL character in text and in jsonb; SQLite would store it. Both are
# refused here, with the field's name, before anything reaches the database.

NUL_MESSAGE = "%(field)s can’t contain null characters: type it again without them."


def refuse_nul(value, field):
    """Raise a ValidationError naming `field` when text holds a NUL character."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError(NUL_MESSAGE, code="null_characters", params={"field": field})
    return value


def validate_json_object(value, field, example="{}"):
    """A JSON object ({...}) whose keys and texts hold no NUL and whose numbers are finite."""
    if not isinstance(value, dict):
        raise ValidationError(
            "%(field)s must be a JSON object, e.g. %(example)s (use {} for none).",
            code="not_an_object",
            params={"field": field, "example": example},
        )
    pending = [value]
    while pending:  # iterative: any depth json.loads accepted is walked without recursion
        item = pending.pop()
        if isinstance(item, dict):
            for key in item:
                refuse_nul(key, field)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            refuse_nul(item, field)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(
                "%(field)s must not contain NaN or Infinity.",
                code="not_finite",
                params={"field": field},
            )
    return value
