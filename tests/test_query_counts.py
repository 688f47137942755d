"""Query budgets: each list or detail page runs as many queries for ten times the rows as for
a few, so an N+1 query (one more query per row) fails here before a clinic notices."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Consent, ScarSite
from plans import services
from tests.factories import (
    TODAY,
    AcneActivityFactory,
    AdverseEventFactory,
    AssessmentFactory,
    ConsentFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    course,
    frozen,
    make_plan,
    valid_items,
)

pytestmark = pytest.mark.django_db

BODY_SITES = ScarSite.BodySite.values


@pytest.fixture(autouse=True)
def pinned_clock(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


def queries_for(client, url):
    """(number of queries, page) for a GET, after one warm-up request (sessions, caches)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


# --- Today -----------------------------------------------------------------------------------


def add_patients_due_today(clinician, how_many, start=0):
    """Each patient: cryotherapy 3 days ago (overdue), today, and in 3 days (this week).

    Thirty half-hour visits fit one clinician's day; the appointment book places them one
    after another (thirty hour-long ones would not fit and would move to other days)."""
    for n in range(start, start + how_many):
        patient = PatientFactory(first_name="Due", last_name=f"Patient{n:03d}")
        make_plan(
            user=clinician,
            patient=patient,
            sites=[ScarSiteFactory(patient=patient, body_site="chin", scar_types=["rolling"])],
            courses=[course("cryotherapy", 3, every=3)],
            start=TODAY - timedelta(days=3),
        )
        if n % 2:  # findings on the rows: a breakout before this week's visit, isotretinoin
            AcneActivityFactory(patient=patient, recorded_on=TODAY + timedelta(2), level="mild")
            MedicalFlagFactory(patient=patient)


def test_today_runs_as_many_queries_for_30_patients_as_for_3(clinician_client, clinician):
    add_patients_due_today(clinician, 3)
    small, page = queries_for(clinician_client, reverse("home"))
    assert page.count("Log session") == 3 + 3  # due today and overdue
    add_patients_due_today(clinician, 27, start=3)
    large, page = queries_for(clinician_client, reverse("home"))
    assert page.count("Log session") == 30 + 25  # the overdue list shows 25 a page
    assert large == small + 1  # a list longer than its page counts its rows: "Page 1 of 2"


def test_one_clinicians_today_runs_a_fixed_small_number_of_queries(clinician_client, clinician):
    """Session, user, permissions, groups and the clinician list (6); the day's and the week's
    lists in one query, the overdue one, their treatment rows (3); every listed patient's
    consents, flags and acne records, other sessions, rule settings (3). No COUNT for a list
    that fits its page. (It ran 21 before issue 12's work.)"""
    add_patients_due_today(clinician, 5)
    queries, page = queries_for(clinician_client, reverse("home") + f"?clinician={clinician.pk}")
    assert page.count("Log session") == 5 + 5
    assert queries <= 12


def test_the_whole_clinics_today_counts_its_long_lists_from_the_sessions_alone(
    clinician_client, clinician
):
    """A list longer than its page is counted ("Page 1 of 2") on the session table's own
    index: a join with the plans (for each row's clinician) made those COUNTs 4-30x slower
    at a chain's million sessions."""
    add_patients_due_today(clinician, 27)
    url = reverse("home") + "?clinician="
    clinician_client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = clinician_client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("Log session") == 27 + 25
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"]]
    assert len(counts) == 1  # the overdue list (27, 25 a page)
    assert "JOIN" not in counts[0], counts[0]


def test_today_reads_safety_facts_only_for_rows_that_show_them(
    clinician_client, clinician, monkeypatch
):
    """Overdue rows have no safety column: the checks run for the day's and the week's
    sessions, not for the overdue ones (a whole clinic's page of 50 more patients)."""
    add_patients_due_today(clinician, 3)
    checked = []
    real = services.findings_for_sessions

    def spy(sessions, **kwargs):
        sessions = list(sessions)
        checked.extend(sessions)
        return real(sessions, **kwargs)

    monkeypatch.setattr(services, "findings_for_sessions", spy)
    response = clinician_client.get(reverse("home"))
    assert response.status_code == 200
    overdue = {s.pk for s in response.context["overdue"]}
    assert len(overdue) == 3
    assert checked and not overdue & {s.pk for s in checked}
    assert {s.scheduled_on for s in checked} == {TODAY, TODAY + timedelta(days=3)}


# --- patients --------------------------------------------------------------------------------


def test_the_patient_list_runs_as_many_queries_for_50_patients_as_for_5(front_desk_client):
    PatientFactory.create_batch(5)
    small, page = queries_for(front_desk_client, reverse("patient_list"))
    assert "5 patients" in page
    PatientFactory.create_batch(45)
    large, page = queries_for(front_desk_client, reverse("patient_list"))
    assert "50 patients" in page
    assert large == small


def add_plans_to(patient, clinician, how_many, start=0):
    """Per plan: its own scar site with scores, a consent, a flag, and a logged session with
    an adverse event; three sessions in all."""
    for n in range(start, start + how_many):
        site = ScarSiteFactory(patient=patient, body_site=BODY_SITES[n], scar_types=["rolling"])
        AssessmentFactory(scar_site=site, instrument="gb_qualitative", assessed_on=TODAY)
        AssessmentFactory(scar_site=site, instrument="ecca", assessed_on=TODAY)
        ConsentFactory(patient=patient, kind=Consent.Kind.TREATMENT)
        MedicalFlagFactory(patient=patient, detail=f"flag {n}")
        plan = make_plan(
            user=clinician,
            patient=patient,
            sites=[site],
            courses=[course("cryotherapy", 3, every=28)],
            start=TODAY - timedelta(days=n),
            title=f"Plan {n:02d}",
        )
        done = plan.sessions.order_by("scheduled_at").first()
        services.session_complete(
            session=done,
            user=clinician,
            parameters={row.pk: CRYO for row in done.treatments.all()},
            adverse_events=[services.AdverseEventInput("swelling", "mild", site)],
        )


CRYO = {"method": "spray", "cycles": 2, "seconds": 15}


@pytest.mark.parametrize("role", ["clinician", "front_desk"])
def test_the_patient_overview_runs_as_many_queries_for_10_plans_as_for_1(request, clinician, role):
    client = request.getfixturevalue(f"{role}_client")
    patient = PatientFactory()
    url = reverse("patient_detail", args=[patient.pk])
    add_plans_to(patient, clinician, 1)
    small, page = queries_for(client, url)
    assert page.count("1 of 3 done") == 1
    add_plans_to(patient, clinician, 9, start=1)
    large, page = queries_for(client, url)
    assert page.count("1 of 3 done") == 10
    assert large == small


# --- plans -----------------------------------------------------------------------------------


def plan_with_courses(clinician, how_many, *, activate):
    """Cryotherapy courses of three sessions, one starting each day: 3 x how_many sessions."""
    patient = PatientFactory()
    return make_plan(
        user=clinician,
        patient=patient,
        sites=[ScarSiteFactory(patient=patient, body_site="chin", scar_types=["keloid"])],
        courses=[course("cryotherapy", 3, every=28, offset=n) for n in range(how_many)],
        activate=activate,
    )


@pytest.mark.parametrize("activate", [True, False], ids=["active", "draft"])
def test_a_plan_page_runs_as_many_queries_for_30_sessions_as_for_3(
    clinician_client, clinician, activate
):
    small, page = queries_for(
        clinician_client,
        reverse("plan_detail", args=[plan_with_courses(clinician, 1, activate=activate).pk]),
    )
    assert page.count("Cryotherapy") >= 3
    plan = plan_with_courses(clinician, 10, activate=activate)
    large, page = queries_for(clinician_client, reverse("plan_detail", args=[plan.pk]))
    if activate:
        assert plan.sessions.count() == 30
    assert page.count(" of 3") >= 30
    assert large == small


# --- logging a session -----------------------------------------------------------------------


def session_to_log(clinician, sites):
    """The second session of a plan on `sites` scar sites, the first logged with scores."""
    patient = PatientFactory()
    targets = [
        ScarSiteFactory(patient=patient, body_site=BODY_SITES[n], scar_types=["rolling", "keloid"])
        for n in range(sites)
    ]
    for site in targets:  # baselines with two instruments each
        AssessmentFactory(scar_site=site, instrument="vss", assessed_on=date(2026, 1, 2))
        AssessmentFactory(scar_site=site, instrument="ecca", assessed_on=date(2026, 1, 2))
    plan = make_plan(
        user=clinician,
        patient=patient,
        sites=targets,
        courses=[course("microneedling", 3, every=42), course("cryotherapy", 3, every=42)],
    )
    first, second = plan.sessions.order_by("scheduled_at")[:2]
    services.session_complete(
        session=first,
        user=clinician,
        parameters={
            row.pk: CRYO if row.treatment.code == "cryotherapy" else NEEDLING
            for row in first.treatments.select_related("treatment")
        },
        assessments=[
            services.AssessmentInput(site, "vss", valid_items("vss", "maximum")) for site in targets
        ],
    )
    return second


NEEDLING = {"device": "Dermapen 4", "needle_depth": 1.5, "passes": 3}


def test_the_log_page_runs_as_many_queries_for_10_scar_sites_as_for_1(clinician_client, clinician):
    # The second session is booked for a later day: as after confirming it is done today.
    small, page = queries_for(
        clinician_client,
        reverse("session_log", args=[session_to_log(clinician, 1).pk]) + "?performed_today=1",
    )
    assert page.count("Outcome: ") == 1
    session = session_to_log(clinician, 10)
    large, page = queries_for(
        clinician_client, reverse("session_log", args=[session.pk]) + "?performed_today=1"
    )
    assert page.count("Outcome: ") == 10
    assert page.count("Last time: Dermapen 4") == 1
    assert large == small


# --- adverse events --------------------------------------------------------------------------


def test_the_adverse_event_list_runs_as_many_queries_for_50_events_as_for_5(clinician_client):
    AdverseEventFactory.create_batch(5, notes="watch")
    small, page = queries_for(clinician_client, reverse("adverse_event_list"))
    assert "5 unresolved" in page
    AdverseEventFactory.create_batch(45, notes="watch")
    large, page = queries_for(clinician_client, reverse("adverse_event_list"))
    assert "50 unresolved" in page
    assert page.count(">watch<") == 25
    assert large == small
