"""factory_boy factories for the clinical models, with synthetic data only.

The treatment catalogue comes from a data migration, so treatments are looked up with
`treatment("microneedling")` rather than made. Plans with sessions are best built through the
services (`make_plan`), so that tests exercise the same path as the app.
"""

from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from factory.django import DjangoModelFactory

from clinic.roles import CLINICIAN
from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite, ScarType
from plans import scales, services
from plans.models import (
    AdverseEvent,
    Assessment,
    Course,
    Plan,
    Session,
    SessionTreatment,
    Treatment,
)

PASSWORD = "factory-pass-Δ-2026"

FIRST_NAMES = ["Alinta", "Bexley", "Corvin", "Dagny", "Elowen", "Fenwick", "Greer", "Halvard"]
LAST_NAMES = ["Quillfeather", "Ramsdell", "Stroud", "Tavener", "Umber", "Vellacott", "Wexcombe"]


def treatment(code):
    """The seeded catalogue row for `code` (see plans/migrations/0002_catalogue.py)."""
    return Treatment.objects.get(code=code)


def scar_types(*codes):
    found = list(ScarType.objects.filter(code__in=codes))
    missing = set(codes) - {t.code for t in found}
    if missing:
        raise ValueError(f"Unknown scar type codes: {sorted(missing)}")
    return found


def valid_items(instrument, pick="minimum"):
    """Items of an instrument all at their minimum (or maximum) value."""
    return {item.code: getattr(item, pick) for item in scales.get(instrument).items}


@contextmanager
def db_refuses():
    """Expect the database to refuse a write, inside a savepoint so the test can go on."""
    with pytest.raises(IntegrityError), transaction.atomic():
        yield


def at(day, hour=9, minute=0):
    """An aware datetime in the clinic's time zone."""
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


class UserFactory(DjangoModelFactory):
    """A staff user; `UserFactory(role="Clinician")` puts them in that role's group."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = factory.Iterator(FIRST_NAMES)
    last_name = factory.Iterator(LAST_NAMES)
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


class PatientFactory(DjangoModelFactory):
    record_number = factory.Sequence(lambda n: f"CX-{n + 1:06d}")
    first_name = factory.Iterator(FIRST_NAMES)
    last_name = factory.Iterator(LAST_NAMES)
    date_of_birth = factory.Sequence(lambda n: date(1980 + n % 25, 1 + n % 12, 1 + n % 28))
    sex = Patient.Sex.OTHER
    # A treatable patient: skin type assessed and treatment consent on file (both are safety
    # rules); `PatientFactory(fitzpatrick_type=None, consented=False)` for one who is not.
    fitzpatrick_type = 2

    class Meta:
        model = Patient
        skip_postgeneration_save = True

    @factory.post_generation
    def consented(self, create, extracted, **kwargs):
        if create and extracted is not False:
            Consent.objects.create(
                patient=self, kind=Consent.Kind.TREATMENT, signed_on=date(2020, 1, 2)
            )


class ScarSiteFactory(DjangoModelFactory):
    """`ScarSiteFactory(scar_types=["rolling", "boxcar"])` attaches scar types by code."""

    class Meta:
        model = ScarSite
        skip_postgeneration_save = True

    patient = factory.SubFactory(PatientFactory)
    body_site = factory.Iterator(ScarSite.BodySite.values)
    first_recorded_on = date(2026, 1, 2)

    @factory.post_generation
    def scar_types(self, create, extracted, **kwargs):
        if create and extracted:
            self.scar_types.set(scar_types(*extracted))


class AcneActivityFactory(DjangoModelFactory):
    class Meta:
        model = AcneActivity

    patient = factory.SubFactory(PatientFactory)
    recorded_on = date(2026, 1, 2)
    level = AcneActivity.Level.NONE


class MedicalFlagFactory(DjangoModelFactory):
    class Meta:
        model = MedicalFlag

    patient = factory.SubFactory(PatientFactory)
    kind = MedicalFlag.Kind.ISOTRETINOIN
    started_on = date(2025, 1, 1)
    ended_on = None


class ConsentFactory(DjangoModelFactory):
    class Meta:
        model = Consent

    patient = factory.SubFactory(PatientFactory)
    kind = Consent.Kind.TREATMENT
    signed_on = date(2026, 1, 2)


class PlanFactory(DjangoModelFactory):
    """A draft plan; `PlanFactory(target_sites=[site])` targets sites of its patient."""

    class Meta:
        model = Plan
        skip_postgeneration_save = True

    patient = factory.SubFactory(PatientFactory)
    title = factory.Sequence(lambda n: f"Plan {n}")
    clinician = factory.SubFactory(UserFactory, role=CLINICIAN)
    start_date = date(2026, 1, 5)

    @factory.post_generation
    def target_sites(self, create, extracted, **kwargs):
        if create and extracted:
            self.target_sites.set(extracted)


class CourseFactory(DjangoModelFactory):
    class Meta:
        model = Course

    plan = factory.SubFactory(PlanFactory)
    treatment = factory.LazyFunction(lambda: treatment("microneedling"))
    sessions_count = 4
    interval_days = 42


class SessionFactory(DjangoModelFactory):
    class Meta:
        model = Session

    plan = factory.SubFactory(PlanFactory, status=Plan.Status.ACTIVE)
    patient = factory.SelfAttribute("plan.patient")
    scheduled_at = factory.LazyAttribute(lambda o: at(o.plan.start_date))
    ends_at = factory.LazyAttribute(lambda o: o.scheduled_at + timedelta(minutes=30))


class SessionTreatmentFactory(DjangoModelFactory):
    class Meta:
        model = SessionTreatment

    session = factory.SubFactory(SessionFactory)
    treatment = factory.LazyFunction(lambda: treatment("microneedling"))


class AssessmentFactory(DjangoModelFactory):
    """Valid items for the instrument (all at their minimum unless `items` is given)."""

    class Meta:
        model = Assessment

    scar_site = factory.SubFactory(ScarSiteFactory)
    patient = factory.SelfAttribute("scar_site.patient")
    instrument = "vss"
    items = factory.LazyAttribute(lambda o: valid_items(o.instrument))
    assessed_on = date(2026, 1, 5)
    assessor = factory.SubFactory(UserFactory, role=CLINICIAN)


class AdverseEventFactory(DjangoModelFactory):
    class Meta:
        model = AdverseEvent

    session = factory.SubFactory(SessionFactory)
    patient = factory.SelfAttribute("session.patient")
    kind = AdverseEvent.Kind.ERYTHEMA
    severity = AdverseEvent.Severity.MILD
    onset_on = date(2026, 1, 5)
    recorded_by = factory.SubFactory(UserFactory, role=CLINICIAN)


def course(code, sessions, every=0, offset=0, **extra):
    """A CourseInput for plan_create, e.g. course("cryotherapy", 4, every=28)."""
    return services.CourseInput(
        treatment=treatment(code),
        sessions_count=sessions,
        interval_days=every,
        offset_days=offset,
        **extra,
    )


def make_plan(
    *,
    user,
    courses,
    patient=None,
    sites=None,
    start=date(2026, 1, 5),
    activate=True,
    overrides=None,
    **extra,
):
    """A plan built through plan_create (and plan_activate unless activate=False)."""
    if sites is None:
        patient = patient or PatientFactory()
        sites = [ScarSiteFactory(patient=patient)]
    patient = patient or sites[0].patient
    plan = services.plan_create(
        patient=patient,
        title=extra.pop("title", "Scar plan"),
        clinician=extra.pop("clinician", user),
        start_date=start,
        target_sites=sites,
        courses=courses,
        user=user,
        **extra,
    )
    if activate:
        services.plan_activate(plan=plan, user=user, overrides=overrides)
        plan.refresh_from_db()
    return plan


# --- helpers for the view tests: a pinned clock, an image upload, a form as a browser sends it


import io  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import time_machine  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402

TODAY = date(2026, 1, 5)  # a Monday


def frozen(day=TODAY, hour=8, minute=0):
    """Pin the clock to a local time on `day` (time stands still: tick=False)."""
    return time_machine.travel(at(day, hour, minute), tick=False)


def png_upload(name="scar.png", colour=(200, 90, 90)):
    """A small real PNG, made in memory, as a browser would upload it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


class _FormReader(HTMLParser):
    """Reads every <form> of a page into the (name, value) pairs a browser would submit."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = self._select = self._option = self._textarea = None
        self._in_template = 0

    def _add(self, name, value):
        if self._form is not None and name:
            self._form["fields"].append((name, value))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":  # browsers never submit a <template>'s contents
            self._in_template += 1
        if self._in_template:
            return
        if tag == "form":
            self._form = {"attrs": attrs, "fields": []}
            self.forms.append(self._form)
        elif tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in {"submit", "button", "reset", "image", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attrs:
                    # value="" sends an empty value; only a missing value attribute sends "on".
                    value = attrs.get("value")
                    self._add(attrs.get("name"), "on" if value is None else value)
                return
            self._add(attrs.get("name"), attrs.get("value") or "")
        elif tag == "select":
            self._select = {"name": attrs.get("name"), "multiple": "multiple" in attrs, "opts": []}
        elif tag == "option" and self._select is not None:
            self._option = [attrs.get("value"), "selected" in attrs, ""]
            self._select["opts"].append(self._option)
        elif tag == "textarea":
            self._textarea = [attrs.get("name"), ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data
        elif self._option is not None:
            self._option[2] += data

    def handle_endtag(self, tag):
        if tag == "template":
            self._in_template -= 1
        if self._in_template:
            return
        if tag == "form":
            self._form = None
        elif tag == "option":
            self._option = None
        elif tag == "select" and self._select is not None:
            options = self._select["opts"]
            chosen = [o for o in options if o[1]]
            if not chosen and not self._select["multiple"] and options:
                chosen = options[:1]
            for value, _, text in chosen:
                self._add(self._select["name"], text.strip() if value is None else value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self._add(name, text[1:] if text.startswith("\n") else text)
            self._textarea = None


def browser_form(response, *, form_id=None, action=None):
    """What submitting a form of the page unchanged would send: {name: value or [values]}.

    Picks the form with this id, else the one posting to `action`, else the first POST form
    posting back to the page itself.
    """
    reader = _FormReader()
    reader.feed(response.content.decode())
    for form in reader.forms:
        attrs = form["attrs"]
        if form_id is not None:
            wanted = attrs.get("id") == form_id
        elif action is not None:
            wanted = attrs.get("action") == action
        else:
            wanted = (attrs.get("method") or "").lower() == "post" and not attrs.get("action")
        if wanted:
            values = {}
            for name, value in form["fields"]:
                values.setdefault(name, []).append(value)
            return {name: v[0] if len(v) == 1 else v for name, v in values.items()}
    raise AssertionError(f"No such form on the page (id={form_id!r}, action={action!r}).")


NEEDLING_OK = {"device": "Dermapen 4", "needle_depth": 1.5, "passes": 3}


def staff_world(clinician):
    """One patient with a record of every kind a staff URL points at, built as the app would.

    A draft plan, an active microneedling plan whose first session is logged (scores, an
    adverse event, a photo with clinical-photography consent) and two sessions still to come.
    """
    from types import SimpleNamespace

    patient = PatientFactory(
        first_name="Wren", last_name="Ashdown", medications="Doxycycline 100 mg daily"
    )
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    flag = MedicalFlagFactory(patient=patient, detail="Oral isotretinoin 20 mg")
    consent = ConsentFactory(
        patient=patient,
        kind=Consent.Kind.CLINICAL_PHOTOGRAPHY,
        signed_on=date(2026, 1, 2),
        scanned_file=SimpleUploadedFile("consent.pdf", b"%PDF-1.4 signed consent"),
    )
    draft = make_plan(
        user=clinician,
        courses=[course("cryotherapy", 1)],
        sites=[site],
        activate=False,
        title="Cryotherapy trial",
    )
    plan = make_plan(
        user=clinician,
        courses=[course("microneedling", 3, every=42)],
        sites=[site],
        title="Needling course",
    )
    done, session, last = plan.sessions.order_by("scheduled_at")
    services.session_complete(
        session=done,
        user=clinician,
        parameters={row.pk: NEEDLING_OK for row in done.treatments.all()},
        assessments=[services.AssessmentInput(site, "gb_qualitative", {"grade": 3})],
        adverse_events=[services.AdverseEventInput("erythema", "mild", site)],
        photos=[services.PhotoInput(site, png_upload("cheek-before.png"))],
        notes="Tolerated well; pinpoint bleeding only.",
    )
    return SimpleNamespace(
        patient=patient,
        site=site,
        flag=flag,
        consent=consent,
        acne=AcneActivityFactory(patient=patient, recorded_on=date(2025, 12, 1)),
        draft=draft,
        plan=plan,
        done=done,
        session=session,
        last=last,
        event=done.adverse_events.get(),
        photo=done.photos.get(),
    )


# --- helpers for report and outcome tests -----------------------------------------------------

DONE_PARAMETERS = {
    "cryotherapy": {"method": "spray", "cycles": 2, "seconds": 15},
    "microneedling": {"device": "Dermapen 4", "needle_depth": 1.5, "passes": 3},
    "pulsed_dye_laser": {
        "wavelength": 595,
        "fluence": 7.5,
        "spot_size": 7,
        "pulse_duration": 1.5,
        "passes": 1,
        "cooling": "dynamic",
    },
}


def items_for_total(instrument, total):
    """Items of an unweighted instrument (VSS, POSAS, single-item scales) adding up to total."""
    definition = scales.get(instrument)
    items = valid_items(instrument)
    left = total - definition.total(items)
    for item in definition.items:
        if item.in_total and left > 0:
            step = min(item.maximum - item.minimum, left)
            items[item.code] += step
            left -= step
    if left or definition.total(items) != total:
        raise ValueError(f"{instrument} cannot add up to {total} by simple sums")
    return items


def tiny_png(colour=(200, 80, 80)):
    """A real 2x2 PNG image, as bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def baseline(site, instrument, total, *, user, on=date(2026, 1, 2)):
    """A baseline score (outside any session) of `total` on `instrument`."""
    return services.assessment_record(
        patient=site.patient,
        scar_site=site,
        instrument=instrument,
        items=items_for_total(instrument, total),
        user=user,
        assessed_on=on,
    )


def log_session(session, user, *, scores=(), events=(), parameters=None, **kwargs):
    """Complete a session through the service: scores are (site, instrument, total) triples,
    events AdverseEventInput; every treatment gets valid parameters unless given."""
    if parameters is None:
        parameters = {
            row.pk: DONE_PARAMETERS[row.treatment.code]
            for row in session.treatments.select_related("treatment")
        }
    return services.session_complete(
        session=session,
        user=user,
        parameters=parameters,
        assessments=[
            services.AssessmentInput(site, instrument, items_for_total(instrument, total))
            for site, instrument, total in scores
        ],
        adverse_events=list(events),
        **kwargs,
    )
