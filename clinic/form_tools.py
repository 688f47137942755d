"""Form pieces every app uses so that no input a user can send is a server error (issue 11.4).

- Formsets have a ceiling: a page that claims 100,000 rows in TOTAL_FORMS builds at most
  ABSOLUTE_MAX_ROWS forms and says how many are allowed.
- JSON typed in the admin is parsed at any nesting depth without a RecursionError.
- Text read straight from request.POST (not through a form field) is checked for NUL characters
  with `text_problem`, which names the field.
"""

from django import forms
from django.core.exceptions import ValidationError

from clinic.validators import refuse_nul

MAX_ROWS = 10  # rows a person adds on one page at a time
ABSOLUTE_MAX_ROWS = 20  # forms built at most, whatever TOTAL_FORMS claims


def row_limits(max_num=MAX_ROWS, absolute_max=ABSOLUTE_MAX_ROWS):
    """formset_factory arguments for a ceiling that is checked, not only shown."""
    return {"max_num": max_num, "absolute_max": absolute_max, "validate_max": True}


class LimitedFormSetMixin:
    """A formset whose too-many message names its rows: set `rows_label` ("Adverse events")."""

    rows_label = "Rows"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_messages = {
            **self.error_messages,
            "too_many_forms": f"{self.rows_label}: at most %(num)d at a time.",
        }


class LimitedFormSet(LimitedFormSetMixin, forms.BaseFormSet):
    pass


class SafeJSONField(forms.JSONField):
    """forms.JSONField that answers JSON nested too deeply to parse as invalid, not a 500."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(
                "Enter a valid JSON: this is nested too deeply.", code="invalid"
            ) from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


def text_problem(value, field):
    """The message for text with a NUL character in it (naming `field`), else None."""
    try:
        refuse_nul(value, field)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return None
