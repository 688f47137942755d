"""The clinical pages stay fast at scale (issue 12): work done once, not per download or row."""

from datetime import date
from unittest import mock

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse

from plans import report_views, services
from tests.factories import (
    PatientFactory,
    ScarSiteFactory,
    baseline,
    course,
    log_session,
    make_plan,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel("2026-02-10 12:00Z", tick=True):
        yield


@pytest.fixture
def logged(clinician):
    """A patient with a baseline VSS and one logged cryotherapy session."""
    patient = PatientFactory(first_name="Ottoline", last_name="Vandersteen")
    back = ScarSiteFactory(patient=patient, body_site="upper_back", scar_types=["hypertrophic"])
    baseline(back, "vss", 9, user=clinician, on=date(2026, 1, 2))
    plan = make_plan(user=clinician, sites=[back], courses=[course("cryotherapy", 4, every=28)])
    first = plan.sessions.order_by("scheduled_at").first()
    log_session(first, clinician, scores=[(back, "vss", 7)], notes="First note")
    first.refresh_from_db()
    return patient, back, first


@pytest.fixture
def renders():
    """Counts WeasyPrint layouts, with an empty cache so a test sees only its own."""
    cache.clear()
    with mock.patch.object(report_views, "render_pdf", wraps=report_views.render_pdf) as render:
        yield render
    cache.clear()


def pdf_url(patient, **query):
    url = reverse("patient_report_pdf", args=[patient.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_a_second_download_of_an_unchanged_report_is_not_laid_out_again(
    clinician_client, logged, renders
):
    patient, _, _ = logged

    first = clinician_client.get(pdf_url(patient))
    second = clinician_client.get(pdf_url(patient))

    assert first.status_code == second.status_code == 200
    assert second["Content-Type"] == "application/pdf"
    assert second.content == first.content
    assert renders.call_count == 1


def test_the_staff_and_the_patient_copies_are_cached_apart(clinician_client, logged, renders):
    patient, _, _ = logged

    staff = clinician_client.get(pdf_url(patient))
    own = clinician_client.get(pdf_url(patient, copy="patient"))
    clinician_client.get(pdf_url(patient, copy="patient"))

    assert staff.content != own.content
    assert renders.call_count == 2


def test_a_new_score_makes_the_next_download_a_new_pdf(
    clinician, clinician_client, logged, renders
):
    patient, back, _ = logged
    before = clinician_client.get(pdf_url(patient))

    baseline(back, "posas_observer", 30, user=clinician, on=date(2026, 2, 9))
    after = clinician_client.get(pdf_url(patient))

    assert renders.call_count == 2
    assert after.content != before.content


def test_an_amendment_makes_the_next_download_a_new_pdf(
    clinician, clinician_client, logged, renders
):
    patient, _, session = logged
    clinician_client.get(pdf_url(patient))

    services.session_amend(
        session=session, user=clinician, reason="Typo in the note", notes="Corrected note"
    )
    clinician_client.get(pdf_url(patient))

    assert renders.call_count == 2


def test_the_next_day_the_same_report_is_dated_anew(clinician, clinician_client, logged, renders):
    patient, _, _ = logged
    clinician_client.get(pdf_url(patient))

    with time_machine.travel("2026-02-11 12:00Z", tick=True):
        clinician_client.force_login(clinician)  # yesterday's login has timed out
        assert clinician_client.get(pdf_url(patient)).status_code == 200

    assert renders.call_count == 2
