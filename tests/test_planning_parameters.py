"""Agents and depth at planning time (issue 10.6): a peel course records its agent and
concentration in the plan builder, so the agent-dependent safety rules (pregnancy, salicylate
allergy, peel depth) fire at preview and activation; the log page re-checks them live."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from plans import services
from plans.models import Course, Plan
from tests.factories import (
    TODAY,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    course,
    frozen,
    make_plan,
    treatment,
)

pytestmark = pytest.mark.django_db

PEEL_AGENTS = "glycolic, salicylic, lactic, mandelic, tca, jessner, mix"
PREGNANCY_BLOCK = "Salicylic acid in pregnancy"


@pytest.fixture(autouse=True)
def pinned_clock(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def cheek():
    patient = PatientFactory(first_name="Marisol", last_name="Everdeen")
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])


@pytest.fixture
def pregnant(cheek):
    MedicalFlagFactory(patient=cheek.patient, kind="pregnancy", ended_on=None)
    return cheek


def _builder(client, site, rows, action, **changes):
    """The new-plan form as a clinician fills it in, with these course rows, then submitted."""
    url = reverse("plan_create", args=[site.patient_id])
    data = browser_form(client.get(url))
    data |= {"title": "Peel course", "target_sites": [str(site.pk)]} | changes
    return client.post(url, data | rows | {"action": action})


def _peel_row(n=0, *, agent="", concentration="", label="Peel", sessions=3, every=21):
    return {
        f"courses-{n}-treatment": str(treatment("chemical_peel").pk),
        f"courses-{n}-label": label,
        f"courses-{n}-sessions_count": str(sessions),
        f"courses-{n}-interval_days": str(every),
        f"courses-{n}-offset_days": "0",
        f"courses-{n}-param_agent": agent,
        f"courses-{n}-param_concentration": concentration,
    }


def _preview_html(response):
    html = response.content.decode()
    start = html.find('id="calendar-preview"')
    assert start != -1, "no calendar preview on the page"
    return html[start : html.find("</table>", start)]


# --- the plan builder ------------------------------------------------------------------------


def test_the_builder_offers_the_peel_agents_from_the_catalogue_but_not_every_parameter(
    clinician_client, cheek
):
    html = clinician_client.get(reverse("plan_create", args=[cheek.patient_id])).content.decode()
    assert 'name="courses-0-param_agent"' in html
    assert 'name="courses-0-param_concentration"' in html
    for agent in PEEL_AGENTS.split(", "):
        assert f'<option value="{agent}">' in html
    # Parameters observed during the session are logged then, not planned.
    for observed in ("layers", "neutralised", "needle_depth", "device", "frost_level"):
        assert f"param_{observed}" not in html


def test_the_builder_stores_the_peels_agent_and_concentration_in_the_course(
    clinician_client, cheek
):
    response = _builder(
        clinician_client, cheek, _peel_row(agent="salicylic", concentration="30"), "save"
    )
    assert response.status_code == 302
    peel = Course.objects.get()
    assert peel.default_parameters == {"agent": "salicylic", "concentration": 30}


def test_a_course_without_planned_values_stores_none(clinician_client, cheek):
    _builder(clinician_client, cheek, _peel_row(), "save")
    assert Course.objects.get().default_parameters == {}


def test_a_preview_for_a_pregnant_patient_with_a_salicylic_peel_shows_the_pregnancy_block(
    clinician_client, pregnant
):
    response = _builder(
        clinician_client, pregnant, _peel_row(agent="salicylic", concentration="30"), "preview"
    )
    assert response.status_code == 200
    preview = _preview_html(response)
    assert preview.count(f"Blocked: {PREGNANCY_BLOCK}") == 3  # each of the three visits
    assert "Chemical peel uses salicylic acid" in preview
    assert not Plan.objects.exists()


def test_a_jessner_peel_for_a_salicylate_allergy_previews_with_the_allergy_block(
    clinician_client, cheek
):
    MedicalFlagFactory(patient=cheek.patient, kind="salicylate_allergy", ended_on=None)
    response = _builder(clinician_client, cheek, _peel_row(agent="jessner"), "preview")
    preview = _preview_html(response)
    assert "Blocked: Salicylate allergy" in preview
    assert "Jessner&#x27;s solution, which contains salicylic acid" in preview


def test_a_glycolic_peel_for_a_pregnant_patient_previews_without_the_block(
    clinician_client, pregnant
):
    response = _builder(
        clinician_client, pregnant, _peel_row(agent="glycolic", concentration="35"), "preview"
    )
    assert PREGNANCY_BLOCK not in _preview_html(response)


def test_a_peel_without_an_agent_previews_as_before_with_depth_unknown(clinician_client, cheek):
    MedicalFlagFactory(patient=cheek.patient, kind="isotretinoin", ended_on=None)
    unknown = _builder(clinician_client, cheek, _peel_row(), "preview")
    assert "unless this is a superficial peel" in _preview_html(unknown)
    assert "Peel depth: depends on the agent used" in unknown.content.decode()

    superficial = _builder(clinician_client, cheek, _peel_row(agent="glycolic"), "preview")
    assert "Recent isotretinoin" not in _preview_html(superficial)
    assert "Peel depth: superficial" in superficial.content.decode()


def test_a_tca_peel_at_35_percent_shows_medium_depth(clinician_client, cheek):
    MedicalFlagFactory(patient=cheek.patient, kind="isotretinoin", ended_on=None)
    response = _builder(
        clinician_client, cheek, _peel_row(agent="tca", concentration="35"), "preview"
    )
    assert "Peel depth: medium" in response.content.decode()
    preview = _preview_html(response)
    assert "Chemical peel risks poor healing and scarring." in preview  # no "unless" any more


def test_activating_a_planned_salicylic_peel_for_a_pregnant_patient_needs_an_override(
    clinician_client, clinician, pregnant
):
    _builder(clinician_client, pregnant, _peel_row(agent="salicylic", concentration="30"), "save")
    plan = Plan.objects.get()

    with pytest.raises(services.SafetyBlocked) as caught:
        services.plan_activate(plan=plan, user=clinician)
    assert {c.finding.rule for c in caught.value.findings} == {"pregnancy_salicylic"}

    response = clinician_client.post(reverse("plan_activate", args=[plan.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Blocked by a safety rule. Nothing was saved." in html
    assert PREGNANCY_BLOCK in html
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.sessions.exists()


def test_an_activated_plan_copies_the_planned_agent_into_each_session(
    clinician_client, clinician, cheek
):
    _builder(clinician_client, cheek, _peel_row(agent="glycolic", concentration="35"), "save")
    plan = Plan.objects.get()
    services.plan_activate(plan=plan, user=clinician)
    rows = [s.treatments.get() for s in plan.sessions.order_by("scheduled_at")]
    assert [row.parameters for row in rows] == [{"agent": "glycolic", "concentration": 35}] * 3


def test_an_agent_not_in_the_catalogue_is_refused_naming_the_allowed_values_and_keeps_the_form(
    clinician_client, cheek
):
    response = _builder(
        clinician_client,
        cheek,
        _peel_row(agent="phenol", concentration="40", label="Deep peel"),
        "save",
        goal="Soften the rolling scars",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Agent must be one of: {PEEL_AGENTS}." in html
    assert not Plan.objects.exists()
    kept = browser_form(response)
    assert kept["title"] == "Peel course"
    assert kept["goal"] == "Soften the rolling scars"
    assert kept["courses-0-label"] == "Deep peel"
    assert kept["courses-0-param_concentration"] == "40"
    assert kept["courses-0-sessions_count"] == "3"


@pytest.mark.parametrize(
    ("concentration", "message"),
    [
        ("120", "Concentration must be from 1 to 100 %."),
        ("strong", "Concentration must be a number from 1 to 100 %."),
    ],
)
def test_a_concentration_out_of_the_catalogues_range_is_refused_with_the_range(
    clinician_client, cheek, concentration, message
):
    response = _builder(
        clinician_client, cheek, _peel_row(agent="tca", concentration=concentration), "preview"
    )
    assert message in response.content.decode()
    assert 'id="calendar-preview"' not in response.content.decode()


def test_an_agent_on_a_treatment_that_has_none_is_refused(clinician_client, cheek):
    rows = {
        "courses-0-treatment": str(treatment("microneedling").pk),
        "courses-0-sessions_count": "3",
        "courses-0-interval_days": "42",
        "courses-0-offset_days": "0",
        "courses-0-param_agent": "salicylic",
    }
    response = _builder(clinician_client, cheek, rows, "save")
    assert response.status_code == 200
    assert "Microneedling has no agent: leave it empty." in response.content.decode()
    assert not Plan.objects.exists()


# --- the log page re-checks the agent live ---------------------------------------------------


@pytest.fixture
def peel_session(clinician, pregnant):
    """The first session of an active peel plan (agent not planned) for a pregnant patient."""
    plan = make_plan(
        user=clinician, sites=[pregnant], courses=[course("chemical_peel", 3, every=21)]
    )
    return plan.sessions.order_by("scheduled_at").first()


def _live(client, session, **values):
    row = session.treatments.get()
    data = {f"t{row.pk}-{code}": value for code, value in values.items()}
    return client.post(reverse("session_live_findings", args=[session.pk]), data)


def test_the_live_findings_show_the_pregnancy_block_for_a_salicylic_agent(
    clinician_client, peel_session
):
    response = _live(clinician_client, peel_session, agent="salicylic", concentration="20")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Blocked: {PREGNANCY_BLOCK}" in html
    assert 'name="override-rule:pregnancy_salicylic"' in html  # a clinician may write a reason
    assert "<html" not in html  # a fragment, not a page
    peel_session.refresh_from_db()
    assert peel_session.treatments.get().parameters == {}  # nothing saved


def test_a_session_logged_before_its_day_is_checked_on_today_as_the_log_page_does(
    clinician_client, clinician, cheek
):
    """Pregnant today, no longer on the booked day: the block is today's (issue 10.5)."""
    MedicalFlagFactory(patient=cheek.patient, kind="pregnancy", ended_on=TODAY + timedelta(10))
    plan = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[course("chemical_peel", 1)],
        start=TODAY + timedelta(21),
    )
    response = _live(clinician_client, plan.sessions.get(), agent="salicylic")
    assert f"Blocked: {PREGNANCY_BLOCK}" in response.content.decode()


def test_the_live_findings_show_no_block_for_a_glycolic_agent(clinician_client, peel_session):
    response = _live(clinician_client, peel_session, agent="glycolic", concentration="35")
    assert response.status_code == 200
    assert PREGNANCY_BLOCK not in response.content.decode()


def test_front_desk_cannot_ask_for_live_findings(front_desk_client, peel_session):
    assert _live(front_desk_client, peel_session, agent="salicylic").status_code == 403


def test_live_findings_for_an_unknown_session_are_404(clinician_client):
    url = reverse("session_live_findings", args=[999_999])
    assert clinician_client.post(url, {"t1-agent": "salicylic"}).status_code == 404


def test_live_findings_are_post_only_and_need_the_csrf_token(clinician, peel_session):
    url = reverse("session_live_findings", args=[peel_session.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    assert client.get(url).status_code == 405
    assert client.post(url, {}).status_code == 403


@pytest.mark.parametrize(
    "garbage",
    [
        {"agent": "<script>alert(1)</script>", "concentration": "NaN"},
        {"agent": "salicylic\x00", "concentration": "1e999"},
        {"concentration": "-5", "layers": "many", "neutralised": "perhaps"},
        {"unknown_code": "x"},
    ],
)
def test_bad_values_are_ignored_by_the_live_findings(clinician_client, peel_session, garbage):
    response = _live(clinician_client, peel_session, **garbage)
    assert response.status_code == 200
    html = response.content.decode()
    assert PREGNANCY_BLOCK not in html
    assert "<script>alert" not in html


def test_fields_of_another_row_or_session_are_ignored(clinician_client, peel_session):
    url = reverse("session_live_findings", args=[peel_session.pk])
    for data in ({"t999999-agent": "salicylic"}, {"tx-agent": "salicylic"}, {"t-": "1"}):
        response = clinician_client.post(url, data)
        assert response.status_code == 200
        assert PREGNANCY_BLOCK not in response.content.decode()


def test_the_log_page_marks_its_findings_for_live_updates(clinician_client, peel_session):
    html = clinician_client.get(reverse("session_log", args=[peel_session.pk])).content.decode()
    url = reverse("session_live_findings", args=[peel_session.pk])
    assert f'id="live-findings" data-url="{url}"' in html
    assert 'js/live-findings.js" defer></script>' in html
