from django import forms
from django.db.models import BigIntegerField, Max, Q
from django.db.models.functions import Cast, Substr
from django.utils import timezone

from patients.models import (
    AcneActivity,
    Consent,
    MedicalFlag,
    Patient,
    RecordNumberFormat,
    ScarSite,
    ScarType,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


# A write whose form carried no record version (an old page, a hand-made request) would
# otherwise be applied without the lost-update check: it is refused instead.
OUT_OF_DATE = "This form is out of date or incomplete: reload the page and enter it again."


class VersionedForm(forms.ModelForm):
    """Carries the record's version so that a stale copy cannot overwrite a newer one."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        sent = cleaned.get("version")
        if self.instance.pk and sent is None:
            # Missing or not a number: never saved blind over whatever is there now.
            self.errors.pop("version", None)
            raise forms.ValidationError(OUT_OF_DATE, code="incomplete")
        if self.instance.pk and sent is not None:
            current = (
                type(self.instance)
                .objects.values_list("version", flat=True)
                .get(pk=self.instance.pk)
            )
            if current != sent:
                # The next submit is judged against the record as it is now, so that
                # "check, then save again" works.
                self.data = self.data.copy()
                self.data[self.add_prefix("version")] = current
                raise forms.ValidationError(
                    "Someone else saved this record while you were editing it. Nothing was "
                    "saved. Your changes are still in the form: check the current record "
                    "(open it in a new tab), then save again.",
                    code="stale",
                )
        return cleaned

    def save(self, commit=True):
        if self.instance.pk:
            self.instance.version = (self.instance.version or 0) + 1
        return super().save(commit)


UNASSESSED = "unassessed"
SKIN_TYPE_CHOICE = (
    "Choose the Fitzpatrick skin type: 'Not yet assessed', or I, II, III, IV, V or VI."
)


def _skin_type(value):
    """'unassessed' is stored as no skin type (NULL); I-VI as 1-6."""
    return None if value == UNASSESSED else int(value)


class PatientForm(VersionedForm):
    class Meta:
        model = Patient
        fields = [
            "record_number",
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "phone",
            "email",
            "address",
            "fitzpatrick_type",
            "other_allergies",
            "medications",
        ]
        widgets = {
            "date_of_birth": DATE,
            "address": forms.Textarea(attrs={"rows": 2}),
            "other_allergies": forms.Textarea(attrs={"rows": 2}),
            "medications": forms.Textarea(attrs={"rows": 2}),
        }

    register_anyway = forms.BooleanField(
        required=False,
        label="This is a different person: register anyway",
        help_text="Only after checking the possible existing records listed above.",
        widget=forms.HiddenInput,  # shown once a possible existing record is found
    )

    fitzpatrick_type = forms.TypedChoiceField(
        label="Fitzpatrick skin type",
        choices=[("", "Choose…"), (UNASSESSED, "Not yet assessed"), *Patient.Fitzpatrick.choices],
        coerce=_skin_type,
        empty_value=None,
        error_messages={"required": SKIN_TYPE_CHOICE, "invalid_choice": SKIN_TYPE_CHOICE},
        help_text="Choose 'Not yet assessed' until the skin type has been assessed: treatments "
        "whose risk depends on it then carry a warning.",
    )

    def __init__(self, *args, clinical=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not clinical:  # front desk: demographics only; the stored skin type is kept
            for name in ("fitzpatrick_type", "other_allergies", "medications"):
                del self.fields[name]
        elif self.instance.pk:
            # A patient on file shows what is stored: a type, or "not yet assessed".
            self.initial["fitzpatrick_type"] = self.instance.fitzpatrick_type or UNASSESSED
        self.possible_duplicates = []
        if self.instance.pk:
            del self.fields["register_anyway"]
        else:
            # A new patient's sex is chosen, not defaulted to "not stated".
            self.fields["sex"].choices = [("", "Choose…"), *Patient.Sex.choices]
            self.fields["sex"].initial = ""
            self.fields["record_number"].initial = next_record_number()

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk or cleaned.get("register_anyway"):
            return cleaned
        self.possible_duplicates = list(_same_person(cleaned)[:5])
        if self.possible_duplicates:
            self.fields["register_anyway"].widget = forms.CheckboxInput()
            raise forms.ValidationError(
                "This patient may already be registered (same name and date of birth, e-mail "
                "or phone): open the existing record below, or tick 'register anyway'.",
                code="possible_duplicate",
            )
        return cleaned

    def clean_record_number(self):
        number = normalise_record_number(self.cleaned_data["record_number"])
        if record_number_taken(number, self.instance.pk):
            raise forms.ValidationError(
                f"Record number {number} is already used by another patient. "
                "Search for them before registering a new record."
            )
        return number

    def validate_unique(self):
        # clean_record_number checks the number in any letter case, with a clearer message;
        # the unique constraint catches a registration that saves it in between (the view).
        exclude = self._get_validation_exclusions() | {"record_number"}
        try:
            self.instance.validate_unique(exclude=exclude)
        except forms.ValidationError as exc:
            self._update_errors(exc)

    def record_number_lost(self, number):
        """Another registration saved this number between our check and our save (the
        unique constraint refused ours): say so, and offer the next free number."""
        offered = next_record_number()
        self.data = self.data.copy()
        self.data[self.add_prefix("record_number")] = offered
        self.add_error(
            "record_number",
            f"Record number {number} was taken by another registration just now. Nothing was "
            f"saved; the next free number, {offered}, is filled in: check it and register again.",
        )


def normalise_record_number(text):
    """A record number as it is stored: no surrounding spaces, capital letters (cx-1 = CX-1)."""
    return text.strip().upper()


def record_number_taken(number, pk=None):
    """Whether another patient already has this record number (any letter case)."""
    return Patient.objects.filter(record_number__iexact=number).exclude(pk=pk).exists()


def _same_person(cleaned):
    """Current records that look like the patient being registered."""
    query = Q()
    first, last, born = (cleaned.get(k) for k in ("first_name", "last_name", "date_of_birth"))
    if first and last and born:
        query |= Q(first_name__iexact=first, last_name__iexact=last, date_of_birth=born)
    if cleaned.get("email"):
        query |= Q(email__iexact=cleaned["email"])
    if cleaned.get("phone"):
        query |= Q(phone=cleaned["phone"])
    return Patient.objects.active().filter(query) if query else Patient.objects.none()


DEFAULT_PREFIX, DEFAULT_DIGITS = "CX-", 6
MAX_DIGITS = 18  # the number part must fit a 64-bit integer in the database


def record_number_format():
    """(prefix, digits) of the manager's record number format, else the defaults."""
    row = RecordNumberFormat.objects.order_by("pk").values_list("prefix", "digits").first()
    if row is None:
        return DEFAULT_PREFIX, DEFAULT_DIGITS
    return row[0].upper(), row[1]


def next_record_number(prefix=None, digits=None):
    """The format's prefix and the highest number after it plus one, zero-padded
    (CX-000107 -> CX-000108); staff may type another."""
    if prefix is None or digits is None:
        prefix, digits = record_number_format()
    # Only numbers of this pattern count (CX-000107, not CX-12AB or SK/0012); the highest is
    # found by the database as an integer, so that CX-0000099 does not beat CX-000107.
    pattern = rf"^{_regex_literal(prefix)}[0-9]{{1,{MAX_DIGITS}}}$"
    highest = Patient.objects.filter(
        record_number__startswith=prefix, record_number__iregex=pattern
    ).aggregate(
        n=Max(Cast(Substr("record_number", len(prefix) + 1), output_field=BigIntegerField()))
    )["n"]
    return f"{prefix}{(highest or 0) + 1:0{digits}d}"


def _regex_literal(text):
    """`text` matched literally by both Python's re (SQLite) and PostgreSQL's regexes."""
    return "".join(c if c.isalnum() else f"[{c}]" for c in text)


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,  # a name or a number; SQLite refuses LIKE patterns past 50,000 bytes
        help_text="Name, record number or date of birth (YYYY-MM-DD or DD/MM/YYYY).",
    )
    archived = forms.BooleanField(label="Include archived", required=False)


class MedicalFlagForm(forms.ModelForm):
    class Meta:
        model = MedicalFlag
        fields = ["kind", "started_on", "ended_on", "detail"]
        widgets = {"started_on": DATE, "ended_on": DATE}


class ConsentForm(forms.ModelForm):
    class Meta:
        model = Consent
        fields = ["kind", "signed_on", "withdrawn_on", "expires_on", "scanned_file"]
        widgets = {"signed_on": DATE, "withdrawn_on": DATE, "expires_on": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk and not self.initial.get("signed_on"):
            # The model's empty value would win over a field initial: signed today, usually.
            self.initial["signed_on"] = timezone.localdate()


class ScarSiteForm(forms.ModelForm):
    scar_types = forms.ModelMultipleChoiceField(
        queryset=ScarType.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick every kind of scar at this site.",
    )

    class Meta:
        model = ScarSite
        fields = ["body_site", "scar_types", "description", "first_recorded_on"]
        widgets = {"first_recorded_on": DATE, "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.patient = patient

    def clean_body_site(self):
        site = self.cleaned_data["body_site"]
        taken = ScarSite.objects.active().filter(patient=self.instance.patient, body_site=site)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                "This patient already has a scar site there: add the scar types to it instead."
            )
        return site


class FirstRecordsForm(forms.Form):
    """What is often on the desk at registration, recorded with the patient in one step (all
    optional): the treatment consent signed today and the first scar site. Each part is
    offered only to a role that may record it."""

    treatment_consent = forms.BooleanField(
        required=False,
        label="Treatment consent signed today",
        help_text="Needed before any in-office treatment. Leave it unticked if not signed yet; "
        "a scan can be added on the patient's page.",
    )
    body_site = forms.ChoiceField(
        required=False,
        label="First scar site",
        choices=[("", "None yet"), *ScarSite.BodySite.choices],
    )
    scar_types = forms.ModelMultipleChoiceField(
        queryset=ScarType.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Scar types at the first site",
        help_text="Tick every kind of scar at this site.",
    )

    def __init__(self, *args, consent=True, scar_site=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not consent:
            del self.fields["treatment_consent"]
        if not scar_site:
            del self.fields["body_site"]
            del self.fields["scar_types"]

    def clean(self):
        cleaned = super().clean()
        site, types = cleaned.get("body_site"), cleaned.get("scar_types")
        if site and not types and "scar_types" not in self.errors:
            self.add_error(
                "scar_types",
                "Tick the scar types at the first scar site, or choose 'None yet' as the site.",
            )
        if types and not site and "body_site" not in self.errors:
            self.add_error("body_site", "Choose the body site of these scar types.")
        return cleaned

    def save(self, patient, user):
        """The consent and scar site asked for, each with a history row naming `user`."""
        made = {}
        if self.cleaned_data.get("treatment_consent"):
            consent = Consent(
                patient=patient, kind=Consent.Kind.TREATMENT, signed_on=timezone.localdate()
            )
            consent.full_clean()
            consent._history_user = user
            consent.save()
            made["consent"] = consent
        if self.cleaned_data.get("body_site"):
            site = ScarSite(patient=patient, body_site=self.cleaned_data["body_site"])
            site.full_clean()
            site._history_user = user
            site.save()
            site.scar_types.set(self.cleaned_data["scar_types"])
            made["site"] = site
        return made


class AcneForm(forms.ModelForm):
    class Meta:
        model = AcneActivity
        fields = ["level", "recorded_on", "note"]
        widgets = {"recorded_on": DATE}
