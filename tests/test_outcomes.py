"""Clinic outcomes: per treatment and scar type, from a small data set computed by hand."""

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse

from patients.models import ScarType
from plans.models import Session
from plans.reports import clinic_outcomes
from plans.services import AdverseEventInput
from tests.factories import (
    PatientFactory,
    ScarSiteFactory,
    at,
    baseline,
    course,
    log_session,
    make_plan,
    treatment,
)

pytestmark = pytest.mark.django_db

JAN_1, MAR_31 = date(2026, 1, 1), date(2026, 3, 31)
CRYO, NEEDLING = "Cryotherapy", "Microneedling"
HYPERTROPHIC, ROLLING = "Hypertrophic", "Atrophic: rolling"


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel("2026-04-15 12:00Z", tick=True):
        yield


@dataclass
class Clinic:
    p1: object
    p2: object


def sessions_of(plan):
    return list(plan.sessions.order_by("scheduled_at"))


@pytest.fixture
def clinic(clinician):
    """Two patients, hand-computed (Δ = session score - the site's FIRST baseline):

    P1 upper back, hypertrophic. Baselines VSS 9 and POSAS observer 30 (15 Dec 2025), then a
    later VSS 12 (3 Jan 2026) that must not replace the first.
      Cryotherapy x3 every 28 days from 5 Jan 2026:
        5 Jan   VSS 7  (Δ -2)
        2 Feb   VSS 6  (Δ -3), POSAS observer 24 (Δ -6), an adverse event
        2 Mar   still scheduled: does not count
    P2 chest, hypertrophic: baseline VSS 10. Left cheek, rolling: baseline G&B grade 4.
      Cryotherapy x3 every 28 days from 9 Feb 2026 (chest):
        9 Feb   VSS 9  (Δ -1), POSAS observer 20 (no POSAS baseline on the chest: left out)
        9 Mar   VSS 6  (Δ -4)
        6 Apr   VSS 4  (Δ -6)  after 31 Mar
      Microneedling x3 every 28 days from 12 Jan 2026 (cheek):
        12 Jan  G&B grade 3 (Δ -1), pain 6 (rated per session: no change to compute)
        9 Feb   cancelled: does not count
        9 Mar   G&B grade 2 (Δ -2)
    """
    p1 = PatientFactory()
    back = ScarSiteFactory(patient=p1, body_site="upper_back", scar_types=["hypertrophic"])
    baseline(back, "vss", 9, user=clinician, on=date(2025, 12, 15))
    baseline(back, "posas_observer", 30, user=clinician, on=date(2025, 12, 15))
    baseline(back, "vss", 12, user=clinician, on=date(2026, 1, 3))
    cryo1 = make_plan(user=clinician, sites=[back], courses=[course("cryotherapy", 3, every=28)])
    jan5, feb2, _mar2 = sessions_of(cryo1)
    log_session(jan5, clinician, scores=[(back, "vss", 7)])
    log_session(
        feb2,
        clinician,
        scores=[(back, "vss", 6), (back, "posas_observer", 24)],
        events=[AdverseEventInput("erythema", "mild", scar_site=back)],
    )

    p2 = PatientFactory()
    chest = ScarSiteFactory(patient=p2, body_site="chest", scar_types=["hypertrophic"])
    cheek = ScarSiteFactory(patient=p2, body_site="left_cheek", scar_types=["rolling"])
    baseline(chest, "vss", 10, user=clinician)
    baseline(cheek, "gb_qualitative", 4, user=clinician)
    cryo2 = make_plan(
        user=clinician,
        sites=[chest],
        courses=[course("cryotherapy", 3, every=28)],
        start=date(2026, 2, 9),
    )
    feb9, mar9, apr6 = sessions_of(cryo2)
    log_session(feb9, clinician, scores=[(chest, "vss", 9), (chest, "posas_observer", 20)])
    log_session(mar9, clinician, scores=[(chest, "vss", 6)])
    log_session(apr6, clinician, scores=[(chest, "vss", 4)])
    needling = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[course("microneedling", 3, every=28)],
        start=date(2026, 1, 12),
    )
    jan12, feb9, mar9 = sessions_of(needling)
    log_session(jan12, clinician, scores=[(cheek, "gb_qualitative", 3), (cheek, "pain", 6)])
    Session.objects.filter(pk=feb9.pk).update(status=Session.Status.CANCELLED)
    log_session(mar9, clinician, scores=[(cheek, "gb_qualitative", 2)])
    return Clinic(p1, p2)


def table(rows):
    """Rows as comparable tuples."""
    return [
        (
            r.treatment,
            r.scar_type,
            r.patients,
            r.sessions,
            r.sessions_with_adverse_event,
            r.adverse_event_share,
            r.mean_change,
        )
        for r in rows
    ]


# --- clinic_outcomes -----------------------------------------------------------------------


def test_outcomes_per_treatment_and_scar_type_match_the_hand_computed_numbers(clinic):
    rows = clinic_outcomes(start=JAN_1, end=MAR_31)

    assert table(rows) == [
        # P1 5 Jan + 2 Feb, P2 9 Feb + 9 Mar; 1 of 4 with an adverse event = 25%
        # VSS (-2 - 3 - 1 - 4) / 4 = -2.5; POSAS observer -6 from P1 alone
        (CRYO, HYPERTROPHIC, 2, 4, 1, 25, {"vss": (-2.5, 4), "posas_observer": (-6.0, 1)}),
        # P2 12 Jan + 9 Mar; grade (-1 - 2) / 2 = -1.5; pain has no baseline to compare with
        (NEEDLING, ROLLING, 1, 2, 0, 0, {"gb_qualitative": (-1.5, 2)}),
    ]


def test_a_session_on_the_end_date_counts_and_one_the_day_after_does_not(clinic):
    on_the_day = clinic_outcomes(start=JAN_1, end=date(2026, 3, 9))
    day_before = clinic_outcomes(start=JAN_1, end=date(2026, 3, 8))

    assert table(on_the_day) == table(clinic_outcomes(start=JAN_1, end=MAR_31))
    assert table(day_before) == [
        # P1 5 Jan + 2 Feb, P2 9 Feb; 1 of 3 = 33%; VSS (-2 - 3 - 1) / 3 = -2.0
        (CRYO, HYPERTROPHIC, 2, 3, 1, 33, {"vss": (-2.0, 3), "posas_observer": (-6.0, 1)}),
        (NEEDLING, ROLLING, 1, 1, 0, 0, {"gb_qualitative": (-1.0, 1)}),
    ]


def test_a_session_on_the_start_date_counts_and_one_the_day_before_does_not(clinic):
    from_the_day = clinic_outcomes(start=date(2026, 1, 5), end=MAR_31)
    day_after = clinic_outcomes(start=date(2026, 1, 6), end=MAR_31)

    assert table(from_the_day) == table(clinic_outcomes(start=JAN_1, end=MAR_31))
    # without P1's 5 Jan: VSS (-3 - 1 - 4) / 3 = -2.67, shown to one decimal
    assert table(day_after)[0] == (
        CRYO,
        HYPERTROPHIC,
        2,
        3,
        1,
        33,
        {"vss": (-2.7, 3), "posas_observer": (-6.0, 1)},
    )


def test_a_later_end_date_takes_in_the_april_session(clinic):
    (cryo, _) = clinic_outcomes(start=JAN_1, end=date(2026, 4, 30))

    # 5 sessions, 1 with an adverse event = 20%; VSS (-2 - 3 - 1 - 4 - 6) / 5 = -3.2
    assert (cryo.sessions, cryo.adverse_event_share, cryo.mean_change["vss"]) == (5, 20, (-3.2, 5))


def test_a_period_without_completed_sessions_has_no_rows(clinic):
    assert clinic_outcomes(start=date(2026, 3, 10), end=date(2026, 3, 31)) == []


def test_outcomes_use_the_clinics_local_days_at_the_edges(clinician):
    """Late March is British Summer Time: 00:30 on 1 April is still 31 March in UTC."""
    patient = PatientFactory()
    site = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["keloid"])
    plan = make_plan(
        user=clinician,
        sites=[site],
        courses=[course("cryotherapy", 2, every=28)],
        start=date(2026, 3, 3),
    )
    late, early = sessions_of(plan)
    for session, moment in (
        (late, at(date(2026, 3, 31), 23, 30)),
        (early, at(date(2026, 4, 1), 0, 30)),
    ):
        Session.objects.filter(pk=session.pk).update(
            scheduled_at=moment, ends_at=moment + timedelta(minutes=30)
        )
    for session in sessions_of(plan):
        log_session(session, clinician)

    (march,) = clinic_outcomes(start=date(2026, 3, 1), end=MAR_31)
    (both,) = clinic_outcomes(start=date(2026, 3, 1), end=date(2026, 4, 1))
    (april,) = clinic_outcomes(start=date(2026, 4, 1), end=date(2026, 4, 1))

    assert (march.scar_type, march.sessions) == ("Keloid", 1)
    assert both.sessions == 2
    assert april.sessions == 1


def test_outcomes_filter_by_treatment(clinic):
    rows = clinic_outcomes(start=JAN_1, end=MAR_31, treatment=treatment("microneedling"))

    assert table(rows) == [(NEEDLING, ROLLING, 1, 2, 0, 0, {"gb_qualitative": (-1.5, 2)})]


def test_outcomes_filter_by_scar_type(clinic):
    hypertrophic = ScarType.objects.get(code="hypertrophic")
    keloid = ScarType.objects.get(code="keloid")

    rows = clinic_outcomes(start=JAN_1, end=MAR_31, scar_type=hypertrophic)

    assert [(r.treatment, r.scar_type, r.sessions) for r in rows] == [(CRYO, HYPERTROPHIC, 4)]
    assert clinic_outcomes(start=JAN_1, end=MAR_31, scar_type=keloid) == []


def test_outcomes_filter_by_instrument_keeps_the_counts(clinic):
    rows = clinic_outcomes(start=JAN_1, end=MAR_31, instrument="vss")

    assert table(rows) == [
        (CRYO, HYPERTROPHIC, 2, 4, 1, 25, {"vss": (-2.5, 4)}),
        (NEEDLING, ROLLING, 1, 2, 0, 0, {}),
    ]


# --- the manager's page --------------------------------------------------------------------


def page(client, **query):
    return client.get(reverse("clinic_outcomes"), query)


def outcome_table(response):
    """The outcomes table as rows of cell texts."""
    html = response.content.decode()
    body = html[html.index('id="outcomes"') :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_manager_sees_the_outcomes_table_and_a_chart(manager_client, clinic):
    response = page(manager_client, start="2026-01-01", end="2026-03-31")

    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    rows = outcome_table(response)
    assert [row[:5] for row in rows] == [
        [CRYO, HYPERTROPHIC, "2", "4", "25% (1)"],
        [NEEDLING, ROLLING, "1", "2", "0% (0)"],
    ]
    html = response.content.decode()
    # the chart shows the most used instrument (VSS, 4 scores), one bar per row that has it
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart"') == 1
    assert html.count('class="bar"') == 1
    assert "<title>Mean change from baseline: Vancouver Scar Scale</title>" in html
    assert "Cryotherapy · Hypertrophic" in html


def test_manager_sees_the_mean_change_of_each_score_in_the_table(manager_client, clinic):
    response = page(manager_client, start="2026-01-01", end="2026-03-31")

    assert "Vancouver Scar Scale: mean change (n)" in response.content.decode()
    # columns in instrument order: G&B qualitative, VSS, POSAS observer
    assert [row[5:] for row in outcome_table(response)] == [
        ["—", "-2.5 (4)", "-6.0 (1)"],
        ["-1.5 (2)", "—", "—"],
    ]


def test_outcomes_page_filters_by_treatment_and_instrument(manager_client, clinic):
    response = page(
        manager_client,
        start="2026-01-01",
        end="2026-03-31",
        treatment=treatment("microneedling").pk,
        instrument="gb_qualitative",
    )

    assert [row[:4] for row in outcome_table(response)] == [[NEEDLING, ROLLING, "1", "2"]]
    html = response.content.decode()
    assert "<title>Mean change from baseline: Goodman &amp; Baron qualitative grade</title>" in html


def test_outcomes_page_defaults_to_the_last_twelve_months(manager_client, clinic):
    response = page(manager_client)

    assert response.status_code == 200
    assert 'value="2025-04-15"' in response.content.decode()
    # everything from 15 Apr 2025 to today (15 Apr 2026), the 6 Apr session included
    assert [row[:4] for row in outcome_table(response)] == [
        [CRYO, HYPERTROPHIC, "2", "5"],
        [NEEDLING, ROLLING, "1", "2"],
    ]


def test_a_range_ending_before_it_starts_is_an_error_on_the_to_field(manager_client, clinic):
    response = page(manager_client, start="2026-03-31", end="2026-01-01")

    assert response.status_code == 200
    assert response.context["form"].errors == {"end": ["To must be on or after From."]}
    assert "To must be on or after From." in response.content.decode()
    assert outcome_table(response) == [["No completed sessions in this period."]]
    assert 'class="bar-chart"' not in response.content.decode()


def test_a_date_that_is_not_a_date_is_an_error_not_a_crash(manager_client, clinic):
    response = page(manager_client, start="last spring", end="2026-13-01")

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"start", "end"}
    assert "Enter a valid date." in response.content.decode()


@pytest.mark.parametrize("who", ["clinician_client", "front_desk_client", "outsider_client"])
def test_outcomes_are_for_managers_only(request, who):
    client = request.getfixturevalue(who)

    assert page(client, start="2026-01-01", end="2026-03-31").status_code == 403


def test_anonymous_visitors_are_sent_to_log_in_for_outcomes(client, db):
    response = page(client)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
