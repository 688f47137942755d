"""Forms for plans, booking and session logging. Validation messages name the field and the
allowed values; dynamic fields come from the instrument and parameter definitions."""

from datetime import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import escape

from clinic.form_tools import LimitedFormSet, LimitedFormSetMixin, row_limits
from clinic.models import Location
from clinic.roles import CLINICIAN
from clinic.validators import validate_clinic_date
from patients.forms import DATE
from plans import parameters as parameter_rules
from plans import safety, scales
from plans.models import (
    PHOTO_CHECK,
    AdverseEvent,
    Course,
    Plan,
    SessionPhoto,
    Treatment,
    TreatmentParameter,
)

TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def clinicians():
    return (
        get_user_model()
        .objects.filter(groups__name=CLINICIAN, is_active=True)
        .order_by("last_name", "first_name")
    )


# --- instruments ---------------------------------------------------------------------------


NOT_SCORED = "Not scored"


class InstrumentForm(forms.Form):
    """The items of one instrument, each with its range in the label and in the message."""

    def __init__(
        self, *args, instrument: scales.Instrument, optional=False, segmented=False, **kwargs
    ):
        """`segmented`: an optional item with few values (scales.Item.is_small) is a row of
        choices, each value with its words and a "Not scored" choice first; a number box
        otherwise. The field and its messages are the same either way."""
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        self.optional = optional
        for item in instrument.items:
            message = f"{item.label} must be a whole number from {item.minimum} to {item.maximum}."
            widget = forms.NumberInput(attrs={"inputmode": "numeric"})
            if segmented and optional and item.is_small:
                words = item.descriptors()
                widget = forms.RadioSelect(
                    choices=[("", NOT_SCORED)]
                    + [(v, f"{v} {words[v]}" if words else str(v)) for v in item.values]
                )
            self.fields[item.code] = forms.IntegerField(
                label=f"{item.label} ({item.minimum}-{item.maximum})",
                min_value=item.minimum,
                max_value=item.maximum,
                required=not optional,
                help_text=item.help,
                error_messages={
                    "required": f"{item.label} is required ({item.minimum}-{item.maximum}).",
                    "invalid": message,
                    "min_value": message,
                    "max_value": message,
                },
                widget=widget,
            )

    @property
    def is_blank(self):
        """An optional instrument left completely empty is simply not scored."""
        return self.optional and all(
            self.data.get(self.add_prefix(code), "") in ("", None) for code in self.fields
        )

    def clean(self):
        cleaned = super().clean()
        if self.optional and not self.is_blank:
            missing = [
                self.instrument.item(code).label
                for code in self.fields
                if cleaned.get(code) is None and code not in self.errors
            ]
            if missing:
                raise ValidationError(
                    f"{self.instrument.name}: fill every item or none "
                    f"(missing: {', '.join(missing)})."
                )
        return cleaned

    def items(self):
        return {code: self.cleaned_data[code] for code in self.fields}

    def preview_total(self):
        """The total of what was typed, when it is complete and valid."""
        if self.is_bound and self.is_valid() and not self.is_blank:
            return self.instrument.total(self.items())
        return None


class BaselineChoiceForm(forms.Form):
    instrument = forms.ChoiceField(choices=scales.CHOICES)
    assessed_on = forms.DateField(
        validators=[validate_clinic_date],
        widget=DATE,
        initial=timezone.localdate,
        label="Assessed on",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean_assessed_on(self):
        day = self.cleaned_data["assessed_on"]
        if day > timezone.localdate():
            raise ValidationError("Assessed on cannot be in the future.")
        return day


# --- plans ---------------------------------------------------------------------------------


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = [
            "title",
            "target_sites",
            "goal",
            "clinician",
            "location",
            "start_date",
            "preferred_time",
            "internal_notes",
        ]
        widgets = {
            "start_date": DATE,
            "preferred_time": TIME,
            "target_sites": forms.CheckboxSelectMultiple,
            "goal": forms.Textarea(attrs={"rows": 2}),
            "internal_notes": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"target_sites": "Scar sites to treat"}

    def __init__(self, *args, patient, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.patient = patient
        self.fields["title"].required = False
        self.fields["title"].help_text = (
            "Left empty, it is made from the courses, e.g. \u201cCryotherapy x 4, every 4 "
            "weeks\u201d."
        )
        self.fields["target_sites"].queryset = patient.scar_sites.active().prefetch_related(
            "scar_types"
        )
        # The only open site is the one to treat: ticked from the start.
        if sites is not None and len(sites) == 1 and not self.is_bound:
            self.initial.setdefault("target_sites", [sites[0].pk])
        self.fields["target_sites"].label_from_instance = lambda site: (
            f"{site} ({', '.join(t.name for t in site.scar_types.all())})"
        )
        self.fields["clinician"].queryset = clinicians()
        locations = Location.objects.active()
        self.fields["location"].queryset = locations
        # With sites set up, every plan's visits go into one site's diary.
        self.fields["location"].required = locations.exists()
        if not self.instance.pk and len(locations[:2]) == 1:
            self.fields["location"].initial = locations[0].pk

    def clean_target_sites(self):
        sites = self.cleaned_data["target_sites"]
        self.instance.clean_target_sites(list(sites))
        return sites


# What plans.safety reads from a session's parameters (peel_depth, involves_salicylate).
SAFETY_PARAMETER_CODES = ("agent", "concentration")
PLANNED = "param_"  # course form fields for planned values: param_agent, param_concentration


def is_planning_parameter(definition) -> bool:
    """Decided when the plan is built: what the safety rules read, and the required choices
    (an acid, a freezing method). Values seen in the chair (layers, frost) are logged then."""
    return definition.code in SAFETY_PARAMETER_CODES or (
        definition.kind == TreatmentParameter.Kind.CHOICE and definition.required
    )


def planning_parameters():
    """The planning parameters of the active treatments, the safety rules' ones first."""
    found = [
        definition
        for definition in TreatmentParameter.objects.filter(treatment__is_active=True)
        .select_related("treatment")
        .order_by("treatment__name", "order", "id")
        if is_planning_parameter(definition)
    ]
    first = {code: n for n, code in enumerate(SAFETY_PARAMETER_CODES)}
    return sorted(found, key=lambda d: first.get(d.code, len(first)))


def _planned_value_field(definitions):
    """One field for a parameter code shared by several treatments (e.g. concentration);
    the chosen treatment's own definition validates the value in CourseForm.clean."""
    head = definitions[0]
    label = head.label + (f" ({head.unit})" if head.unit else "")
    kinds = {d.kind for d in definitions}
    if kinds == {TreatmentParameter.Kind.CHOICE}:
        allowed = list(dict.fromkeys(c for d in definitions for c in d.choice_list))
        widget = forms.Select(choices=[("", "—")] + [(c, c) for c in allowed])
    elif kinds == {TreatmentParameter.Kind.NUMBER}:
        widget = forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"})
    else:
        widget = forms.TextInput()
    uses = []
    for d in definitions:
        span = ""
        if d.min_value is not None and d.max_value is not None:
            low = format(d.min_value.normalize(), "f")
            high = format(d.max_value.normalize(), "f")
            span = f" {low}-{high}"
        uses.append(f"{d.treatment.name}{span}")
    # crispy renders help texts as HTML: catalogue text is escaped here.
    return forms.CharField(
        label=label,
        required=False,
        widget=widget,
        help_text=escape(f"For {', '.join(uses)}."),
    )


class CourseForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = ["treatment", "label", "sessions_count", "interval_days", "offset_days"]
        labels = {
            "sessions_count": "Sessions",
            "interval_days": "Every (days)",
            "offset_days": "First on day",
        }

    def __init__(self, *args, planning=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["treatment"].queryset = Treatment.objects.active()
        for name, low, high in (
            ("sessions_count", 1, 52),
            ("interval_days", 0, 365),
            ("offset_days", 0, 730),
        ):
            label = self.fields[name].label
            message = f"{label} must be a whole number from {low} to {high}."
            # Sessions and interval left empty come from the chosen treatment's usual course.
            self.fields[name] = forms.IntegerField(
                label=label,
                min_value=low,
                max_value=high,
                required=False,
                initial=0 if name == "offset_days" else None,
                widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
                error_messages={
                    "required": f"{label} is required ({low}-{high}).",
                    "invalid": message,
                    "min_value": message,
                    "max_value": message,
                },
            )
        self.planning = planning_parameters() if planning is None else planning
        by_code = {}
        for definition in self.planning:
            by_code.setdefault(definition.code, []).append(definition)
        self.planning_labels = {}
        for code, definitions in by_code.items():
            self.fields[PLANNED + code] = _planned_value_field(definitions)
            self.planning_labels[code] = definitions[0].label
        for code, value in (self.instance.default_parameters or {}).items():
            if code in by_code:
                self.initial.setdefault(PLANNED + code, value)

    def course_fields(self):
        """The course's own columns (treatment ... remove), without the planned values."""
        return [f for f in self.visible_fields() if not f.name.startswith(PLANNED)]

    def planned_fields(self):
        return [f for f in self.visible_fields() if f.name.startswith(PLANNED)]

    def clean(self):
        cleaned = super().clean()
        treatment = cleaned.get("treatment")
        if treatment is not None:
            for name, usual in (
                ("sessions_count", treatment.default_sessions),
                ("interval_days", treatment.default_interval_days),
            ):
                if cleaned.get(name) is None and name not in self.errors:
                    cleaned[name] = usual
                    setattr(self.instance, name, usual)
        for name in ("interval_days", "offset_days"):
            if cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = 0
                setattr(self.instance, name, 0)
        sessions, interval = cleaned.get("sessions_count"), cleaned.get("interval_days")
        if sessions and sessions > 1 and not interval:
            self.add_error("interval_days", "Repeated sessions need an interval of at least 1 day.")
        self.instance.default_parameters = self._planned_values(cleaned)
        return cleaned

    def _planned_values(self, cleaned):
        """The planned values, checked against the chosen treatment's own definitions; {}
        when any is wrong (the errors name the field and what it allows)."""
        treatment = cleaned.get("treatment")
        typed = {
            name.removeprefix(PLANNED): cleaned[name]
            for name in self.fields
            if name.startswith(PLANNED) and cleaned.get(name)
        }
        if not treatment or not typed:
            return {}
        own = {d.code: d for d in self.planning if d.treatment_id == treatment.pk}
        wrong = False
        for code in typed.keys() - own.keys():
            label = self.planning_labels[code].lower()
            self.add_error(PLANNED + code, f"{treatment.name} has no {label}: leave it empty.")
            wrong = True
        try:
            values = parameter_rules.clean_parameters(
                [own[code] for code in typed if code in own],
                {code: value for code, value in typed.items() if code in own},
                partial=True,
            )
        except ValidationError as exc:
            for code, messages in exc.message_dict.items():
                self.add_error(PLANNED + code if code in own else None, messages)
            return {}
        return {} if wrong else values

    def planned_depth(self):
        """A peel's depth from the catalogue and the planned agent (None for other rows)."""
        treatment = (getattr(self, "cleaned_data", None) or {}).get("treatment")
        if not treatment or treatment.category != Treatment.Category.PEEL or self.errors:
            return None
        depth = safety.peel_depth(treatment.facts(), self.instance.default_parameters or {})
        return dict(Treatment.PeelDepth.choices).get(depth, depth)


class BaseCourseFormSet(LimitedFormSetMixin, forms.BaseInlineFormSet):
    """Course rows; the catalogue's planning parameters are read once for all of them."""

    rows_label = "Courses"

    @cached_property
    def planning(self):
        return planning_parameters()

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "planning": self.planning}


CourseFormSet = forms.inlineformset_factory(
    Plan,
    Course,
    form=CourseForm,
    formset=BaseCourseFormSet,
    extra=0,  # with min_num=1: one row to start; "Add another treatment" adds more
    min_num=1,
    validate_min=True,
    can_delete=True,
    **row_limits(),
)


def plan_title(courses) -> str:
    """A title from the courses: "Cryotherapy x 4, every 4 weeks" for one, "Microneedling +
    chemical peel" for several (each treatment named once)."""
    courses = list(courses)
    if not courses:
        return ""
    if len(courses) == 1:
        course = courses[0]
        title = f"{course.treatment.name} x {course.sessions_count}"
        if course.sessions_count > 1 and course.interval_days:
            title += ", " + _every(course.interval_days)
        return title[:120]
    names = list(dict.fromkeys(c.treatment.name for c in courses))
    later = [n[:1].lower() + n[1:] if not n[:2].isupper() else n for n in names[1:]]
    return " + ".join([names[0], *later])[:120]


def _every(days):
    if days % 7:
        return "every day" if days == 1 else f"every {days} days"
    weeks = days // 7
    return "every week" if weeks == 1 else f"every {weeks} weeks"


def template_rows(template) -> list[dict]:
    """Course-form initial values from a plan template (its courses prefetched)."""
    rows = []
    for course in template.courses.all():
        row = {
            "treatment": course.treatment_id,
            "label": course.label,
            "sessions_count": course.sessions_count,
            "interval_days": course.interval_days,
            "offset_days": course.offset_days,
        }
        for code, value in (course.default_parameters or {}).items():
            row[PLANNED + code] = value
        rows.append(row)
    return rows


class PlanTemplateSaveForm(forms.Form):
    name = forms.CharField(max_length=120, label="Template name")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description"
    )

    def clean_name(self):
        from plans.models import PlanTemplate

        name = self.cleaned_data["name"].strip()
        if PlanTemplate.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"A template named {name!r} exists already: choose another.")
        return name


# --- booking -------------------------------------------------------------------------------


class RescheduleForm(forms.Form):
    date = forms.DateField(validators=[validate_clinic_date], widget=DATE, label="New date")
    time = forms.TimeField(widget=TIME, label="New time")
    shift_following = forms.BooleanField(
        required=False,
        label="Move the later sessions of this course by the same amount",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def new_start(self):
        moment = datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"])
        return timezone.make_aware(moment)


class BookForm(forms.Form):
    course = forms.ModelChoiceField(queryset=Course.objects.none(), label="Course")
    date = forms.DateField(validators=[validate_clinic_date], widget=DATE)
    time = forms.TimeField(widget=TIME)

    def __init__(self, *args, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = plan.courses.select_related("treatment")
        self.fields["time"].initial = plan.preferred_time

    def start(self):
        moment = datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"])
        return timezone.make_aware(moment)


# --- logging -------------------------------------------------------------------------------


class ParameterField(forms.Field):
    """One treatment parameter, validated by plans.parameters with its own message."""

    def __init__(self, definition, **kwargs):
        self.definition = definition
        label = definition.label + (f" ({definition.unit})" if definition.unit else "")
        if definition.kind == "number":
            attrs = {"inputmode": "decimal", "step": "any"}
            if definition.min_value is not None:
                attrs["min"] = definition.min_value
            if definition.max_value is not None:
                attrs["max"] = definition.max_value
            widget = forms.NumberInput(attrs=attrs)
            if definition.min_value is not None and definition.max_value is not None:
                low = format(definition.min_value.normalize(), "f")
                high = format(definition.max_value.normalize(), "f")
                # crispy renders help texts as HTML; the unit is catalogue text a manager types.
                kwargs.setdefault("help_text", escape(f"{low}-{high} {definition.unit}".strip()))
        elif definition.kind == "choice":
            choices = [("", "—")] + [(c, c) for c in definition.choice_list]
            widget = forms.Select(choices=choices)
        elif definition.kind == "yes_no":
            widget = forms.Select(choices=[("", "—"), ("yes", "Yes"), ("no", "No")])
        else:
            widget = forms.TextInput()
        # Required-ness is checked by plans.parameters with its own message.
        super().__init__(label=label, required=False, widget=widget, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value

    def clean(self, value):
        return parameter_rules.clean_value(self.definition, value)


class ParametersForm(forms.Form):
    """The parameters of one treatment in a session, carried forward from last time."""

    def __init__(self, *args, row, previous=None, **kwargs):
        self.row = row
        self.previous = previous or {}
        initial = {**row.parameters}
        for code, value in self.previous.items():
            initial.setdefault(code, value)
        super().__init__(*args, initial=initial, **kwargs)
        for definition in row.treatment.parameters.all():
            self.fields[definition.code] = ParameterField(definition)

    def changed_from_last_time(self):
        """Field names whose value differs from the previous session's."""
        if not self.previous:
            return set()
        changed = set()
        for name, field in self.fields.items():
            current = self[name].value()
            before = field.prepare_value(self.previous.get(name))
            if str(current or "") != str(before if before is not None else ""):
                changed.add(name)
        return changed

    def field_rows(self):
        """(bound field, last time's value, changed?) for the template."""
        changed = self.changed_from_last_time()
        return [
            (self[name], self.fields[name].prepare_value(self.previous.get(name)), name in changed)
            for name in self.fields
        ]

    def values(self):
        return {k: v for k, v in self.cleaned_data.items() if v is not None}


GAIS_CHOICES = [("", NOT_SCORED)] + [(v, f"{v} {scales.gais_label(v)}") for v in range(1, 6)]
GAIS_MESSAGE = (
    "Improvement ({who}) must be one of 1 (very much improved) to 5 (worse), or Not scored."
)


class SiteOutcomeForm(forms.Form):
    """GAIS by clinician and patient and pain for one scar site; all optional."""

    # A drop-down of the five ratings with their words: as a row of choices each would take two
    # lines of buttons, and the three-site log page grew by 440 px.
    gais_clinician = forms.TypedChoiceField(
        label="Improvement (clinician)",
        choices=GAIS_CHOICES,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": GAIS_MESSAGE.format(who="clinician")},
    )
    gais_patient = forms.TypedChoiceField(
        label="Improvement (patient)",
        choices=GAIS_CHOICES,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": GAIS_MESSAGE.format(who="patient")},
    )
    pain = forms.IntegerField(
        label="Pain (0-10)",
        min_value=0,
        max_value=10,
        required=False,
        error_messages={
            "invalid": "Pain must be a whole number from 0 to 10.",
            "min_value": "Pain must be a whole number from 0 to 10.",
            "max_value": "Pain must be a whole number from 0 to 10.",
        },
    )
    photo = forms.FileField(
        required=False,
        label="Photo",
        help_text="JPEG, PNG or WebP.",
        validators=[PHOTO_CHECK],
    )
    photo_caption = forms.CharField(required=False, max_length=200, label="Photo caption")

    def __init__(self, *args, photo_slots=1, **kwargs):
        """`photo_slots` file inputs, each with a view (front, left 45 degrees ...) and caption;
        the first keeps the names `photo` and `photo_caption`, the next are `photo_2` ..."""
        super().__init__(*args, **kwargs)
        views = list(SessionPhoto.View)
        self.photo_names = [_photo_slot(n) for n in range(1, photo_slots + 1)]
        for n, name in enumerate(self.photo_names, start=1):
            if n > 1:
                self.fields[name] = forms.FileField(
                    required=False, label=f"Photo {n}", validators=[PHOTO_CHECK]
                )
                self.fields[f"{name}_caption"] = forms.CharField(
                    required=False, max_length=200, label=f"Photo {n} caption"
                )
            # By default the slots follow the usual set: front, left, right, close-up.
            self.fields[f"{name}_view"] = forms.ChoiceField(
                choices=SessionPhoto.View.choices,
                initial=views[(n - 1) % len(views)],
                required=False,
                label="View" if n == 1 else f"Photo {n} view",
            )

    def drop_photos(self):
        """No photography consent: the form offers no photo inputs at all."""
        for name in self.photo_names:
            for field in (name, f"{name}_caption", f"{name}_view"):
                self.fields.pop(field, None)
        self.photo_names = []

    def photo_slots(self):
        """(file, view, caption, name of a file to choose again) per slot, for the template."""
        slots = []
        for name in self.photo_names:
            upload = self.files.get(self.add_prefix(name)) if self.is_bound else None
            lost = getattr(upload, "name", "")
            slots.append((self[name], self[f"{name}_view"], self[f"{name}_caption"], lost))
        return slots

    def photos(self):
        """(image, caption, view) of each slot with a file chosen."""
        data = self.cleaned_data
        return [
            (
                data[name],
                data.get(f"{name}_caption", ""),
                data.get(f"{name}_view") or SessionPhoto.View.FRONT,
            )
            for name in self.photo_names
            if data.get(name)
        ]


def _photo_slot(n):
    return "photo" if n == 1 else f"photo_{n}"


class AdverseEventForm(forms.ModelForm):
    class Meta:
        model = AdverseEvent
        fields = ["kind", "severity", "scar_site", "onset_on", "resolved_on", "notes"]
        widgets = {
            "onset_on": DATE,
            "resolved_on": DATE,
            "notes": forms.TextInput(),
        }

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scar_site"].queryset = sites
        self.fields["onset_on"].required = False
        # A row is optional: kind and severity are needed only once a row is started (clean),
        # so the labels carry no "required" mark for an event that may not exist.
        self.fields["kind"].required = False
        self.fields["severity"].required = False

    def clean(self):
        cleaned = super().clean()
        for name, what in (("kind", "what happened"), ("severity", "how severe it was")):
            if not cleaned.get(name) and name not in self.errors:
                allowed = ", ".join(label for _, label in self.fields[name].choices if _)
                self.add_error(
                    name,
                    f"{self.fields[name].label} is required for an adverse event: choose "
                    f"{what} ({allowed}), or clear the row.",
                )
        return cleaned


class BaseAdverseEventFormSet(LimitedFormSet):
    rows_label = "Adverse events"


AdverseEventFormSet = forms.formset_factory(
    AdverseEventForm, formset=BaseAdverseEventFormSet, extra=2, **row_limits()
)


class ResolveForm(forms.Form):
    resolved_on = forms.DateField(
        validators=[validate_clinic_date],
        widget=DATE,
        initial=timezone.localdate,
        label="Resolved on",
    )
