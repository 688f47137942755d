from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from simple_history import register
from simple_history.models import HistoricalRecords


class User(AbstractUser):
    """A member of clinic staff. Roles are Django groups (see clinic.roles)."""

    professional_title = models.CharField(
        max_length=80, blank=True, help_text="Shown on reports, e.g. 'Consultant dermatologist'."
    )

    # Who changed an account, its roles or its permissions, and when. The password hash is
    # not copied into history; a change of password shows as a row with its reason.
    history = HistoricalRecords(
        excluded_fields=["password", "last_login"],
        m2m_fields=["groups", "user_permissions"],
    )

    class Meta:
        ordering = ["last_name", "first_name", "username"]

    def __str__(self):
        return self.get_full_name() or self.username

    def set_password(self, raw_password):
        super().set_password(raw_password)
        self._change_reason = "Password changed"

    def save(self, *args, **kwargs):
        # A login stamps last_login; that is not a change to the account worth a history row.
        if set(kwargs.get("update_fields") or ()) == {"last_login"}:
            self.skip_history_when_saving = True
            try:
                return super().save(*args, **kwargs)
            finally:
                del self.skip_history_when_saving
        return super().save(*args, **kwargs)

    def has_role(self, role):
        """True when the user belongs to the named role group (superusers have every role)."""
        if self.is_superuser:
            return True
        names = getattr(self, "_role_names", None)
        if names is None:
            names = self._role_names = set(self.groups.values_list("name", flat=True))
        return role in names


class TimeStamped(models.Model):
    """Creation and last-change times; who changed what lives in the history tables."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# Which permissions a role group holds is part of the record, with who changed it and when.
register(Group, app="clinic", m2m_fields=["permissions"])
