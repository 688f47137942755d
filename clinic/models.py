import secrets

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from simple_history import register
from simple_history.models import HistoricalRecords

from clinic.uploads import JPEG, PNG, WEBP, UploadCheck, random_name
from clinic.validators import validate_clinic_date


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


# --- the appointment book's resources --------------------------------------------------------
# One deployment serves one clinic (or a chain) in one time zone, settings.TIME_ZONE: every
# time below is wall-clock time there.


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class LocationQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Location(TimeStamped):
    """A site of the clinic, with its own opening hours, rooms and devices."""

    name = models.CharField(max_length=80, unique=True)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    is_active = models.BooleanField(default=True, help_text="Untick when the site closes.")
    history = HistoricalRecords()

    objects = LocationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def letterhead_logo_upload_to(letterhead, filename):
    return random_name("letterhead", filename)


class Letterhead(TimeStamped):
    """What heads a document handed to a patient: the clinic's name, logo and contacts.

    One row without a location is the clinic's own; a location may have its own row, used for
    its patients' documents (a chain's sites differ in address and phone).
    """

    location = models.OneToOneField(
        Location,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="letterhead",
        help_text="Empty: the clinic's letterhead, used wherever a site has none of its own.",
    )
    clinic_name = models.CharField(max_length=120)
    logo = models.ImageField(
        upload_to=letterhead_logo_upload_to,
        blank=True,
        validators=[UploadCheck((JPEG, PNG, WEBP), "PHOTO_MAX_BYTES", "logo")],
        help_text="PNG, JPEG or WebP; printed at most 2.5 cm high.",
    )
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField("e-mail", blank=True)
    website = models.CharField(max_length=120, blank=True)
    footer = models.TextField(
        "footer text",
        blank=True,
        help_text="Printed at the foot of each page, e.g. registration or opening hours.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["location__name"]
        constraints = [
            # At most one clinic-wide letterhead: a unique index on a constant over the rows
            # without a site.
            models.UniqueConstraint(
                models.Value(1),
                condition=models.Q(location__isnull=True),
                name="one_clinic_wide_letterhead",
                violation_error_message=(
                    "The clinic already has a letterhead without a site: edit that one, or "
                    "choose the site this one is for."
                ),
            ),
        ]

    def __str__(self):
        return f"{self.clinic_name} ({self.location})" if self.location_id else self.clinic_name

    def save(self, *args, **kwargs):
        from clinic.uploads import is_new_upload, reencode_image

        if is_new_upload(self.logo):
            self.logo = reencode_image(self.logo, max_side=600)
        super().save(*args, **kwargs)

    @property
    def contact_line(self):
        return " · ".join(x for x in (self.phone, self.email, self.website) if x)

    def logo_data_uri(self):
        """The logo inline (documents are laid out without a request), or '' without one."""
        if not self.logo:
            return ""
        from clinic.uploads import image_data_uri

        return image_data_uri(self.logo, max_side=600)

    @classmethod
    def for_location(cls, location_id):
        """The site's own letterhead, else the clinic's, else an unsaved one naming nothing."""
        rows = {
            row.location_id: row
            for row in cls.objects.filter(
                models.Q(location_id=location_id) | models.Q(location__isnull=True)
            )
        }
        return rows.get(location_id) or rows.get(None) or cls(clinic_name="")


def _span_ends_after_start(prefix):
    return models.CheckConstraint(
        condition=models.Q(ends__gt=models.F("starts")),
        name=f"{prefix}_ends_after_it_starts",
        violation_error_message="The end time must be after the start time.",
    )


def _days_in_order(prefix):
    return models.CheckConstraint(
        condition=models.Q(last_day__gte=models.F("first_day")),
        name=f"{prefix}_ends_on_or_after_start",
        violation_error_message="The last day must be on or after the first day.",
    )


class OpeningHours(models.Model):
    """One span a location is open on a weekday; a day may have several (a lunch break)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday)
    starts = models.TimeField("opens")
    ends = models.TimeField("closes")
    history = HistoricalRecords()

    class Meta:
        ordering = ["location", "weekday", "starts"]
        verbose_name = "opening hours"
        verbose_name_plural = "opening hours"
        constraints = [_span_ends_after_start("opening")]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.starts:%H:%M}–{self.ends:%H:%M}"


class Closure(models.Model):
    """Dated days a location (or, with none chosen, every location) is closed."""

    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
        help_text="Leave empty for a closure of every location (a bank holiday).",
    )
    first_day = models.DateField(validators=[validate_clinic_date])
    last_day = models.DateField(validators=[validate_clinic_date])
    reason = models.CharField(max_length=120)
    history = HistoricalRecords()

    class Meta:
        ordering = ["first_day"]
        constraints = [_days_in_order("closure")]

    def __str__(self):
        where = self.location or "all locations"
        return f"{self.reason} ({where}, {self.first_day} to {self.last_day})"


class Room(TimeStamped):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=60)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["location", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "name"],
                name="unique_room_name_per_location",
                violation_error_message="This location already has a room of that name.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.location})"


class DeviceKind(models.Model):
    """A kind of equipment a treatment needs, e.g. "Pulsed-dye laser"."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, unique=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Device(TimeStamped):
    """A piece of equipment a location owns; it can serve any room of that location."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="devices")
    kind = models.ForeignKey(DeviceKind, on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["location", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "name"],
                name="unique_device_name_per_location",
                violation_error_message="This location already has a device of that name.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.location})"


class WorkingPattern(models.Model):
    """The hours a clinician works at a location on a weekday."""

    clinician = models.ForeignKey(User, on_delete=models.CASCADE, related_name="working_patterns")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    weekday = models.PositiveSmallIntegerField(choices=Weekday)
    starts = models.TimeField()
    ends = models.TimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["clinician", "weekday", "starts"]
        constraints = [_span_ends_after_start("working")]

    def __str__(self):
        return (
            f"{self.clinician} at {self.location}, {self.get_weekday_display()} "
            f"{self.starts:%H:%M}–{self.ends:%H:%M}"
        )


class Absence(models.Model):
    """Dated days a clinician is away (leave, training)."""

    clinician = models.ForeignKey(User, on_delete=models.CASCADE, related_name="absences")
    first_day = models.DateField(validators=[validate_clinic_date])
    last_day = models.DateField(validators=[validate_clinic_date])
    reason = models.CharField(max_length=120, default="Leave")
    history = HistoricalRecords()

    class Meta:
        ordering = ["clinician", "first_day"]
        constraints = [_days_in_order("absence")]

    def __str__(self):
        return f"{self.clinician}: {self.reason} {self.first_day} to {self.last_day}"


def _feed_token():
    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """A clinician's private iCalendar feed: whoever has the token URL reads the diary."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True, default=_feed_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Calendar feed of {self.user}"

    def regenerate(self):
        """A new secret URL; the old one stops working at once."""
        self.token = _feed_token()
        self.save(update_fields=["token"])
