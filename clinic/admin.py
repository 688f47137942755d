"""Staff accounts and roles in the admin.

A manager runs the front desk's and the clinicians' accounts. Everything that would give
someone more power than a manager has (superuser or staff status, single permissions, the
Manager role, another person's password) is for a superuser only, so a manager cannot raise
themself or anyone else above their own role. Every change is kept in history.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin

from clinic.models import (
    Absence,
    CalendarFeed,
    Closure,
    Device,
    DeviceKind,
    Location,
    OpeningHours,
    Room,
    User,
    WorkingPattern,
)
from clinic.roles import MANAGER

SUPERUSER_ONLY_FIELDS = ("is_superuser", "is_staff", "user_permissions")


def _outranks_manager(user):
    return user.is_superuser or user.has_role(MANAGER)


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, BaseUserAdmin):
    list_display = ("username", "first_name", "last_name", "email", "roles", "is_active")
    list_filter = ("groups", "is_active", "is_staff")
    fieldsets = BaseUserAdmin.fieldsets + (("Clinic", {"fields": ("professional_title",)}),)
    history_list_display = ["is_active", "is_staff", "is_superuser"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def roles(self, user):
        return ", ".join(sorted(group.name for group in user.groups.all())) or "—"

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or request.user.is_superuser or obj.pk == request.user.pk:
            return True
        # Managers and superusers are changed by a superuser only.
        return not _outranks_manager(obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += [*SUPERUSER_ONLY_FIELDS, "last_login", "date_joined"]
            if obj is not None and obj.pk == request.user.pk:
                readonly += ["groups", "is_active"]  # nobody changes their own role
        return readonly

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.exclude(name=MANAGER)
            kwargs["help_text"] = "Front desk or Clinician. Only a superuser makes a manager."
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser and str(id) != str(request.user.pk):
            raise PermissionDenied("Only a superuser sets another person's password.")
        return super().user_change_password(request, id, form_url)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(SimpleHistoryAdmin, BaseGroupAdmin):
    pass


# --- the appointment book's set-up (manager only; every change kept in history) -------------


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


class RoomInline(admin.TabularInline):
    model = Room
    fields = ("name", "is_active")
    extra = 0


class DeviceInline(admin.TabularInline):
    model = Device
    fields = ("name", "kind", "is_active")
    extra = 0


class SetupAdmin(SimpleHistoryAdmin):
    """Set-up records are changed, not deleted: a room or device in use stays on the record."""

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Location)
class LocationAdmin(SetupAdmin):
    list_display = ("name", "phone", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name",)
    inlines = [OpeningHoursInline, RoomInline, DeviceInline]


@admin.register(Closure)
class ClosureAdmin(SetupAdmin):
    list_display = ("reason", "location", "first_day", "last_day")
    list_select_related = ("location",)
    list_filter = ("location",)
    ordering = ("-first_day",)


@admin.register(Room)
class RoomAdmin(SetupAdmin):
    list_display = ("name", "location", "is_active")
    list_filter = ("location", "is_active")
    list_select_related = ("location",)


@admin.register(DeviceKind)
class DeviceKindAdmin(SetupAdmin):
    list_display = ("name", "code")


@admin.register(Device)
class DeviceAdmin(SetupAdmin):
    list_display = ("name", "kind", "location", "is_active")
    list_select_related = ("kind", "location")
    list_filter = ("location", "kind", "is_active")


class WorkingPatternInline(admin.TabularInline):
    model = WorkingPattern
    extra = 0


@admin.register(WorkingPattern)
class WorkingPatternAdmin(SetupAdmin):
    list_display = ("clinician", "location", "weekday", "starts", "ends")
    list_select_related = ("clinician", "location")
    list_filter = ("location", "weekday", "clinician")


@admin.register(Absence)
class AbsenceAdmin(SetupAdmin):
    list_display = ("clinician", "reason", "first_day", "last_day")
    list_select_related = ("clinician",)
    list_filter = ("clinician",)
    ordering = ("-first_day",)


@admin.register(OpeningHours)
class OpeningHoursAdmin(SetupAdmin):
    list_display = ("location", "weekday", "starts", "ends")
    list_select_related = ("location",)
    list_filter = ("location", "weekday")


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Who has a calendar feed turned on; the secret token itself is never shown."""

    list_display = ("user", "created_at")
    list_select_related = ("user",)
    fields = ("user", "created_at")
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request):
        return False
