"""Patients, their dated medical flags, consents and scar sites.

Clinical records are archived, never deleted, and every change is kept with who and when
(django-simple-history). Flags carry dates, not booleans, so that rules can be evaluated as of
any session's date.
"""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Upper
from django.utils import timezone
from simple_history.models import HistoricalRecords

from clinic.models import TimeStamped
from clinic.uploads import JPEG, PDF, PNG, UploadCheck, random_name
from clinic.validators import validate_clinic_date


class ArchivableQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived_at__isnull=True)

    def archived(self):
        return self.filter(archived_at__isnull=False)


class Archivable(models.Model):
    """Records leave the working lists by being archived; their history stays."""

    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_archived(self):
        return self.archived_at is not None

    def archive(self):
        if self.archived_at is None:
            self.archived_at = timezone.now()
            self.save(update_fields=["archived_at", "updated_at"])


class PatientQuerySet(ArchivableQuerySet):
    def search(self, text):
        """Record number, date of birth (YYYY-MM-DD or DD/MM/YYYY) or name prefixes."""
        text = (text or "").strip()
        if not text:
            return self
        query = Q(record_number__iexact=text)
        born = _parse_date(text)
        if born:
            query |= Q(date_of_birth=born)
        names = Q()
        for word in text.split():  # every word must start a first or last name
            names &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
        return self.filter(query | names)


def _parse_date(text):
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return timezone.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


# Patient lists are in name order, by the expressions the search compares (UPPER(name)). A
# list being browsed reads its first page off patient_list_order_idx (an unfiltered page of
# 136,000 patients: 97 ms of sorting -> under 1 ms).
NAME_ORDER = (Upper("last_name").asc(), Upper("first_name").asc(), F("pk").asc())
# A search keeps that order through expressions no index holds (`UPPER(x) || ''`, the same
# strings): with the list-order index usable, PostgreSQL walked it hoping to meet a page of
# matches early, and a search with few matches read the whole index (63-113 ms at 136,000)
# instead of finding them through the search indexes and sorting those few.
SEARCH_ORDER = (
    Concat(Upper("last_name"), Value("")).asc(),
    Concat(Upper("first_name"), Value("")).asc(),
    F("pk").asc(),
)


class Patient(Archivable, TimeStamped):
    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "X", "Other / not stated"

    class Fitzpatrick(models.IntegerChoices):
        I = 1, "I: always burns, never tans"  # noqa: E741 - the clinical numeral
        II = 2, "II: usually burns, tans minimally"
        III = 3, "III: sometimes burns, tans uniformly"
        IV = 4, "IV: burns minimally, always tans"
        V = 5, "V: very rarely burns, tans very easily"
        VI = 6, "VI: never burns"

    record_number = models.CharField(
        "record number",
        max_length=20,
        unique=True,
        help_text="The clinic's own patient number, e.g. CX-000123.",
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField(validators=[validate_clinic_date])
    sex = models.CharField(max_length=1, choices=Sex, default=Sex.OTHER)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    fitzpatrick_type = models.PositiveSmallIntegerField(
        "Fitzpatrick skin type", choices=Fitzpatrick, null=True, blank=True
    )
    other_allergies = models.TextField(blank=True)
    medications = models.TextField("current medications", blank=True)
    # Incremented on every staff save: a stale form is refused instead of overwriting.
    version = models.PositiveIntegerField(default=1, editable=False)
    history = HistoricalRecords()

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "record_number"]
        permissions = [
            ("archive_patient", "Can archive a patient"),
            ("export_fhir", "Can download a patient's record as FHIR"),
            ("export_full_record", "Can export a patient's full record (subject access)"),
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="patient_name_idx"),
            models.Index(fields=["date_of_birth"], name="patient_dob_idx"),
            # Lists show patients still in care unless asked: the index holds only those.
            models.Index(
                Upper("last_name"),
                Upper("first_name"),
                F("id"),
                name="patient_list_order_idx",
                condition=Q(archived_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(fitzpatrick_type__isnull=True) | Q(fitzpatrick_type__range=(1, 6)),
                name="patient_fitzpatrick_1_to_6",
                violation_error_message="Fitzpatrick skin type must be I to VI (1-6).",
            ),
        ]

    def __str__(self):
        return f"{self.last_name}, {self.first_name} ({self.record_number})"

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}"

    def clean(self):
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            raise ValidationError({"date_of_birth": "Date of birth cannot be in the future."})

    def acne_level_on(self, day):
        """The acne activity recorded last on or before `day` ('' when none recorded)."""
        record = self.acne_records.filter(recorded_on__lte=day).order_by("-recorded_on", "-id")
        record = record.values_list("level", flat=True).first()
        return record or ""


class RecordNumberFormat(models.Model):
    """How new record numbers are made: a prefix and a zero-padded number (CX-000108). One row,
    edited by the manager in the admin; staff may still type another number."""

    prefix = models.CharField(
        max_length=10,
        default="CX-",
        blank=True,
        help_text="Letters before the number, e.g. CX-. Letters, digits, '-' and '/' only.",
        validators=[
            RegexValidator(r"^[A-Za-z0-9/-]*$", "Use letters, digits, '-' and '/' only (e.g. CX-).")
        ],
    )
    digits = models.PositiveSmallIntegerField(
        default=6, help_text="How many digits the number has, zero-padded (3 to 10)."
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "record number format"
        verbose_name_plural = "record number format"
        constraints = [
            models.CheckConstraint(
                condition=Q(digits__gte=3) & Q(digits__lte=10),
                name="record_number_digits_3_to_10",
                violation_error_message="A record number has from 3 to 10 digits.",
            ),
        ]

    def __str__(self):
        return f"{self.prefix}{'0' * (self.digits - 1)}1"


class AcneActivity(TimeStamped):
    """Acne activity as seen on a date; the latest record on or before a day applies."""

    class Level(models.TextChoices):
        NONE = "none", "None (clear)"
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="acne_records")
    recorded_on = models.DateField(default=timezone.localdate, validators=[validate_clinic_date])
    level = models.CharField(max_length=10, choices=Level)
    note = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-recorded_on", "-id"]
        verbose_name = "acne activity record"
        verbose_name_plural = "acne activity records"
        indexes = [models.Index(fields=["patient", "recorded_on"], name="acne_patient_day_idx")]

    def __str__(self):
        return f"{self.get_level_display()} on {self.recorded_on}"

    @property
    def is_active(self):
        return self.level != self.Level.NONE


class MedicalFlag(TimeStamped):
    """A dated medical fact that safety rules read as of a session's date."""

    class Kind(models.TextChoices):
        ISOTRETINOIN = "isotretinoin", "Isotretinoin course"
        PREGNANCY = "pregnancy", "Pregnancy"
        BREASTFEEDING = "breastfeeding", "Breastfeeding"
        SALICYLATE_ALLERGY = "salicylate_allergy", "Salicylate / aspirin allergy"
        KELOID_HISTORY = "keloid_history", "History of keloids"
        ANTICOAGULANT = "anticoagulant", "Anticoagulant medication"
        BLEEDING_DISORDER = "bleeding_disorder", "Bleeding disorder"
        HERPES_SIMPLEX = "herpes_simplex", "Herpes simplex history"
        OTHER_ALLERGY = "other_allergy", "Other allergy"
        MEDICATION = "medication", "Other relevant medication"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=24, choices=Kind)
    started_on = models.DateField(
        null=True,
        blank=True,
        help_text="Leave empty if it applies since before records began.",
        validators=[validate_clinic_date],
    )
    ended_on = models.DateField(
        null=True,
        blank=True,
        help_text="Leave empty while ongoing.",
        validators=[validate_clinic_date],
    )
    detail = models.CharField(max_length=200, blank=True, help_text="e.g. drug and dose.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["kind", "-started_on"]
        indexes = [models.Index(fields=["patient", "kind"], name="flag_patient_kind_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(started_on__isnull=True)
                | Q(ended_on__isnull=True)
                | Q(ended_on__gte=models.F("started_on")),
                name="flag_ends_after_it_starts",
                violation_error_message="A flag cannot end before it starts.",
            ),
        ]

    def __str__(self):
        span = f"{self.started_on or '…'} to {self.ended_on or 'ongoing'}"
        return f"{self.get_kind_display()} ({span})"

    def clean(self):
        if self.started_on and self.ended_on and self.ended_on < self.started_on:
            raise ValidationError({"ended_on": "The end date must be on or after the start date."})

    def active_on(self, day: date) -> bool:
        return (self.started_on is None or self.started_on <= day) and (
            self.ended_on is None or day <= self.ended_on
        )


def consent_upload_to(consent, filename):
    return random_name(f"consents/{consent.patient_id}", filename)


class Consent(TimeStamped):
    class Kind(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        CLINICAL_PHOTOGRAPHY = "clinical_photography", "Clinical photography"
        MARKETING_PHOTOGRAPHY = "marketing_photography", "Marketing photography"
        REMINDERS = "reminders", "E-mail appointment reminders"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    kind = models.CharField(max_length=24, choices=Kind)
    signed_on = models.DateField(validators=[validate_clinic_date])
    withdrawn_on = models.DateField(null=True, blank=True, validators=[validate_clinic_date])
    expires_on = models.DateField(
        null=True,
        blank=True,
        validators=[validate_clinic_date],
        help_text="Last day it is valid, if it must be renewed; empty: until withdrawn.",
    )
    scanned_file = models.FileField(
        upload_to=consent_upload_to,
        blank=True,
        validators=[UploadCheck((PDF, JPEG, PNG), "CONSENT_MAX_BYTES", "consent scan")],
        help_text="PDF, JPEG or PNG.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["kind", "-signed_on"]
        indexes = [models.Index(fields=["patient", "kind"], name="consent_patient_kind_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gte=models.F("signed_on")),
                name="consent_withdrawn_after_signed",
                violation_error_message="Consent cannot be withdrawn before it was signed.",
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=models.F("signed_on")),
                name="consent_expires_after_signed",
                violation_error_message="Consent cannot expire before it was signed.",
            ),
        ]

    def __str__(self):
        if self.withdrawn_on:
            state = f"withdrawn {self.withdrawn_on}"
        elif self.expires_on:
            state = f"valid to {self.expires_on}"
        else:
            state = "in force"
        return f"{self.get_kind_display()} consent signed {self.signed_on} ({state})"

    def clean(self):
        if self.withdrawn_on and self.signed_on and self.withdrawn_on < self.signed_on:
            raise ValidationError(
                {"withdrawn_on": "The withdrawal date must be on or after the signing date."}
            )
        if self.expires_on and self.signed_on and self.expires_on < self.signed_on:
            raise ValidationError(
                {"expires_on": "The expiry date must be on or after the signing date."}
            )

    def in_force_on(self, day: date) -> bool:
        """Signed on or before `day`, not withdrawn by then, and not past its expiry."""
        return (
            self.signed_on <= day
            and (self.withdrawn_on is None or day < self.withdrawn_on)
            and (self.expires_on is None or day <= self.expires_on)
        )


class ScarType(models.Model):
    """A kind of scar (DOMAIN.md); a lookup table so treatments can name what they suit."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    group = models.CharField(max_length=20, help_text="raised, atrophic or flat")
    description = models.CharField(max_length=200)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order"]

    def __str__(self):
        return self.name

    @property
    def is_atrophic(self):
        return self.group == "atrophic"


class ScarSite(Archivable, TimeStamped):
    """One tracked area of a patient, so that its scores and photos line up over time."""

    class BodySite(models.TextChoices):
        FOREHEAD = "forehead", "Forehead"
        LEFT_CHEEK = "left_cheek", "Left cheek"
        RIGHT_CHEEK = "right_cheek", "Right cheek"
        TEMPLES = "temples", "Temples"
        NOSE = "nose", "Nose"
        CHIN = "chin", "Chin"
        JAWLINE = "jawline", "Jawline"
        NECK = "neck", "Neck"
        CHEST = "chest", "Chest"
        SHOULDERS = "shoulders", "Shoulders"
        UPPER_BACK = "upper_back", "Upper back"
        LOWER_BACK = "lower_back", "Lower back"
        ARMS = "arms", "Arms"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="scar_sites")
    body_site = models.CharField(max_length=20, choices=BodySite)
    scar_types = models.ManyToManyField(ScarType, related_name="scar_sites")
    description = models.TextField(blank=True)
    first_recorded_on = models.DateField(
        default=timezone.localdate, validators=[validate_clinic_date]
    )
    history = HistoricalRecords(m2m_fields=[scar_types])

    objects = ArchivableQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "body_site"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "body_site"],
                condition=Q(archived_at__isnull=True),
                name="one_open_scar_site_per_body_site",
                violation_error_message="This patient already has a scar site there.",
            ),
        ]

    def __str__(self):
        return self.get_body_site_display()


# --- access log (issue 11.9) -----------------------------------------------------------------


class RecordAccessQuerySet(models.QuerySet):
    """Rows are added, never changed or removed: bulk updates and deletes are refused too."""

    def update(self, **kwargs):
        raise RecordAccess.AppendOnly("The access log cannot be changed.")

    update.alters_data = True

    def bulk_update(self, objs, fields, batch_size=None):
        raise RecordAccess.AppendOnly("The access log cannot be changed.")

    bulk_update.alters_data = True

    def delete(self):
        raise RecordAccess.AppendOnly("The access log cannot be deleted.")

    delete.alters_data = True
    delete.queryset_only = True


class RecordAccess(models.Model):
    """Who opened which patient's record, report or file, when and from where. Append-only:
    the app offers no way to change or remove a row (see the admin and the QuerySet)."""

    class AppendOnly(Exception):
        """Raised on any attempt to change or delete a row of the access log."""

    class What(models.TextChoices):
        RECORD = "record", "Patient overview"
        ADMIN = "admin", "Patient record in the admin"
        REPORT = "report", "Progress report (screen or print)"
        REPORT_PDF = "report_pdf", "Progress report PDF"
        CSV = "csv", "Plan sessions CSV"
        PHOTO = "photo", "Clinical photo"
        CONSENT = "consent", "Consent scan"
        FHIR = "fhir", "FHIR record export"
        FULL_RECORD = "full_record", "Full record export (subject access)"

    # PROTECT: a log row outlives nothing it names, so neither can be deleted from under it.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="accesses")
    what = models.CharField(max_length=12, choices=What)
    object_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The plan, photo or consent opened, if any."
    )
    path = models.CharField(max_length=500)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = RecordAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "record access"
        verbose_name_plural = "access log"
        # No add/change/delete for anyone: the admin is read-only, rows come from the views.
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["patient", "at"], name="access_patient_at_idx"),
            models.Index(fields=["user", "at"], name="access_user_at_idx"),
        ]

    def __str__(self):
        return f"{self.user} opened {self.get_what_display()} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise self.AppendOnly("The access log cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise self.AppendOnly("The access log cannot be deleted.")


# --- importing patients from a CSV file (issue 14.3) -----------------------------------------


class PatientImport(models.Model):
    """One uploaded CSV file of patients, kept as the record of an import: the file as sent,
    how its columns were mapped, the dry run's result per row, and what was imported by whom.

    The file lives here rather than in the session or on disk, so that the steps (map, dry
    run, import) work on exactly the bytes uploaded, and the record stays after the import.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded: columns to map"
        CHECKED = "checked", "Dry run done: ready to import"
        IMPORTED = "imported", "Imported"

    class Source(models.TextChoices):
        WEB = "web", "Upload page"
        COMMAND = "command", "import_patients command"

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=10, choices=Source, default=Source.WEB)
    file_name = models.CharField(max_length=200, blank=True)
    content = models.BinaryField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    encoding = models.CharField(max_length=30, blank=True)
    delimiter = models.CharField(max_length=1, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    # One entry per column of the file: the field it fills, or "" for a column left out.
    mapping = models.JSONField(default=list, blank=True)
    # Incremented whenever the mapping (and so the dry run) changes: the import button
    # carries it, so an import confirms the dry run its page showed.
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status, default=Status.UPLOADED)
    # The last dry run: [row, status, record number, name, [messages]] per row of the file.
    results = models.JSONField(default=list, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True)
    new_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)
    excluded_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(null=True, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        verbose_name = "patient import"
        default_permissions = ("view",)  # the record is written by the import, never edited
        permissions = [("import_patients", "Can import patients from a CSV file")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="imported", imported_at__isnull=False) | ~Q(status="imported"),
                name="patient_import_imported_has_a_time",
            ),
        ]

    def __str__(self):
        return f"Import #{self.pk} of {self.file_name or 'a CSV file'}"
