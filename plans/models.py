"""Treatment catalogue, plans with their courses, sessions and what is logged in them.

Pure rules live beside this module: scales.py (instruments and scores), scheduling.py
(calendar generation), safety.py (contraindication rules), parameters.py (per-treatment
session parameters). Writes touching several models live in services.py.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from clinic.models import TimeStamped
from clinic.timeutils import day_bounds, day_start
from clinic.uploads import JPEG, PNG, WEBP, UploadCheck, is_new_upload, random_name, reencode_image
from clinic.validators import validate_clinic_date, validate_json_object
from patients.models import Patient, ScarSite, ScarType
from plans import safety, scales
from plans.parameters import clean_parameters

USER = settings.AUTH_USER_MODEL


class TreatmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def suited_to(self, scar_types):
        """Active treatments whose best-for list covers any of the scar types, best first."""
        return (
            self.active()
            .filter(best_for__in=scar_types)
            .annotate(matches=Count("best_for", distinct=True))
            .order_by("-matches", "name")
        )


class Treatment(TimeStamped):
    """A catalogue entry the manager edits: what it suits, its usual course, its parameters."""

    class Setting(models.TextChoices):
        HOME = "home", "At home"
        IN_OFFICE = "in_office", "In office"

    class Category(models.TextChoices):
        HOME_ACID = "home_acid", "Topical acid"
        PEEL = "peel", "Chemical peel"
        VASCULAR_LASER = "vascular_laser", "Vascular laser"
        ABLATIVE_LASER = "ablative_laser", "Ablative laser / resurfacing"
        CRYOTHERAPY = "cryotherapy", "Cryotherapy"
        MICRONEEDLING = "microneedling", "Microneedling"
        OTHER = "other", "Other"

    class PeelDepth(models.TextChoices):
        UNKNOWN = "", "Depends on the agent used"
        SUPERFICIAL = "superficial", "Superficial"
        MEDIUM = "medium", "Medium"
        DEEP = "deep", "Deep"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, unique=True)
    setting = models.CharField(max_length=10, choices=Setting)
    category = models.CharField(max_length=20, choices=Category)
    peel_depth = models.CharField(max_length=12, choices=PeelDepth, blank=True, default="")
    contains_salicylate = models.BooleanField(default=False)
    needs_clear_skin = models.BooleanField(
        default=False, help_text="Cannot be done during an active breakout (seed)."
    )
    best_for = models.ManyToManyField(ScarType, blank=True, related_name="treatments")
    default_sessions = models.PositiveSmallIntegerField(default=1)
    default_interval_days = models.PositiveSmallIntegerField(default=0)
    min_interval_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Warn when two sessions are closer than this."
    )
    description = models.TextField(blank=True)
    staff_notes = models.TextField(
        blank=True, help_text="Shown to staff when they choose this treatment."
    )
    # What a patient reads: on their copy of the report, an aftercare sheet, a reminder.
    patient_name = models.CharField(
        "name for patients",
        max_length=120,
        blank=True,
        help_text="Plain words on the patient's documents, e.g. 'Cryotherapy (freezing)'. "
        "Empty: the name above.",
    )
    patient_description = models.TextField(
        "what it is, for patients",
        blank=True,
        help_text="One or two sentences in plain words; no citations.",
    )
    preparation_advice = models.TextField(
        "before the visit",
        blank=True,
        help_text="What the patient does before a visit; sent with reminders.",
    )
    aftercare_advice = models.TextField(
        "aftercare",
        blank=True,
        help_text="What the patient does in the days after a visit; one point per line.",
    )
    home_care_advice = models.TextField(
        "home care",
        blank=True,
        help_text="Everyday care at home during the course; one point per line.",
    )
    is_active = models.BooleanField(default=True, help_text="Untick to retire it from new plans.")
    duration_minutes = models.PositiveSmallIntegerField(
        "appointment length (minutes)",
        default=30,
        help_text="The usual length of a visit; staff may change it when booking.",
    )
    needs_room = models.BooleanField(
        default=True, help_text="A visit for it takes a treatment room."
    )
    device_kind = models.ForeignKey(
        "clinic.DeviceKind",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="treatments",
        help_text="Equipment a visit needs, e.g. the pulsed-dye laser.",
    )
    history = HistoricalRecords(m2m_fields=[best_for])

    objects = TreatmentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_sessions__gte=1) & Q(default_sessions__lte=52),
                name="treatment_default_sessions_1_to_52",
                violation_error_message="Default sessions must be from 1 to 52.",
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5) & Q(duration_minutes__lte=480),
                name="treatment_duration_5_to_480_minutes",
                violation_error_message="An appointment lasts from 5 to 480 minutes.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def in_office(self):
        return self.setting == self.Setting.IN_OFFICE

    @property
    def name_for_patients(self):
        return self.patient_name or self.name

    def facts(self):
        """What the safety rules need to know about this treatment."""
        return safety.TreatmentFacts(
            code=self.code,
            name=self.name,
            category=self.category,
            peel_depth=self.peel_depth,
            contains_salicylate=self.contains_salicylate,
            needs_clear_skin=self.needs_clear_skin,
            in_office=self.in_office,
            min_interval_days=self.min_interval_days,
        )


class TreatmentParameter(models.Model):
    """One value a session of a treatment must (or may) log, typed and bounded."""

    class Kind(models.TextChoices):
        NUMBER = "number", "Number"
        CHOICE = "choice", "Choice"
        TEXT = "text", "Text"
        YES_NO = "yes_no", "Yes / no"

    treatment = models.ForeignKey(Treatment, on_delete=models.CASCADE, related_name="parameters")
    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=Kind)
    unit = models.CharField(max_length=20, blank=True)
    min_value = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    max_value = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    choices = models.CharField(
        max_length=400, blank=True, help_text="For a choice: the allowed values, comma-separated."
    )
    required = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)
    patient_wording = models.CharField(
        "wording for patients",
        max_length=120,
        blank=True,
        help_text="How the patient's copy says it, with {value} for the value, e.g. "
        "'{value} freeze cycles'. Empty: not shown to patients.",
    )
    patient_values = models.TextField(
        "values in plain words",
        blank=True,
        help_text="For a choice: one 'value = words' per line, e.g. 'tca = trichloroacetic "
        "acid (TCA)'. A value not listed is shown as it is.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["treatment", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["treatment", "code"],
                name="unique_parameter_code_per_treatment",
                violation_error_message="This treatment already has a parameter with that code.",
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(max_value__gte=models.F("min_value")),
                name="parameter_min_not_above_max",
                violation_error_message="The minimum cannot be above the maximum.",
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def choice_list(self):
        return [c.strip() for c in self.choices.split(",") if c.strip()]

    def plain_values(self):
        """{value: plain words} from patient_values (lines 'value = words')."""
        pairs = (line.split("=", 1) for line in self.patient_values.splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in pairs if k.strip() and v.strip()}

    def for_patients(self, value):
        """The patient's wording of a logged value, or '' when patients are not shown it."""
        if not self.patient_wording or value in (None, ""):
            return ""
        if isinstance(value, bool):
            value = "yes" if value else "no"
        words = self.plain_values().get(str(value), str(value))
        return self.patient_wording.replace("{value}", words)

    def clean(self):
        if self.patient_wording and "{value}" not in self.patient_wording:
            raise ValidationError(
                {
                    "patient_wording": "Put {value} where the value goes, "
                    "e.g. '{value} freeze cycles'."
                }
            )
        if self.kind == self.Kind.CHOICE and not self.choice_list:
            raise ValidationError({"choices": "A choice parameter needs its allowed values."})
        if self.kind != self.Kind.NUMBER and (
            self.min_value is not None or self.max_value is not None
        ):
            raise ValidationError({"min_value": "Only number parameters have a range."})


class SafetyRuleSetting(models.Model):
    """The clinic's choice for one rule of plans.safety: block, warn or inform, or off."""

    rule = models.CharField(
        max_length=40, unique=True, choices=[(code, r.title) for code, r in safety.RULES.items()]
    )
    action = models.CharField(
        max_length=10, choices=[(a.value, a.name.title()) for a in safety.Action]
    )
    enabled = models.BooleanField(default=True)
    window = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The rule's time window (months or days, see the rule)."
    )
    # Why the last change was made; each history row keeps the reason of its own change.
    change_reason = models.TextField("reason for the change", blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["rule"]

    def __str__(self):
        return f"{self.get_rule_display()}: {self.action}"

    @classmethod
    def current(cls):
        """All settings as plans.safety expects them; rules without a row use defaults."""
        return {
            row.rule: safety.RuleSetting(
                action=safety.Action(row.action), enabled=row.enabled, window=row.window
            )
            for row in cls.objects.all()
        }


class Plan(TimeStamped):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="plans")
    title = models.CharField(max_length=120)
    goal = models.TextField(blank=True)
    clinician = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="plans")
    location = models.ForeignKey(
        "clinic.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="plans",
        help_text="Where its visits are booked.",
    )
    start_date = models.DateField(validators=[validate_clinic_date])
    preferred_time = models.TimeField(
        default="09:00", help_text="Time of day for generated sessions."
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    target_sites = models.ManyToManyField(ScarSite, related_name="plans")
    internal_notes = models.TextField(blank=True, help_text="Staff only; not on patient reports.")
    version = models.PositiveIntegerField(default=1, editable=False)
    # History is read per record (by id), never by these: no index on them (issue 12).
    history = HistoricalRecords(
        m2m_fields=[target_sites], no_db_index=["patient", "clinician", "location"]
    )

    class Meta:
        ordering = ["-start_date", "-id"]
        permissions = [
            ("view_report", "Can view progress reports"),
            ("view_outcomes", "Can view clinic outcomes"),
        ]
        indexes = [
            models.Index(fields=["patient", "status"], name="plan_patient_status_idx"),
            models.Index(fields=["start_date", "id"], name="plan_start_idx"),  # admin list order
        ]

    def __str__(self):
        return f"{self.title} ({self.patient.full_name})"

    def clean_target_sites(self, sites):
        """A plan targets only its own patient's open scar sites."""
        foreign = [site for site in sites if site.patient_id != self.patient_id]
        if foreign:
            raise ValidationError(
                {"target_sites": "A plan can only target this patient's own scar sites."}
            )
        archived = [site for site in sites if site.is_archived]
        if archived:
            raise ValidationError({"target_sites": "Archived scar sites cannot be targeted."})


class Course(models.Model):
    """One treatment repeated within a plan: n sessions, every k days, from day d of the plan."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="courses")
    treatment = models.ForeignKey(Treatment, on_delete=models.PROTECT, related_name="courses")
    sessions_count = models.PositiveSmallIntegerField("sessions")
    interval_days = models.PositiveSmallIntegerField("every (days)", default=0)
    offset_days = models.PositiveSmallIntegerField("starting on day", default=0)
    default_parameters = models.JSONField(
        default=dict, blank=True, help_text="Planned values, e.g. {'agent': 'glycolic'}."
    )
    label = models.CharField(max_length=80, blank=True, help_text="e.g. '70% glycolic peel'.")
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["plan", "order", "offset_days", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sessions_count__gte=1) & Q(sessions_count__lte=52),
                name="course_sessions_1_to_52",
                violation_error_message="A course has from 1 to 52 sessions.",
            ),
            models.CheckConstraint(
                condition=Q(sessions_count=1) | Q(interval_days__gte=1),
                name="course_repeats_need_an_interval",
                violation_error_message="Repeated sessions need an interval of at least 1 day.",
            ),
            models.CheckConstraint(
                condition=Q(interval_days__lte=365) & Q(offset_days__lte=730),
                name="course_interval_and_offset_bounded",
                violation_error_message="Interval is at most 365 days, start offset 730 days.",
            ),
        ]

    def __str__(self):
        name = self.label or self.treatment.name
        every = f", every {self.interval_days} days" if self.sessions_count > 1 else ""
        start = f", from day {self.offset_days}" if self.offset_days else ""
        return f"{name} x {self.sessions_count}{every}{start}"

    def clean(self):
        validate_json_object(self.default_parameters, "Default parameters", '{"agent": "glycolic"}')
        if self.treatment_id and self.default_parameters:
            try:
                self.default_parameters = clean_parameters(
                    self.treatment.parameters.all(), self.default_parameters, partial=True
                )
            except ValidationError as exc:
                raise ValidationError(
                    {"default_parameters": [m for ms in exc.message_dict.values() for m in ms]}
                ) from None


class SessionQuerySet(models.QuerySet):
    def on_days(self, first_day, days=1):
        """Sessions on the clinic's local dates [first_day, first_day + days)."""
        start, end = day_bounds(first_day, days)
        return self.filter(scheduled_at__gte=start, scheduled_at__lt=end)

    def due_on(self, day):
        """Sessions still to be done on the clinic's local date `day`."""
        return self.on_days(day).filter(status=Session.Status.SCHEDULED)

    def overdue(self, today):
        """Scheduled sessions from before today that were never logged."""
        return self.filter(status=Session.Status.SCHEDULED, scheduled_at__lt=day_start(today))

    def for_clinician(self, user):
        return self.filter(Q(clinician=user) | Q(clinician__isnull=True, plan__clinician=user))


class Session(TimeStamped):
    """One appointment in the diary: a visit of a plan (one or more of its treatments on the
    same day), or a consultation, review, patch test or photo visit."""

    class Kind(models.TextChoices):
        TREATMENT = "treatment", "Treatment session"
        CONSULTATION = "consultation", "Consultation"
        REVIEW = "review", "Review"
        PATCH_TEST = "patch_test", "Patch test"
        PHOTO = "photo", "Photo visit"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ARRIVED = "arrived", "Arrived"
        IN_TREATMENT = "in_treatment", "In treatment"
        COMPLETED = "completed", "Completed"
        MISSED = "missed", "Did not attend"
        ON_HOLD = "on_hold", "On hold"
        CANCELLED = "cancelled", "Cancelled"

    # Statuses that hold a clinician, room, device and patient: two such appointments may
    # not overlap (an exclusion constraint on PostgreSQL, migration plans/0008).
    HOLDS_TIME = ("scheduled", "arrived", "in_treatment", "completed")
    # Statuses of an appointment still to be done (the patient may be in the building).
    OPEN = ("scheduled", "arrived", "in_treatment")

    kind = models.CharField(max_length=14, choices=Kind, default=Kind.TREATMENT)
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="sessions"
    )
    # Kept beside plan.patient so that per-patient lists filter on an indexed column.
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="sessions", db_index=False
    )  # indexed by session_patient_time_idx, which starts with it
    scheduled_at = models.DateTimeField("starts", validators=[validate_clinic_date])
    ends_at = models.DateTimeField("ends", validators=[validate_clinic_date])
    status = models.CharField(max_length=12, choices=Status, default=Status.SCHEDULED)
    clinician = models.ForeignKey(  # indexed by session_clinician_time_idx
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sessions",
        db_index=False,
    )
    location = models.ForeignKey(
        "clinic.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    room = models.ForeignKey(  # indexed by session_room_time_idx
        "clinic.Room",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sessions",
        db_index=False,
    )
    device = models.ForeignKey(  # indexed by session_device_time_idx
        "clinic.Device",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sessions",
        db_index=False,
    )
    # A manager's reason for booking outside opening or working hours (never for a clash).
    booking_override = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, validators=[validate_clinic_date])
    # When a session booked for another day is logged as done today, it moves to the real
    # date of treatment; this keeps the time it had been booked for.
    booked_for = models.DateTimeField(
        "booked for", null=True, blank=True, validators=[validate_clinic_date]
    )
    notes = models.TextField("clinical notes", blank=True, help_text="Staff only.")
    version = models.PositiveIntegerField(default=1, editable=False)
    # History is read per record (by id), never by these: no index on them (issue 12).
    history = HistoricalRecords(
        no_db_index=["plan", "patient", "clinician", "location", "room", "device"]
    )

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_at", "id"]
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="session_status_time_idx"),
            # Admin and report lists order all sessions by date (the admin adds the id).
            models.Index(fields=["scheduled_at", "id"], name="session_time_idx"),
            models.Index(fields=["patient", "scheduled_at"], name="session_patient_time_idx"),
            models.Index(fields=["clinician", "scheduled_at"], name="session_clinician_time_idx"),
            models.Index(fields=["room", "scheduled_at"], name="session_room_time_idx"),
            models.Index(fields=["device", "scheduled_at"], name="session_device_time_idx"),
        ]
        permissions = [
            ("book_outside_hours", "Can book outside opening or working hours, with a reason")
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(completed_at__isnull=False),
                name="completed_session_has_completion_time",
                violation_error_message="A completed session needs its completion time.",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("scheduled_at")),
                name="session_ends_after_it_starts",
                violation_error_message="An appointment must end after it starts.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="treatment") | Q(plan__isnull=False),
                name="treatment_session_belongs_to_a_plan",
                violation_error_message="A treatment session belongs to a plan.",
            ),
        ]

    def __str__(self):
        local = timezone.localtime(self.scheduled_at)
        return f"{self.patient.full_name}: {local:%Y-%m-%d %H:%M}"

    @property
    def minutes(self):
        return int((self.ends_at - self.scheduled_at).total_seconds() // 60)

    @property
    def scheduled_on(self):
        return timezone.localtime(self.scheduled_at).date()

    @property
    def is_due(self):
        """Due today or overdue: logging it is the main action (a later one needs a reason)."""
        return self.scheduled_on <= timezone.localdate()

    def clean(self):
        if self.plan_id and self.patient_id and self.plan.patient_id != self.patient_id:
            raise ValidationError("A session belongs to its plan's patient.")
        if self.room_id and self.location_id and self.room.location_id != self.location_id:
            raise ValidationError({"room": "This room is at another location."})
        if self.device_id and self.location_id and self.device.location_id != self.location_id:
            raise ValidationError({"device": "This device belongs to another location."})


class VisitType(models.Model):
    """An appointment outside a plan (consultation, review, patch test, photo visit): its usual
    length and whether it takes a room. The manager edits them; staff may change a length
    when booking."""

    kind = models.CharField(
        max_length=14,
        unique=True,
        choices=[(k, label) for k, label in Session.Kind.choices if k != Session.Kind.TREATMENT],
    )
    minutes = models.PositiveSmallIntegerField("usual length (minutes)", default=30)
    needs_room = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.CheckConstraint(
                condition=Q(minutes__gte=5) & Q(minutes__lte=480),
                name="visit_type_5_to_480_minutes",
                violation_error_message="An appointment lasts from 5 to 480 minutes.",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.minutes} min)"


class SessionTreatment(models.Model):
    """A treatment done (or to be done) in a session, with the parameters used."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="treatments")
    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, null=True, blank=True, related_name="session_treatments"
    )
    treatment = models.ForeignKey(Treatment, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Session n of the course."
    )
    parameters = models.JSONField(default=dict, blank=True)
    amended_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["session", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "number"],
                name="unique_session_number_per_course",
                violation_error_message="This course already has a session with that number.",
            ),
        ]

    def __str__(self):
        if self.course_id and self.number:
            return f"{self.treatment.name} {self.number} of {self.course.sessions_count}"
        return self.treatment.name

    @property
    def numbering(self):
        """'2 of 4' within its course ('' for a session outside any course)."""
        if self.course_id and self.number:
            return f"{self.number} of {self.course.sessions_count}"
        return ""

    def clean(self):
        validate_json_object(self.parameters, "Parameters", '{"passes": 3}')
        if self.treatment_id and self.parameters:
            done = self.session_id and self.session.status == Session.Status.COMPLETED
            try:
                self.parameters = clean_parameters(
                    self.treatment.parameters.all(), self.parameters, partial=not done
                )
            except ValidationError as exc:
                raise ValidationError(
                    {"parameters": [m for ms in exc.message_dict.values() for m in ms]}
                ) from None


def _total_within_instrument_range():
    """One CheckConstraint condition: each instrument's total stays within its own range."""
    condition = Q()
    for code, instrument in scales.INSTRUMENTS.items():
        condition |= Q(
            instrument=code, total__gte=instrument.min_total, total__lte=instrument.max_total
        )
    return condition


class AssessmentQuerySet(models.QuerySet):
    def baseline(self):
        return self.filter(session__isnull=True)


class Assessment(TimeStamped):
    """A score of one scar site with one instrument on a date: at baseline or in a session.

    The items are what the clinician typed; the total is computed by plans.scales on save and
    stored so that reports can filter and aggregate it in the database.
    """

    # patient, scar_site and session need no index of their own: assessment_patient_day_idx,
    # assessment_series_idx and the one-score unique constraint each start with one of them.
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="assessments", db_index=False
    )
    scar_site = models.ForeignKey(
        ScarSite, on_delete=models.PROTECT, related_name="assessments", db_index=False
    )
    session = models.ForeignKey(
        Session,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assessments",
        db_index=False,
    )
    instrument = models.CharField(max_length=20, choices=scales.CHOICES)
    assessed_on = models.DateField(default=timezone.localdate, validators=[validate_clinic_date])
    assessor = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="assessments")
    items = models.JSONField()
    total = models.SmallIntegerField(editable=False)
    notes = models.TextField(blank=True, help_text="Staff only.")
    amended_at = models.DateTimeField(null=True, blank=True, editable=False)
    # History is read per record (by id), never by these: no index on them (issue 12).
    history = HistoricalRecords(no_db_index=["patient", "scar_site", "session", "assessor"])

    objects = AssessmentQuerySet.as_manager()

    class Meta:
        ordering = ["scar_site", "instrument", "assessed_on", "id"]
        indexes = [
            models.Index(
                fields=["scar_site", "instrument", "assessed_on"], name="assessment_series_idx"
            ),
            models.Index(fields=["patient", "assessed_on"], name="assessment_patient_day_idx"),
            # The admin's list, newest first (ties by id): read off the index in its order.
            models.Index(fields=["assessed_on", "id"], name="assessment_day_idx"),
            # Each score's baseline for clinic outcomes: an index-only lookup (total included
            # on PostgreSQL) over the scores taken outside a session only.
            models.Index(
                fields=["scar_site", "instrument", "assessed_on", "id"],
                include=["total"],
                condition=Q(session__isnull=True),
                name="assessment_baseline_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_total_within_instrument_range(),
                name="assessment_total_within_instrument_range",
                violation_error_message="The total is outside the instrument's range.",
            ),
            models.UniqueConstraint(
                fields=["session", "scar_site", "instrument"],
                name="one_score_per_instrument_site_and_session",
                violation_error_message="This scar site already has that score in this session.",
            ),
        ]

    def __str__(self):
        return f"{self.get_instrument_display()} {self.total} ({self.assessed_on})"

    @property
    def definition(self):
        return scales.get(self.instrument)

    @property
    def is_baseline(self):
        return self.session_id is None

    def clean(self):
        errors = {}
        try:
            instrument = scales.get(self.instrument)
        except ValueError as exc:
            raise ValidationError({"instrument": str(exc)}) from None
        try:
            validate_json_object(self.items, "Items", '{"vascularity": 1, "height": 2}')
        except ValidationError as exc:
            raise ValidationError({"items": exc.messages}) from None
        try:
            self.items = instrument.validate(self.items)
        except ValidationError as exc:
            errors["items"] = [
                message for messages in exc.message_dict.values() for message in messages
            ]
        if self.scar_site_id and self.patient_id and self.scar_site.patient_id != self.patient_id:
            errors["scar_site"] = "This scar site belongs to another patient."
        if self.session_id and self.session.patient_id != self.patient_id:
            errors["session"] = "This session belongs to another patient."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        # The total is never typed: always recomputed from the validated items.
        self.total = scales.get(self.instrument).total(self.items)
        super().save(*args, **kwargs)


class AdverseEventQuerySet(models.QuerySet):
    def unresolved(self):
        return self.filter(resolved_on__isnull=True)


class AdverseEvent(TimeStamped):
    class Kind(models.TextChoices):
        ERYTHEMA = "erythema", "Erythema (redness)"
        SWELLING = "swelling", "Swelling"
        PAIN = "pain", "Pain"
        ITCHING = "itching", "Itching"
        PURPURA = "purpura", "Purpura / bruising"
        BLISTERING = "blistering", "Blistering"
        CRUSTING = "crusting", "Crusting"
        HYPERPIGMENTATION = "hyperpigmentation", "Hyperpigmentation"
        HYPOPIGMENTATION = "hypopigmentation", "Hypopigmentation"
        INFECTION = "infection", "Infection"
        HERPES_REACTIVATION = "herpes_reactivation", "Herpes reactivation"
        ACNE_FLARE = "acne_flare", "Acne flare"
        SCARRING = "scarring", "Scarring"

    class Severity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="adverse_events")
    scar_site = models.ForeignKey(
        ScarSite, on_delete=models.PROTECT, null=True, blank=True, related_name="adverse_events"
    )
    kind = models.CharField(max_length=24, choices=Kind)
    severity = models.CharField(max_length=10, choices=Severity)
    onset_on = models.DateField(default=timezone.localdate, validators=[validate_clinic_date])
    resolved_on = models.DateField(null=True, blank=True, validators=[validate_clinic_date])
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    objects = AdverseEventQuerySet.as_manager()

    class Meta:
        ordering = ["-onset_on", "-id"]
        indexes = [
            models.Index(fields=["resolved_on", "onset_on"], name="adverse_event_open_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolved_on__isnull=True) | Q(resolved_on__gte=models.F("onset_on")),
                name="adverse_event_resolved_after_onset",
                violation_error_message="An adverse event cannot resolve before its onset.",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_severity_display()}, {self.onset_on})"

    def clean(self):
        if self.resolved_on and self.onset_on and self.resolved_on < self.onset_on:
            raise ValidationError({"resolved_on": "The resolution date must be on or after onset."})
        if self.session_id and self.session.patient_id != self.patient_id:
            raise ValidationError({"session": "This session belongs to another patient."})
        if self.scar_site_id and self.patient_id and self.scar_site.patient_id != self.patient_id:
            raise ValidationError({"scar_site": "This scar site belongs to another patient."})


def validate_image_content(upload):
    """Kept for migration 0003; new code checks photos with PHOTO_CHECK."""
    from PIL import Image

    try:
        upload.seek(0)
        Image.open(upload).verify()
    except Exception:
        raise ValidationError("Photo must be a JPEG, PNG or WebP image.") from None
    finally:
        upload.seek(0)


def photo_upload_to(photo, filename):
    return random_name(f"photos/{photo.session.patient_id}", filename)


PHOTO_CHECK = UploadCheck((JPEG, PNG, WEBP), "PHOTO_MAX_BYTES", "photo")


class SessionPhoto(TimeStamped):
    """A clinical photo of one scar site taken in a session; private, served by a checked view."""

    class View(models.TextChoices):
        """From where the photo was taken: comparisons are only fair between the same view."""

        FRONT = "front", "Front"
        LEFT_45 = "left_45", "Left 45 degrees"
        RIGHT_45 = "right_45", "Right 45 degrees"
        CLOSE_UP = "close_up", "Close-up"

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="photos")
    scar_site = models.ForeignKey(ScarSite, on_delete=models.PROTECT, related_name="photos")
    image = models.ImageField(upload_to=photo_upload_to, validators=[PHOTO_CHECK])
    taken_on = models.DateField(default=timezone.localdate, validators=[validate_clinic_date])
    caption = models.CharField(max_length=200, blank=True)
    view = models.CharField(max_length=10, choices=View, default=View.FRONT)

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="photos")
    scar_site = models.ForeignKey(ScarSite, on_delete=models.PROTECT, related_name="photos")
    image = models.ImageField(upload_to=photo_upload_to, validators=[PHOTO_CHECK])
    taken_on = models.DateField(default=timezone.localdate, validators=[validate_clinic_date])
    caption = models.CharField(max_length=200, blank=True)
    taken_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    # An amendment withdraws a photo taken in error; it leaves reports but is never deleted.
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["scar_site", "taken_on", "id"]

    def __str__(self):
        return f"Photo of {self.scar_site} on {self.taken_on}"

    def save(self, *args, **kwargs):
        if is_new_upload(self.image):
            # Drawn afresh: the camera's EXIF (location included) stays behind, and the
            # orientation it recorded is applied to the pixels.
            self.image = reencode_image(self.image)
        super().save(*args, **kwargs)

    def clean(self):
        if (
            self.scar_site_id
            and self.session_id
            and self.scar_site.patient_id != self.session.patient_id
        ):
            raise ValidationError({"scar_site": "This scar site belongs to another patient."})


class SafetyOverride(models.Model):
    """A clinician's written decision to go ahead despite a blocking safety finding."""

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="overrides")
    treatment = models.ForeignKey(Treatment, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=40)
    finding = models.TextField(help_text="The message that was shown.")
    reason = models.TextField()
    overridden_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    overridden_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-overridden_at"]
        permissions = [("override_safety_block", "Can override a blocking safety rule")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="override_needs_a_reason",
                violation_error_message="An override needs a written reason.",
            ),
        ]

    def __str__(self):
        return f"{self.rule} overridden by {self.overridden_by} on {self.overridden_at:%Y-%m-%d}"


class Amendment(models.Model):
    """A correction of a logged session by its clinician or a manager, with the reason.

    Append-only: the values before and after are kept here (and in each record's history),
    so a report can show the amended value and say that it was amended.
    """

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="amendments")
    reason = models.TextField()
    changes = models.JSONField(
        default=list, help_text="One entry per changed value: what, before, after."
    )
    amended_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    amended_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-amended_at", "-id"]
        permissions = [("amend_any_session", "Can amend a session someone else logged")]
        indexes = [models.Index(fields=["session", "amended_at"], name="amendment_session_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="amendment_needs_a_reason",
                violation_error_message="An amendment needs a written reason.",
            ),
        ]

    def __str__(self):
        return f"Amendment of {self.session} by {self.amended_by} on {self.amended_at:%Y-%m-%d}"


# --- clinic outcomes summary (kept current by plans.outcome_summary) -----------------------
# Plain integer columns, not foreign keys: the summary is rebuilt from the records it counts,
# never the other way round, and it must not hold up a delete or a bulk load.


class OutcomeDay(models.Model):
    """Completed sessions of one local day, per treatment and (plan target site) scar type."""

    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    sessions = models.IntegerField()
    sessions_with_adverse_event = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "treatment_id", "scar_type_id"], name="outcome_day_unique"
            )
        ]

    def __str__(self):
        return f"{self.day} {self.treatment_id}/{self.scar_type_id}: {self.sessions}"


class OutcomeScoreDay(models.Model):
    """Scores of one local day's completed sessions: how many, and the sum of their change
    from the site's first baseline, per treatment, (scored site) scar type and instrument."""

    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    instrument = models.CharField(max_length=20)
    scores = models.IntegerField()
    change_sum = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "treatment_id", "scar_type_id", "instrument"],
                name="outcome_score_day_unique",
            )
        ]

    def __str__(self):
        return f"{self.day} {self.treatment_id}/{self.scar_type_id} {self.instrument}"


class OutcomePatientDay(models.Model):
    """Who was treated on a local day, per treatment and scar type: distinct patients over a
    range are not a sum of days, so they are counted from these narrow rows."""

    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    patient_id = models.IntegerField()
    # The patient's previous day in this treatment and scar type (none: this is the first),
    # which OutcomePatientGap counts.
    prev_day = models.DateField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "treatment_id", "scar_type_id", "patient_id"],
                name="outcome_patient_day_unique",
            )
        ]
        # The refresh re-reads a changed day's patients' rows to set their prev_day.
        indexes = [models.Index(fields=["patient_id"], name="outcome_patient_day_patient")]

    def __str__(self):
        return f"{self.day} {self.treatment_id}/{self.scar_type_id} #{self.patient_id}"


class OutcomePatientGap(models.Model):
    """How many patients were treated on a local day, per treatment, scar type and the day
    each of them was last treated so before (none: never). The distinct patients from start
    to end are then a plain sum: those of the range's days last seen before start (or never),
    each counted on their first day in the range, with no DISTINCT over patient rows."""

    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    prev_day = models.DateField(null=True)
    patients = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["day", "treatment_id", "scar_type_id"], name="outcome_gap_day")
        ]

    def __str__(self):
        return f"{self.day} {self.treatment_id}/{self.scar_type_id} after {self.prev_day}"


class OutcomeSessionGroup(models.Model):
    """A completed session once per (treatment, plan target site's scar type), with its local
    day, patient and whether it had an adverse event: the join OutcomeDay adds up, kept so a
    change re-reads only the sessions it touched, then re-adds their days from these rows."""

    session_id = models.BigIntegerField()
    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    patient_id = models.IntegerField()
    with_event = models.SmallIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["session_id"], name="outcome_group_session"),
            # A day's rows (a day recomputed), and a patient's rows on a day (the patient
            # rows of a changed session's patient).
            models.Index(fields=["day", "patient_id"], name="outcome_group_day"),
        ]

    def __str__(self):
        return f"session {self.session_id}: {self.treatment_id}/{self.scar_type_id}"


class OutcomeSessionScore(models.Model):
    """A completed session's scores per (treatment, scored site's scar type, instrument): how
    many, and the sum of their change from each site's first baseline (OutcomeScoreDay adds
    these up per day)."""

    session_id = models.BigIntegerField()
    day = models.DateField()
    treatment_id = models.IntegerField()
    scar_type_id = models.IntegerField()
    instrument = models.CharField(max_length=20)
    scores = models.IntegerField()
    change_sum = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["session_id"], name="outcome_score_session"),
            models.Index(fields=["day"], name="outcome_score_day"),
        ]

    def __str__(self):
        return f"session {self.session_id}: {self.instrument}"


class OutcomeDirtySession(models.Model):
    """A session whose summary rows may be out of date (logged, moved, cancelled, re-scored,
    deleted...). Written in the transaction of the change; the next outcomes read recomputes
    that session's rows and re-adds the days they fall on, then deletes the mark."""

    session_id = models.BigIntegerField()

    def __str__(self):
        return f"out of date: session {self.session_id}"


class OutcomeDirtyDay(models.Model):
    """A local day whose summary rows are out of date (no day: rebuild everything). Written in
    the transaction of the change; the next outcomes read recomputes the day and deletes it."""

    day = models.DateField(null=True)

    def __str__(self):
        return f"out of date: {self.day or 'everything'}"


class OutcomeSummaryState(models.Model):
    """One row: whether the summary has been built, and a token that changes with each
    refresh, so a cached outcomes table is used only while nothing under it changed."""

    built = models.BooleanField(default=False)
    version = models.CharField(max_length=32)

    def __str__(self):
        return f"outcomes summary {self.version}"


# --- the patient's copy sent to the patient, and appointment reminders (issue 13.4, 13.5) ---


class ReportDelivery(models.Model):
    """The patient's copy of a progress report, sent by e-mail or as a link: who sent what,
    to whom and when. A link row holds only a hash of its token; the token itself is shown
    once, to the sender (and in the e-mail when the link is e-mailed)."""

    class How(models.TextChoices):
        EMAIL = "email", "E-mail with the PDF"
        LINK = "link", "Patient link"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="deliveries")
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    how = models.CharField(max_length=8, choices=How)
    to_address = models.EmailField(
        "sent to", blank=True, help_text="Empty for a link handed over by the clinician."
    )
    sent_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)
    # The sending form's once-only token: a double click sends one e-mail, makes one link.
    form_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name_plural = "report deliveries"
        permissions = [("send_report", "Can send a patient their report")]
        indexes = [models.Index(fields=["patient", "sent_at"], name="delivery_patient_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(how="link") | Q(token_hash__isnull=False, expires_at__isnull=False),
                name="report_link_has_token_and_expiry",
            ),
            models.CheckConstraint(
                condition=~Q(how="email") | ~Q(to_address=""),
                name="report_email_has_an_address",
            ),
        ]

    def __str__(self):
        return f"{self.get_how_display()} for {self.patient} by {self.sent_by} on {self.sent_at}"

    def is_open_at(self, moment):
        """A link that opens: not revoked, not expired."""
        return (
            self.how == self.How.LINK
            and self.revoked_at is None
            and self.expires_at is not None
            and moment < self.expires_at
        )

    @property
    def is_open(self):
        return self.is_open_at(timezone.now())


class ReportLinkOpening(models.Model):
    """One opening of a patient link (nobody is logged in: the access log needs a user)."""

    delivery = models.ForeignKey(ReportDelivery, on_delete=models.PROTECT, related_name="openings")
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["delivery", "at"], name="link_opening_idx")]

    def __str__(self):
        return f"Opened {self.at:%Y-%m-%d %H:%M} from {self.ip}"


class Reminder(models.Model):
    """An appointment reminder, claimed before it is sent: one per session and start time, so
    two runs at once send one e-mail and a moved appointment gets a new reminder.

    sent_at empty: claimed at claimed_at by a run that has not (yet) sent it; a claim older
    than plans.reminders.STALE_CLAIM is taken over by the next run.
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="reminders")
    scheduled_at = models.DateTimeField(help_text="The start time it reminded of.")
    to_address = models.EmailField()
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-claimed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "scheduled_at"], name="one_reminder_per_appointment_time"
            ),
        ]

    def __str__(self):
        state = f"sent {self.sent_at:%Y-%m-%d %H:%M}" if self.sent_at else "claimed"
        return f"Reminder to {self.to_address} ({state})"


class ReportPhotoChoice(models.Model):
    """The before and after photo a clinician chose for a scar site's progress report.

    The report shows this pair instead of first vs latest while both photos may still be
    shown (not withdrawn, photography consent in force on the day each was taken).
    """

    scar_site = models.OneToOneField(
        ScarSite, on_delete=models.PROTECT, related_name="report_photo_choice"
    )
    before = models.ForeignKey(SessionPhoto, on_delete=models.PROTECT, related_name="+")
    after = models.ForeignKey(SessionPhoto, on_delete=models.PROTECT, related_name="+")
    chosen_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    chosen_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(before=F("after")),
                name="report_photo_choice_two_photos",
                violation_error_message="Choose two different photos.",
            ),
        ]

    def __str__(self):
        return f"Report photos of {self.scar_site}"

    def clean(self):
        if not (self.scar_site_id and self.before_id and self.after_id):
            return
        for photo in (self.before, self.after):
            if photo.scar_site_id != self.scar_site_id:
                raise ValidationError("Both photos must be of this scar site.")
        if self.before.taken_on >= self.after.taken_on:
            raise ValidationError("The before photo must be taken on an earlier day.")


# --- plan templates ------------------------------------------------------------------------


class PlanTemplateQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class PlanTemplate(TimeStamped):
    """A named protocol a manager saved from a plan: its courses, to start a new plan from."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Untick to stop offering it in the plan builder."
    )
    created_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords(no_db_index=["created_by"])

    objects = PlanTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "plan template"

    def __str__(self):
        return self.name

    def summary(self):
        """The days of each course, e.g. "weeks 0/6/12 and 3/9/15" (courses prefetched)."""
        parts, unit = [], None
        for course in self.courses.all():
            days = course_days(course)
            word, _, numbers = days.partition(" ")
            # "weeks 0/6/12 and 3/9/15": the unit once while it stays the same.
            parts.append(numbers if word == unit else days)
            unit = word
        return " and ".join(parts)


def course_days(course) -> str:
    """When a course's sessions fall, in weeks when they all fall on whole weeks."""
    days = [course.offset_days + n * course.interval_days for n in range(course.sessions_count)]
    if all(day % 7 == 0 for day in days):
        return ("week " if len(days) == 1 else "weeks ") + "/".join(str(d // 7) for d in days)
    return ("day " if len(days) == 1 else "days ") + "/".join(str(d) for d in days)


class PlanTemplateCourse(models.Model):
    """One course of a template, with the planned values (a peel's agent) if it has them."""

    template = models.ForeignKey(PlanTemplate, on_delete=models.CASCADE, related_name="courses")
    treatment = models.ForeignKey(Treatment, on_delete=models.PROTECT, related_name="+")
    sessions_count = models.PositiveSmallIntegerField("sessions")
    interval_days = models.PositiveSmallIntegerField("every (days)", default=0)
    offset_days = models.PositiveSmallIntegerField("starting on day", default=0)
    label = models.CharField(max_length=80, blank=True)
    default_parameters = models.JSONField(
        "planned values", default=dict, blank=True, help_text="e.g. {'agent': 'glycolic'}."
    )
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["template", "order", "offset_days", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sessions_count__gte=1) & Q(sessions_count__lte=52),
                name="template_course_sessions_1_to_52",
                violation_error_message="A course has from 1 to 52 sessions.",
            ),
            models.CheckConstraint(
                condition=Q(sessions_count=1) | Q(interval_days__gte=1),
                name="template_course_repeats_need_an_interval",
                violation_error_message="Repeated sessions need an interval of at least 1 day.",
            ),
            models.CheckConstraint(
                condition=Q(interval_days__lte=365) & Q(offset_days__lte=730),
                name="template_course_interval_and_offset_bounded",
                violation_error_message="Interval is at most 365 days, start offset 730 days.",
            ),
        ]

    def __str__(self):
        name = self.label or self.treatment.name
        return f"{name} x {self.sessions_count}, {course_days(self)}"

    def clean(self):
        validate_json_object(self.default_parameters, "Planned values", '{"agent": "glycolic"}')
