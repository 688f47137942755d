"""Shared admin behaviour: history, archive instead of delete, safe CSV export."""

from datetime import date

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.widgets import (
    AutocompleteSelect,
    AutocompleteSelectMultiple,
    ForeignKeyRawIdWidget,
)
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import connections, models, transaction
from django.forms import ModelChoiceField
from django.forms.widgets import ChoiceWidget
from django.http import HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import Truncator
from simple_history.admin import SimpleHistoryAdmin

from clinic.csv_export import csv_response
from clinic.form_tools import SafeJSONField
from clinic.validators import DATE_MAX, DATE_MIN

# --- hostile input in the admin (issue 11.4): never a 500 ------------------------------------

SEARCH_MAX = 200  # characters; SQLite refuses LIKE patterns past 50,000 bytes
JSON_FIELDS = {models.JSONField: {"form_class": SafeJSONField}}
INLINE_EXTRA_ROWS = 20  # rows a manager may add to an inline in one save


class _ValidIdsOnly:
    """An autocomplete widget shows again only the ids its target can hold: Django's looks up
    whatever was sent ("NaN", 20 digits) and fails while re-showing the form with its error.

    `preloaded` ({str(pk): object}, set per inline row by PreloadedLabelsFormSetMixin) names
    the row's current value without a query: Django's widget runs one per row and field."""

    preloaded = None

    def optgroups(self, name, value, attr=None):
        known = self.preloaded or {}
        if value and not self.allow_multiple_selected and all(str(v) in known for v in value):
            return self._preloaded_groups(name, [known[str(v)] for v in value])
        remote = self.field.remote_field
        opts = remote.model._meta
        target = opts.get_field(getattr(remote, "field_name", None) or opts.pk.name)
        kept = []
        for one in value:
            try:
                target.to_python(one)
            except ValidationError:
                continue
            kept.append(one)
        return super().optgroups(name, kept, attr)

    def _preloaded_groups(self, name, objects):
        """The option groups Django's optgroups builds, from objects already in hand."""
        options = []
        if not self.is_required:
            options.append(self.create_option(name, "", "", False, 0))
        label = self.choices.field.label_from_instance
        selected = {str(obj.pk) for obj in objects}
        for obj in objects:
            options.append(self.create_option(name, obj.pk, label(obj), selected, len(options)))
        return [(None, options, 0)]


class SafeAutocompleteSelect(_ValidIdsOnly, AutocompleteSelect):
    pass


class PreloadedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id field's label from the row's own related object when it is loaded."""

    preloaded = None

    def label_and_url_for_value(self, value):
        obj = (self.preloaded or {}).get(str(value))
        if obj is None:
            return super().label_and_url_for_value(value)
        try:
            url = reverse(
                f"{self.admin_site.name}:{obj._meta.app_label}_{obj._meta.model_name}_change",
                args=(obj.pk,),
            )
        except NoReverseMatch:
            url = ""
        return Truncator(obj).words(14), url


class SafeAutocompleteSelectMultiple(_ValidIdsOnly, AutocompleteSelectMultiple):
    pass


class SafeAutocompleteMixin:
    """Every ModelAdmin or inline: autocomplete fields re-shown safely, JSON parsed safely."""

    formfield_overrides = JSON_FIELDS

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        elif "widget" not in kwargs and db_field.name in self.raw_id_fields:
            kwargs["widget"] = PreloadedRawIdWidget(
                db_field.remote_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class GuardedChangelistMixin(SafeAutocompleteMixin):
    """Date drill-down, search and filter parameters that cannot be answered are dropped with
    a message naming them and what they allow (a year 99999999999 overflows `datetime`; a
    NUL character is refused by PostgreSQL). Also the safe widgets of SafeAutocompleteMixin."""

    def changelist_view(self, request, extra_context=None):
        problems = _changelist_problems(self, request.GET)
        if problems:
            for message in problems.values():
                messages.error(request, message)
            query = request.GET.copy()
            for name in problems:
                query.pop(name, None)
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return super().changelist_view(request, extra_context)


def _changelist_problems(model_admin, query):
    """{parameter: message} for the parameters of a changelist that cannot be used."""
    problems = {}
    for field in _date_fields(model_admin):
        for part, low, high in (("year", DATE_MIN.year, DATE_MAX.year), ("month", 1, 12)):
            name = f"{field}__{part}"
            if name in query and not _whole_in(query[name], low, high):
                problems[name] = f"{part.title()}: a whole number from {low} to {high}."
        day = f"{field}__day"
        if day in query and not _whole_in(query[day], 1, 31):
            problems[day] = "Day: a whole number from 1 to 31."
        if not problems and day in query:
            try:
                year, month = query[f"{field}__year"], query.get(f"{field}__month", "1")
                date(int(year), int(month), int(query[day]))
            except (KeyError, ValueError):
                problems[day] = "Day: that month has no such day."
    search = query.get("q", "")
    if len(search) > SEARCH_MAX:
        problems["q"] = f"Search: at most {SEARCH_MAX} characters."
    for name, values in query.lists():
        if any("\x00" in v for v in [name, *values]):
            problems[name] = f"{name}: null characters are not allowed."
    return problems


def _date_fields(model_admin):
    """The date hierarchy's field and the date list filters' fields: the admin accepts
    `<field>__year` style lookups on any of them."""
    fields = [model_admin.date_hierarchy] if model_admin.date_hierarchy else []
    for entry in model_admin.list_filter:
        if isinstance(entry, (tuple, list)) and issubclass(entry[1], admin.DateFieldListFilter):
            fields.append(entry[0])
    return fields


def _whole_in(text, low, high):
    return text.isdigit() and low <= int(text) <= high


class ConstraintCheckedFormSetMixin:
    """Rows added together are checked against each other for the model's unique constraints,
    conditional ones included (Django checks each row only against the database), so two new
    scar sites on one body site are a form error, not an IntegrityError."""

    def clean(self):
        super().clean()
        constraints = [
            c
            for c in self.model._meta.constraints
            if isinstance(c, models.UniqueConstraint) and c.fields and not c.expressions
        ]
        for constraint in constraints:
            seen = {}
            for form in self.forms:
                if not form.has_changed() and not form.instance.pk:
                    continue
                if self.can_delete and self._should_delete_form(form):
                    continue
                if not hasattr(form, "cleaned_data") or form.errors:
                    continue
                instance = form.instance
                if constraint.condition is not None and not _meets(constraint, instance):
                    continue
                key = tuple(
                    getattr(instance, instance._meta.get_field(f).attname)
                    for f in constraint.fields
                )
                if None in key:
                    continue
                if key in seen:
                    message = constraint.violation_error_message or "This row is a duplicate."
                    form.add_error(constraint.fields[-1], str(message) % {"name": constraint.name})
                seen.setdefault(key, form)


def _meets(constraint, instance):
    """Whether a row falls under a conditional constraint (e.g. only open scar sites)."""
    against = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields} | {
        f.name: getattr(instance, f.attname) for f in instance._meta.concrete_fields
    }
    try:
        return constraint.condition.check(against)
    except Exception:  # a condition that cannot be evaluated here: check the row anyway
        return True


class PreloadedLabelsFormSetMixin:
    """An inline's rows render without a query per row: an autocomplete or raw-id field shows
    the related object its row already loaded (the inline's queryset selects them), and a
    plain select lists its choices from one query for the whole formset."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        instance = form.instance
        for name, field in form.fields.items():
            widget = getattr(field.widget, "widget", field.widget)  # inside the +/edit wrapper
            if hasattr(widget, "preloaded"):
                widget.preloaded = _loaded_relation(instance, name)
            elif isinstance(field, ModelChoiceField) and isinstance(widget, ChoiceWidget):
                cache = self.__dict__.setdefault("_choice_lists", {})
                if name not in cache:
                    cache[name] = list(field.choices)
                widget.choices = cache[name]
        return form


def _loaded_relation(instance, name):
    """{str(pk): object} for a foreign key of `instance` already loaded with it, else {}."""
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist:  # a form-only field
        return {}
    if not getattr(field, "many_to_one", False) or not field.is_cached(instance):
        return {}
    related = field.get_cached_value(instance)
    return {str(related.pk): related} if related is not None else {}


class BoundedInlineMixin(SafeAutocompleteMixin):
    """An inline builds at most the rows it has plus INLINE_EXTRA_ROWS, whatever TOTAL_FORMS
    claims (Django's own ceiling is 1,000 forms more), and checks its constraints together.
    Its rows load the objects their foreign keys name, so showing them runs no query per row."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        shown = set(flatten_fieldsets(self.get_fieldsets(request)))
        related = [
            f.name
            for f in self.model._meta.concrete_fields
            if f.many_to_one and f.name in shown and f.name != getattr(self, "fk_name", None)
        ]
        return queryset.select_related(*related) if related else queryset

    def get_formset(self, request, obj=None, **kwargs):
        chosen = kwargs.get("formset", self.formset)
        mixins = tuple(
            mixin
            for mixin in (PreloadedLabelsFormSetMixin, ConstraintCheckedFormSetMixin)
            if not issubclass(chosen, mixin)
        )
        if mixins:
            kwargs["formset"] = type(chosen.__name__, (*mixins, chosen), {})
        formset = super().get_formset(request, obj, **kwargs)
        existing = 0
        if obj is not None and obj.pk:
            existing = formset.model._default_manager.filter(**{formset.fk.name: obj}).count()
        formset.absolute_max = existing + INLINE_EXTRA_ROWS
        return formset


ESTIMATE_FROM = 20_000  # rows; below this an exact COUNT(*) is cheaper than a wrong number


class EstimatedCountPaginator(Paginator):
    """An unfiltered list on PostgreSQL counts its table from the planner's statistics
    (pg_class.reltuples, kept by autovacuum/ANALYZE), so its SQL does not grow with the
    table: COUNT(*) over a million sessions reads every row. Filtered lists, small tables
    and SQLite count exactly."""

    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is not None and not query.where:
            estimate = _estimated_rows(queryset)
            if estimate is not None and estimate >= ESTIMATE_FROM:
                return estimate
        return super().count


def _estimated_rows(queryset):
    """The planner's row estimate for the queryset's table on PostgreSQL, else None."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None


class ClinicalAdmin(GuardedChangelistMixin, SimpleHistoryAdmin):
    """Base for clinical records: change history, no deleting, CSV export. Lists count
    cheaply: an estimate for a big unfiltered table, no second count of the whole table."""

    actions = ["export_csv"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    csv_fields: tuple[str, ...] = ()

    def has_delete_permission(self, request, obj=None):
        # Clinical records are archived or cancelled; only a superuser may delete (e.g. a
        # record entered by mistake for the wrong person).
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        for name in ("created_at", "updated_at"):
            if _has_field(self.model, name) and name not in readonly:
                readonly.append(name)
        return readonly

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request, queryset):
        fields = self.csv_fields or tuple(
            f.name for f in self.model._meta.concrete_fields if f.name != "version"
        )
        header = [_label(self.model, name) for name in fields]
        rows = ([_value(obj, name) for name in fields] for obj in queryset)
        stamp = timezone.localdate().isoformat()
        return csv_response(f"{self.model._meta.model_name}-{stamp}.csv", header, rows)


def _has_field(model, name):
    try:
        model._meta.get_field(name)
    except Exception:
        return False
    return True


def _label(model, path):
    try:
        return str(model._meta.get_field(path.split("__")[0]).verbose_name)
    except Exception:
        return path.replace("_", " ")


def _value(obj, path):
    value = obj
    for part in path.split("__"):
        display = getattr(value, f"get_{part}_display", None)
        value = display() if display else getattr(value, part, None)
        if value is None:
            return ""
    return value


class ArchivedFilter(admin.SimpleListFilter):
    """Archived records are hidden unless asked for."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Current only"), ("yes", "Archived only"), ("all", "All")]

    def choices(self, changelist):
        value = self.value() or "no"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "no"
        if value == "no":
            return queryset.filter(archived_at__isnull=True)
        if value == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class ArchivableAdmin(ClinicalAdmin):
    actions = ["archive_selected", "export_csv"]

    @admin.action(description="Archive selected", permissions=["change"])
    def archive_selected(self, request, queryset):
        # One save per record through the model's archive(), not a bulk update: each record
        # gets its history row with who archived it (and, for scar sites, their scar types,
        # which simple-history's bulk helpers do not copy). Archiving is a rare, deliberate act.
        count = 0
        with transaction.atomic():
            current = self.model._default_manager.select_for_update().filter(
                pk__in=queryset.values("pk"), archived_at__isnull=True
            )
            for record in current.order_by("pk"):
                record._history_user = request.user
                record._change_reason = "Archived in the admin"
                record.archive()
                count += 1
        self.message_user(request, f"Archived {count} record(s).", messages.SUCCESS)

    @admin.display(boolean=True, description="archived", ordering="archived_at")
    def archived(self, obj):
        return obj.archived_at is not None


class ReadOnlyInline(BoundedInlineMixin):
    """Inline rows shown for context; edited on their own pages."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class NoDeleteInline(BoundedInlineMixin):
    extra = 0

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def harden_site(site):
    """Give every registered admin, the project's and third-party ones (auth, axes, otp), the
    guarded changelist and safe widgets, and each of their inlines a row ceiling, by
    re-registering a subclass under the same name. Called once, by clinic/urls.py."""
    for model, model_admin in list(site._registry.items()):
        cls = type(model_admin)
        inlines = [
            inline
            if issubclass(inline, BoundedInlineMixin)
            else type(inline.__name__, (BoundedInlineMixin, inline), {})
            for inline in cls.inlines
        ]
        if issubclass(cls, GuardedChangelistMixin) and inlines == list(cls.inlines):
            continue
        bases = (cls,) if issubclass(cls, GuardedChangelistMixin) else (GuardedChangelistMixin, cls)
        hardened = type(
            cls.__name__,
            bases,
            {"inlines": inlines, "__module__": cls.__module__},
        )
        site.unregister(model)
        site.register(model, hardened)
