"""factory_boy factories for the clinical models, with synthetic data only.

The treatment catalogue comes from a data migration, so treatments are looked up with
`treatment("microneedling")` rather than made. Plans with sessions are best built through the
services (`make_plan`), so that tests exercise the same path as the app.
"""

from contextlib import contextmanager
from datetime import date, datetime, time

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
    class Meta:
        model = Patient

    record_number = factory.Sequence(lambda n: f"CX-{n + 1:06d}")
    first_name = factory.Iterator(FIRST_NAMES)
    last_name = factory.Iterator(LAST_NAMES)
    date_of_birth = factory.Sequence(lambda n: date(1980 + n % 25, 1 + n % 12, 1 + n % 28))
    sex = Patient.Sex.OTHER


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
