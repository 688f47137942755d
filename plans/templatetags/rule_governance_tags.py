"""The switched-off block rules for the admin index, which has no view of ours to pass them."""

from django import template

from plans import rule_governance

register = template.Library()


@register.simple_tag
def disabled_block_rules_for(user):
    """The switched-off block rules if the user may switch them on again; else none."""
    return rule_governance.disabled_block_rules_for(user)
