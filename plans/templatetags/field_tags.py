"""`{{ field|as_field }}`: crispy-forms' bootstrap5 field markup, built in Python.

The session log page has about seventy fields; rendering each through crispy's field
template took most of the page's time. This filter produces the same HTML (wrapper ids,
labels, asterisks, widget classes, errors, help text) for the plain widgets those forms use
and hands any other widget (radio lists, multi-widgets, a file with a current value) to
crispy itself. tests/test_page_speed.py compares the two on every field of the page.
"""

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms, template
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

_LEFT_TO_CRISPY = (forms.RadioSelect, forms.CheckboxSelectMultiple, forms.MultiWidget)


def _classes(widget, extra):
    """The widget's class attribute as crispy's `crispy_field` tag leaves it."""
    name = widget.__class__.__name__.lower()
    css = widget.attrs.get("class", "")
    if css:
        if css.find(name) == -1:
            css += f" {name}"
    else:
        css = name
    words = css.split()
    for word in extra.split():
        if word not in words:
            words.append(word)
            css += f" {word}"
    return css


def _widget(field, css):
    """The widget with crispy's classes, and its hidden initial copy like str(field) adds."""
    html = _fast_widget(field, css)
    if html is None:
        html = field.as_widget(attrs={"class": css})
    if field.field.show_hidden_initial:
        html += field.as_hidden(only_initial=True)
    return html


_INPUTS = {
    f"django/forms/widgets/{kind}.html"
    for kind in ("text", "number", "date", "time", "email", "url", "checkbox", "input")
}


def _fast_widget(field, css):
    """Django's own input, select and textarea templates, written out in Python.

    The same context (widget.get_context) and the same HTML; None for any other widget,
    which then renders through its template as usual.
    """
    widget = field.field.widget
    select = (
        widget.template_name == "django/forms/widgets/select.html"
        and widget.option_template_name == "django/forms/widgets/select_option.html"
        and not widget.allow_multiple_selected
    )
    textarea = widget.template_name == "django/forms/widgets/textarea.html"
    if not (select or textarea or widget.template_name in _INPUTS) or field.field.localize:
        return None
    # What BoundField.as_widget passes on.
    attrs = field.build_widget_attrs({"class": css}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    data = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    if select:
        options = []
        for group_name, group, _ in data["optgroups"]:
            if group_name:
                options.append(format_html('\n  <optgroup label="{}">', group_name))
            for option in group:
                options.append(
                    format_html(
                        '\n  <option value="{}"{}>{}</option>',
                        str(option["value"]),
                        _attrs(option["attrs"]),
                        option["label"],
                    )
                )
            if group_name:
                options.append(mark_safe("\n  </optgroup>"))  # nosec B308 B703: constant markup, or format_html output with escaped parts
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            data["name"],
            _attrs(data["attrs"]),
            mark_safe("".join(options)),  # nosec B308 B703: constant markup, or format_html output with escaped parts
        )
    if textarea:
        return format_html(
            '<textarea name="{}"{}>\n{}</textarea>',
            data["name"],
            _attrs(data["attrs"]),
            data["value"] or "",
        )
    value = "" if data["value"] is None else format_html(' value="{}"', str(data["value"]))
    return format_html(
        '<input type="{}" name="{}"{}{}>', data["type"], data["name"], value, _attrs(data["attrs"])
    )


def _attrs(attrs):
    """django/forms/widgets/attrs.html."""
    return mark_safe(  # nosec B308 B703: constant markup, or format_html output with escaped parts
        "".join(
            f" {conditional_escape(name)}"
            + ("" if value is True else f'="{conditional_escape(str(value))}"')
            for name, value in attrs.items()
            if value is not False
        )
    )


def _label_text(field):
    star = mark_safe('<span class="asteriskField">*</span>') if field.field.required else ""  # nosec B308 B703: constant markup, or format_html output with escaped parts
    return format_html("{}{}", field.label, star)


def _help_and_errors(field):
    errors = ""
    if field.errors:
        errors = format_html(
            '<div id="{}_error" class="invalid-feedback">{}</div>',
            field.errors.field_id,
            format_html_join(
                "",
                '<p id="error_{}_{}"><strong>{}</strong></p>',
                ((i, field.auto_id, e) for i, e in enumerate(field.errors, 1)),
            ),
        )
    help_text = ""
    if field.help_text:
        # Escaped unless already safe: a help text built from catalogue fields stays text.
        ident = format_html('id="{}_helptext" ', field.auto_id) if field.auto_id else ""
        help_text = format_html(
            '<div {}class="form-text">{}</div>', ident, conditional_escape(field.help_text)
        )
    return format_html("{}{}", errors, help_text)


@register.filter
def as_field(field):
    """One bound field in crispy's bootstrap5 markup, without its template machinery."""
    widget = field.field.widget
    if field.is_hidden:
        return field.as_widget()
    if (
        isinstance(widget, _LEFT_TO_CRISPY)
        or getattr(field, "use_fieldset", False)
        or (isinstance(widget, forms.FileInput) and field.value())
    ):
        return as_crispy_field(field)
    invalid = " is-invalid" if field.errors else ""
    css = field.css_classes()
    wrapper_extra = f" {css}" if css else ""
    if isinstance(widget, forms.CheckboxInput):
        control = _widget(field, _classes(widget, "form-check-input" + invalid))
        required = " requiredField" if field.field.required else ""
        return format_html(
            '<div class="mb-3"><div id="div_{}" class="form-check{}">{}'
            '<label for="{}" class="form-check-label{}">{}</label>{}</div></div>',
            field.auto_id,
            wrapper_extra,
            control,
            field.id_for_label,
            required,
            _label_text(field),
            _help_and_errors(field),
        )
    label = ""
    if field.label:
        label = format_html(
            '<label {}class="form-label{}">{}</label>',
            format_html('for="{}" ', field.id_for_label) if field.id_for_label else "",
            " requiredField" if field.field.required else "",
            _label_text(field),
        )
    if isinstance(widget, forms.FileInput):
        control = _file_input(field, widget, invalid)
    else:
        kind = "form-select" if isinstance(widget, forms.Select) else "form-control"
        control = format_html(
            "{}{}",
            _widget(field, _classes(widget, kind + invalid)),
            _help_and_errors(field),
        )
    return format_html(
        '<div id="div_{}" class="mb-3{}">{}{}</div>', field.auto_id, wrapper_extra, label, control
    )


def _file_input(field, widget, invalid):
    """crispy's field_file.html for a file input with no current file."""
    subwidget = next(iter(field.subwidgets))
    data = subwidget.data
    attrs = dict(data["attrs"])
    extra = attrs.pop("class", "")
    css = "form-control" + (f" {extra}" if extra else "") + invalid
    rendered = _attrs(attrs)
    return format_html(
        '<div{}><input type="{}" name="{}" class="{}"{}{}>{}</div>',
        mark_safe(' class="is-invalid"') if field.errors else "",  # nosec B308 B703: constant markup, or format_html output with escaped parts
        data["type"],
        data["name"],
        css,
        mark_safe(" disabled") if field.field.disabled else "",  # nosec B308 B703: constant markup, or format_html output with escaped parts
        rendered,
        _help_and_errors(field),
    )


# --- the session log's score items ----------------------------------------------------------


def _steps(field):
    """The item's points per value as "value:points" steps for the live total (scales.py)."""
    return ",".join(f"{v}:{p}" for v, p in field.form.instrument.points(field.name))


@register.filter
def item_steps(field):
    return _steps(field)


@register.filter
def segmented(field):
    """An item with few values as a row of radio buttons styled as one control: a fieldset
    whose legend is the item, each value with its words, "Not scored" first. The fieldset
    carries the field's id, so an error summary link lands on the whole choice."""
    last = getattr(field.form, "last_items", {}).get(field.name)
    described = []
    if field.errors:
        described.append(f"{field.auto_id}_error")
    options = []
    for number, choice in enumerate(field.subwidgets):
        data = choice.data
        ident = f"{field.auto_id}_{number}"
        value = str(data["value"])
        label = str(data["label"])
        checked = data["selected"]
        if value == "":
            text = format_html('<span class="seg-words">{}</span>', label)
            css = "btn btn-outline-secondary seg-none"
        else:
            words = label[len(value) :].strip()
            text = format_html(
                '<span class="seg-value">{}</span>{}',
                value,
                format_html(' <span class="seg-words">{}</span>', words) if words else "",
            )
            css = "btn btn-outline-primary"
            if last is not None and str(last) == value:
                css += " seg-last"
                text = format_html(
                    '{}<span class="seg-last-mark" aria-hidden="true">last</span>'
                    '<span class="visually-hidden"> (last time)</span>',
                    text,
                )
        options.append(
            format_html(
                '<input type="radio" class="btn-check" name="{}" id="{}" value="{}"{}>'
                '<label class="{}" for="{}">{}</label>',
                field.html_name,
                ident,
                value,
                mark_safe(" checked") if checked else "",  # nosec B308 B703: constant markup
                css,
                ident,
                text,
            )
        )
    item = field.form.instrument.item(field.name)
    errors = ""
    if field.errors:
        errors = format_html(
            '<div id="{}_error" class="seg-error text-danger small">{}</div>',
            field.auto_id,
            format_html_join(
                "", '<p class="mb-0"><strong>{}</strong></p>', ((e,) for e in field.errors)
            ),
        )
    return format_html(
        '<fieldset class="segmented{}" id="{}" data-item data-steps="{}"{}>'
        '<legend class="seg-legend">{} <span class="seg-range">({}-{})</span></legend>'
        '<div class="seg-options">{}</div>{}</fieldset>',
        " is-invalid" if field.errors else "",
        field.auto_id,
        _steps(field),
        format_html(' aria-describedby="{}"', " ".join(described)) if described else "",
        item.label,
        item.minimum,
        item.maximum,
        mark_safe("".join(options)),  # nosec B308 B703: format_html output with escaped parts
        errors,
    )


@register.filter
def is_segmented(field):
    return isinstance(field.field.widget, forms.RadioSelect)
