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

from clinic.models import User
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
