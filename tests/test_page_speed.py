"""The clinical pages stay fast at scale (issue 12): work done once, not per download or row."""

import re
from datetime import date
from unittest import mock

import pytest
import time_machine
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django.core.cache import cache
from django.urls import reverse

from plans import report_views, services
from plans.templatetags.field_tags import as_field
from tests import test_views_sessions as sessions_tests
from tests.factories import (
    ConsentFactory,
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


# --- session log: fields without crispy's per-field template --------------------------------


def _all_fields(context):
    """Every bound field the session log page renders, in page order."""
    forms = [form for _, form in context["rows"]]
    for block in context["site_blocks"]:
        forms += [*block["instruments"], block["outcome"]]
    forms += [*context["events"], context["events"].empty_form]
    return [field for form in forms for field in form]


def _same_markup(html):
    """Markup as a browser reads it: whitespace next to tags does not count."""
    return re.sub(r"\s+", " ", re.sub(r"\s*(<|>)\s*", r"\1", str(html))).strip()


def _assert_as_crispy_renders(context):
    fields = _all_fields(context)
    ours = [as_field(field) for field in fields]  # before crispy touches the widgets' classes
    for field, html in zip(fields, ours, strict=True):
        assert _same_markup(html) == _same_markup(as_crispy_field(field)), field.html_name
    return fields


@pytest.fixture
def needling(clinician):
    patient = PatientFactory(first_name="Rosalind", last_name="Achterberg")
    ConsentFactory(patient=patient, kind="clinical_photography", signed_on=date(2025, 6, 1))
    cheek = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    baseline(cheek, "gb_qualitative", 3, user=clinician, on=date(2026, 1, 2))
    plan = make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 3, every=42)])
    return plan.sessions.order_by("scheduled_at").first(), cheek


def test_the_session_log_fields_are_the_markup_crispy_would_render(clinician_client, needling):
    session, _ = needling

    response = clinician_client.get(sessions_tests._log_url(session))

    fields = _assert_as_crispy_renders(response.context)
    kinds = {type(field.field.widget).__name__ for field in fields}
    assert {"NumberInput", "Select", "TextInput", "ClearableFileInput"} <= kinds


def test_the_session_log_errors_are_the_markup_crispy_would_render(clinician_client, needling):
    session, cheek = needling
    typed = sessions_tests._log_typed(session, cheek) | {
        f"t{session.treatments.get().pk}-needle_depth": "5",
        f"s{cheek.pk}-pain": "99",
        "ae-0-severity": "",
    }
    form = sessions_tests._log_form(clinician_client, session)

    response = clinician_client.post(sessions_tests._log_url(session), form | typed)

    assert response.status_code == 200
    fields = _assert_as_crispy_renders(response.context)
    assert sum(bool(field.errors) for field in fields) >= 2
