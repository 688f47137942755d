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
    Letterhead,
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


@admin.register(Letterhead)
class LetterheadAdmin(SetupAdmin):
    list_display = ("clinic_name", "location", "phone", "email")
    list_select_related = ("location",)
    fieldsets = (
        (None, {"fields": ("location", "clinic_name", "logo")}),
        ("Contacts", {"fields": ("address", "phone", "email", "website")}),
        ("Foot of each page", {"fields": ("footer",)}),
    )


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


# --- accounts and logins (issue 11.7): lockouts and authenticators ---------------------------
# Imported first so that their own registrations exist to be replaced here.
import axes.admin as axes_admin  # noqa: E402
import django_otp.plugins.otp_totp.admin as totp_admin  # noqa: E402
from axes.models import AccessAttempt, AccessLog  # noqa: E402
from django.contrib import messages  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

admin.site.unregister(AccessAttempt)
admin.site.unregister(AccessLog)
admin.site.unregister(TOTPDevice)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """Failed logins per username and address; "Unlock" lifts a lockout at once."""

    actions = ["unlock", *axes_admin.AccessAttemptAdmin.actions]
    date_hierarchy = None  # the filters are enough; no year drill-down to feed odd dates

    @admin.action(description="Unlock: let these logins try again now", permissions=["change"])
    def unlock(self, request, queryset):
        # Removing the failed-attempt records is the unlock (axes counts nothing else).
        names = sorted(set(queryset.values_list("username", flat=True)))
        count, _ = queryset.delete()
        self.message_user(
            request,
            f"Unlocked {count} login{'' if count == 1 else 's'}: {', '.join(names)}. "
            "They can log in again now.",
            messages.SUCCESS,
        )


@admin.register(AccessLog)
class AccessLogAdmin(axes_admin.AccessLogAdmin):
    date_hierarchy = None  # one row per login: the table grows without bound
    show_full_result_count = False


def _may_reset_authenticator(request, device):
    # As with accounts: a manager looks after front desk, clinicians and their own device.
    if request.user.is_superuser or device.user_id == request.user.pk:
        return True
    return not _outranks_manager(device.user)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(totp_admin.TOTPDeviceAdmin):
    """Who has an authenticator app; a manager resets one, a superuser alone adds one.

    Adding a device with a known key for someone else would let the adder make their codes,
    so it is for a superuser only; the key itself is never shown (OTP_ADMIN_HIDE_SENSITIVE_DATA).
    """

    actions = ["reset_authenticator"]
    list_display = ["user", "login", "name", "created_at", "last_used_at", "confirmed"]
    list_select_related = ("user",)

    @admin.display(description="Login", ordering="user__username")
    def login(self, device):
        return device.user.get_username()

    def has_add_permission(self, request):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return [
            field
            for fieldset in self.get_fieldsets(request, obj)
            for field in fieldset[1]["fields"]
        ]

    @admin.action(
        description="Reset authenticator: the person sets up a new one at their next login",
        permissions=["change"],
    )
    def reset_authenticator(self, request, queryset):
        for device in queryset.select_related("user"):
            name = device.user.get_username()
            if not _may_reset_authenticator(request, device):
                self.message_user(
                    request,
                    f"Only a superuser resets {name}'s authenticator.",
                    messages.ERROR,
                )
                continue
            device.delete()
            self.message_user(
                request,
                f"Authenticator reset: {name} sets up a new one at their next login.",
                messages.SUCCESS,
            )


# --- end accounts and logins --------------------------------------------------------------------
