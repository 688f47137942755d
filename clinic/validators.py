"""Validators shared by every app's models and forms."""

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
