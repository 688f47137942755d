"""Shared admin behaviour: history, archive instead of delete, safe CSV export."""

from django.contrib import admin, messages
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from clinic.csv_export import csv_response


class ClinicalAdmin(SimpleHistoryAdmin):
    """Base for clinical records: change history, no deleting, CSV export."""

    actions = ["export_csv"]
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
        count = queryset.filter(archived_at__isnull=True).update(
            archived_at=timezone.now(), updated_at=timezone.now()
        )
        self.message_user(request, f"Archived {count} record(s).", messages.SUCCESS)

    @admin.display(boolean=True, description="archived", ordering="archived_at")
    def archived(self, obj):
        return obj.archived_at is not None


class ReadOnlyInline:
    """Inline rows shown for context; edited on their own pages."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class NoDeleteInline:
    extra = 0

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
