from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A member of clinic staff. Roles are Django groups (see clinic.roles)."""

    professional_title = models.CharField(
        max_length=80, blank=True, help_text="Shown on reports, e.g. 'Consultant dermatologist'."
    )

    class Meta:
        ordering = ["last_name", "first_name", "username"]

    def __str__(self):
        return self.get_full_name() or self.username

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
