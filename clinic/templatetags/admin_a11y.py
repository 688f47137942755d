"""Accessible names for the admin's tabular inlines (WCAG 1.3.1, 4.1.2).

Django's tabular inline shows each field's label once, in a column heading, and renders the
row's inputs without a <label>: a screen reader announces "edit text" and axe reports
`label`/`select-name`. Each widget gets an aria-label naming its column and row instead.
"""

from django import template
from django.utils.text import capfirst

register = template.Library()


@register.simple_tag
def labelled_widget(bound_field, row):
    """The bound field's widget with aria-label "<Column> (row N)"."""
    name = f"{capfirst(bound_field.label)} (row {row})"
    return bound_field.as_widget(attrs={"aria-label": name})


@register.simple_tag
def labelled_delete(bound_field, row):
    """The inline row's Delete checkbox, named for its row."""
    return bound_field.as_widget(attrs={"aria-label": f"Delete row {row}"})
