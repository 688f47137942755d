"""Query budgets for the admin's change forms with inlines: a page with eight rows in every
inline runs as many queries as one with a single row, so a lookup per row (an autocomplete
label, a raw-id label, a related object on a read-only row) fails here."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import ScarSite
from plans.models import SafetyOverride, SessionPhoto
from tests.factories import (
    AcneActivityFactory,
    AdverseEventFactory,
    AssessmentFactory,
    ConsentFactory,
    CourseFactory,
    MedicalFlagFactory,
    PatientFactory,
    PlanFactory,
    ScarSiteFactory,
    SessionFactory,
    SessionTreatmentFactory,
    UserFactory,
    at,
    treatment,
)

pytestmark = pytest.mark.django_db

BODY_SITES = ScarSite.BodySite.values
TREATMENTS = ("microneedling", "cryotherapy", "pulsed_dye_laser", "chemical_peel")


def queries_for(client, url):
    """(number of queries, page) for a GET, after one warm-up request (sessions, caches)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def session_with_rows(rows):
    """A session with `rows` rows in every inline, each naming its own scar site, course and
    person, so a lookup per row cannot hide behind a cache of the first one."""
    session = SessionFactory()
    patient = session.patient
    for n in range(rows):
        person = UserFactory()
        site = ScarSiteFactory(patient=patient, body_site=BODY_SITES[n])
        course = CourseFactory(plan=session.plan, order=n + 1)
        SessionTreatmentFactory(session=session, course=course, number=1)
        AssessmentFactory(session=session, scar_site=site, patient=patient, assessor=person)
        AdverseEventFactory(session=session, patient=patient, scar_site=site, recorded_by=person)
        SessionPhoto.objects.create(
            session=session, scar_site=site, image=f"photos/{n}.png", taken_by=person
        )
        SafetyOverride.objects.create(
            session=session,
            treatment=treatment(TREATMENTS[n % len(TREATMENTS)]),
            rule=f"rule-{n}",
            finding="shown",
            reason="judged safe",
            overridden_by=person,
        )
    return session


def plan_with_rows(rows):
    """A plan with `rows` courses and sessions, each session with its own clinician."""
    patient = PatientFactory()
    plan = PlanFactory(patient=patient)
    plan.target_sites.set(
        [ScarSiteFactory(patient=patient, body_site=BODY_SITES[n]) for n in range(rows)]
    )
    for n in range(rows):
        CourseFactory(plan=plan, order=n + 1, treatment=treatment(TREATMENTS[n % 4]))
        start = at(date(2026, 1, 5) + timedelta(days=7 * n))
        SessionFactory(
            plan=plan,
            clinician=UserFactory(),
            scheduled_at=start,
            ends_at=start + timedelta(minutes=30),
        )
    return plan


def patient_with_rows(rows):
    """A patient with `rows` flags, acne records, consents and scar sites (with scar types)."""
    patient = PatientFactory(consented=False)
    for n in range(rows):
        MedicalFlagFactory(patient=patient, started_on=date(2020, 1, 1 + n))
        AcneActivityFactory(patient=patient, recorded_on=date(2025, 1, 1 + n))
        ConsentFactory(patient=patient, signed_on=date(2025, 2, 1 + n))
        ScarSiteFactory(patient=patient, body_site=BODY_SITES[n], scar_types=["rolling", "boxcar"])
    return patient


def change_page(model, obj):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize(
    "build", [session_with_rows, plan_with_rows, patient_with_rows], ids=lambda f: f.__name__
)
def test_a_change_page_runs_as_many_queries_for_eight_inline_rows_as_for_one(manager_client, build):
    one, eight = build(1), build(8)
    few, page_one = queries_for(manager_client, change_page(type(one), one))
    many, page_eight = queries_for(manager_client, change_page(type(eight), eight))
    # The eight rows are on the page (a page that showed none would pass trivially).
    assert page_eight.count('class="form-row') >= page_one.count('class="form-row') + 7
    assert many == few, f"{few} queries with one row per inline, {many} with eight"
