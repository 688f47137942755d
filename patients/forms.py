import re

from django import forms
from django.db.models import Q
from django.utils import timezone

from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite, ScarType

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


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

    def __init__(self, *args, clinical=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not clinical:  # front desk: demographics only
            for name in ("fitzpatrick_type", "other_allergies", "medications"):
                del self.fields[name]
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
        number = self.cleaned_data["record_number"].strip().upper()
        clash = Patient.objects.filter(record_number__iexact=number).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(
                f"Record number {number} is already used by another patient. "
                "Search for them before registering a new record."
            )
        return number


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


def next_record_number():
    """The last registered record number plus one, in its own pattern (CX-000107 -> CX-000108);
    staff may type another."""
    last = Patient.objects.order_by("-created_at", "-pk").values_list("record_number", flat=True)
    match = re.fullmatch(r"(.*?)(\d+)", last.first() or "")
    if not match:
        return ""
    prefix, digits = match.groups()
    return f"{prefix}{int(digits) + 1:0{len(digits)}d}"


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
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
        fields = ["kind", "signed_on", "withdrawn_on", "scanned_file"]
        widgets = {"signed_on": DATE, "withdrawn_on": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signed_on"].initial = timezone.localdate


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


class AcneForm(forms.ModelForm):
    class Meta:
        model = AcneActivity
        fields = ["level", "recorded_on", "note"]
        widgets = {"recorded_on": DATE}
