"""The plan builder on one page (issue 14): generated title, the only site ticked, ranked
suggestions, one course row and "Add another treatment", the treatment's usual course, the
live preview fragment, Save and activate, and plan templates (protocols)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import ScarType
from plans.forms import plan_title
from plans.models import Plan, PlanTemplate, PlanTemplateCourse, Session, Treatment
from tests.factories import (
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    course,
    frozen,
    make_plan,
    treatment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pinned_clock():
    with frozen():
        yield


@pytest.fixture
def back():
    patient = PatientFactory(first_name="Oriane", last_name="Falkenrath")
    return ScarSiteFactory(patient=patient, body_site="upper_back", scar_types=["hypertrophic"])


def _url(site):
    return reverse("plan_create", args=[site.patient_id])


def _row(n, code, sessions="", every="", offset="0", label=""):
    return {
        f"courses-{n}-treatment": str(treatment(code).pk),
        f"courses-{n}-label": label,
        f"courses-{n}-sessions_count": str(sessions),
        f"courses-{n}-interval_days": str(every),
        f"courses-{n}-offset_days": str(offset),
    }


def _form(client, site, **changes):
    return browser_form(client.get(_url(site))) | changes


def _rows_outside_template(html):
    return html.split("<template", 1)[0].count('class="course-row')


# --- the title ----------------------------------------------------------------------------


def test_the_title_is_made_from_one_course_with_its_interval_in_weeks(db):
    assert plan_title([course("cryotherapy", 4, every=28)]) == "Cryotherapy x 4, every 4 weeks"
    assert plan_title([course("chemical_peel", 3, every=10)]) == "Chemical peel x 3, every 10 days"
    assert plan_title([course("cryotherapy", 1)]) == "Cryotherapy x 1"


def test_the_title_of_several_courses_names_each_treatment_once(db):
    courses = [
        course("microneedling", 3, every=42),
        course("chemical_peel", 3, every=42, offset=21),
        course("microneedling", 1, offset=100),
    ]
    assert plan_title(courses) == "Microneedling + chemical peel"


def test_a_plan_saved_without_a_title_gets_the_generated_one(clinician_client, back):
    data = _form(clinician_client, back, title="") | _row(0, "cryotherapy", 4, 28)
    response = clinician_client.post(_url(back), data | {"action": "save"})
    assert response.status_code == 302
    assert Plan.objects.get().title == "Cryotherapy x 4, every 4 weeks"


def test_a_typed_title_is_kept(clinician_client, back):
    data = _form(clinician_client, back, title="Back keloid course") | _row(0, "cryotherapy", 4, 28)
    clinician_client.post(_url(back), data | {"action": "save"})
    assert Plan.objects.get().title == "Back keloid course"


# --- sites and suggestions ----------------------------------------------------------------


def test_the_only_open_scar_site_is_ticked_from_the_start(clinician_client, back):
    assert _form(clinician_client, back)["target_sites"] == str(back.pk)


def test_with_two_sites_none_is_ticked_for_the_clinician(clinician_client, back):
    ScarSiteFactory(patient=back.patient, body_site="left_cheek", scar_types=["rolling"])
    assert "target_sites" not in _form(clinician_client, back)


def _suggestions(response):
    html = response.content.decode()
    start = html.index('id="suggest-heading"')
    section = html[start : html.index("</section>", start)]
    names = re.findall(r'<strong class="me-auto">([^<]+)</strong>', section)
    reasons = re.findall(r'<div class="suggestion-reason">([^<]+)</div>', section)
    return names, reasons, section


def test_suggestions_rank_the_specific_treatments_for_the_sites_type_first(clinician_client, back):
    names, reasons, _ = _suggestions(clinician_client.get(_url(back)))
    assert names[:2] == ["Cryotherapy", "Pulsed-dye laser"]
    assert set(names[2:]) == {
        "Alpha hydroxy acids (AHA)",
        "Chemical peel",
        "Lactic acid",
        "Salicylic acid",
    }
    assert names[2:] == sorted(names[2:])
    assert "Microneedling" not in names
    assert reasons[0] == "Best for hypertrophic, keloid: matches Upper back."


def test_suggestions_put_what_covers_more_of_the_chosen_types_first(clinician_client, back):
    cheek = ScarSiteFactory(patient=back.patient, body_site="left_cheek", scar_types=["rolling"])
    data = _form(clinician_client, back, target_sites=[str(back.pk), str(cheek.pk)])
    response = clinician_client.post(_url(back), data | {"action": "preview"})
    names, reasons, _ = _suggestions(response)
    # The acids and peels suit both sites' types; the rest one each, by specificity then name.
    assert names[:4] == [
        "Alpha hydroxy acids (AHA)",
        "Chemical peel",
        "Lactic acid",
        "Salicylic acid",
    ]
    # Cryotherapy and the laser suit 2 types, microneedling 3: the more specific first.
    assert names[4:] == ["Cryotherapy", "Pulsed-dye laser", "Microneedling"]
    assert reasons[0].endswith(": matches Left cheek, Upper back.")
    if ScarType.objects.count() == 6:
        assert reasons[0].startswith("Suits every scar type")
    assert reasons[4] == "Best for hypertrophic, keloid: matches Upper back."
    assert reasons[6].endswith(": matches Left cheek.")


def test_each_use_button_names_its_treatment_and_the_long_text_is_collapsed(clinician_client, back):
    _, _, section = _suggestions(clinician_client.get(_url(back)))
    uses = re.findall(r'>Use<span class="visually-hidden"> ([^<]+)</span></button>', section)
    assert uses[:2] == ["Cryotherapy", "Pulsed-dye laser"]
    assert len(uses) == len(set(uses))
    notes = Treatment.objects.get(code="aha").staff_notes
    details = re.findall(r"<details>(.*?)</details>", section, re.S)
    assert any(notes[:40] in d for d in details)
    assert notes[:40] not in re.sub(r"<details>.*?</details>", "", section, flags=re.S)


# --- course rows --------------------------------------------------------------------------


def test_the_builder_starts_with_one_course_row_and_a_row_template(clinician_client, back):
    html = clinician_client.get(_url(back)).content.decode()
    assert 'name="courses-TOTAL_FORMS" value="1"' in html
    assert _rows_outside_template(html) == 1
    assert 'name="courses-__prefix__-treatment"' in html.split("<template", 1)[1]
    assert "Add another treatment" in html
    # "Every (days)" is not 0 before a treatment is chosen.
    assert not re.search(r'name="courses-0-interval_days"[^>]*value="0"', html)


def test_add_row_without_javascript_keeps_what_was_typed_and_adds_one_row(clinician_client, back):
    typed = _form(clinician_client, back, title="Back course", goal="Flatter") | _row(
        0, "cryotherapy", 3, 21, label="Spray"
    )
    response = clinician_client.post(_url(back), typed | {"action": "add_row"})
    assert response.status_code == 200
    html = response.content.decode()
    assert _rows_outside_template(html) == 2
    kept = browser_form(response)
    assert kept["courses-TOTAL_FORMS"] == "2"
    for key in ("title", "goal", *[k for k in typed if k.startswith("courses-0-")]):
        assert kept[key] == typed[key], key
    assert kept["courses-1-treatment"] == ""
    assert "is required" not in html and "invalid-feedback" not in html
    assert not Plan.objects.exists()


def test_a_course_left_without_sessions_and_interval_gets_the_treatments_usual_course(
    clinician_client, back
):
    data = _form(clinician_client, back) | _row(0, "cryotherapy")
    clinician_client.post(_url(back), data | {"action": "save"})
    saved = Plan.objects.get().courses.get()
    cryo = treatment("cryotherapy")
    assert (saved.sessions_count, saved.interval_days) == (
        cryo.default_sessions,
        cryo.default_interval_days,
    )
    assert (saved.sessions_count, saved.interval_days) == (4, 28)


def test_the_page_carries_each_treatments_usual_course_for_the_script(clinician_client, back):
    html = clinician_client.get(_url(back)).content.decode()
    cryo = treatment("cryotherapy")
    assert f'data-treatment="{cryo.pk}" data-sessions="4" data-interval="28"' in html


# --- preview --------------------------------------------------------------------------------


def _preview_rows(html):
    start = html.find('id="calendar-preview"')
    assert start != -1, "no calendar preview"
    table = html[start : html.find("</table>", start)]
    return re.findall(r'<tr><td class="text-nowrap">([^<]+)</td>\s*<td>([^<]+)</td>', table)


def test_the_preview_submit_still_works_without_javascript(clinician_client, back):
    data = _form(clinician_client, back) | _row(0, "cryotherapy", 2, 28)
    response = clinician_client.post(_url(back), data | {"action": "preview"})
    assert _preview_rows(response.content.decode()) == [
        ("Mon 5 Jan 2026", "Cryotherapy 1 of 2"),
        ("Mon 2 Feb 2026", "Cryotherapy 2 of 2"),
    ]
    assert not Plan.objects.exists()


def test_the_live_preview_is_a_fragment_with_the_calendar_and_the_title(clinician_client, back):
    data = _form(clinician_client, back, title="") | _row(0, "cryotherapy", 2, 28)
    response = clinician_client.post(
        reverse("plan_builder_preview", args=[back.patient_id]), data | {"action": "preview"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<script" not in html
    assert _preview_rows(html) == [
        ("Mon 5 Jan 2026", "Cryotherapy 1 of 2"),
        ("Mon 2 Feb 2026", "Cryotherapy 2 of 2"),
    ]
    assert 'data-title="Cryotherapy x 2, every 4 weeks"' in html
    assert "Nothing to confirm: Save and activate books 2 visits." in html
    assert not Plan.objects.exists()


def test_the_live_preview_says_what_to_correct(clinician_client, back):
    data = _form(clinician_client, back, start_date="") | _row(0, "cryotherapy", 2, 28)
    response = clinician_client.post(reverse("plan_builder_preview", args=[back.patient_id]), data)
    assert "To see the calendar, correct: Start date." in response.content.decode()


def test_the_live_preview_needs_the_right_to_build_plans(front_desk_client, back):
    response = front_desk_client.post(reverse("plan_builder_preview", args=[back.patient_id]))
    assert response.status_code == 403


def test_the_builder_loads_its_script_from_a_static_file_only(clinician_client, back):
    html = clinician_client.get(_url(back)).content.decode()
    assert re.search(r'<script src="[^"]*js/plan-form\.js"', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " onclick=" not in html and " onchange=" not in html


# --- save and activate ----------------------------------------------------------------------


def test_save_and_activate_books_the_visits_in_one_step_when_nothing_needs_confirming(
    clinician_client, back
):
    data = _form(clinician_client, back) | _row(0, "cryotherapy", 4, 28)
    response = clinician_client.post(_url(back), data | {"action": "activate"})
    plan = Plan.objects.get()
    assert response.url == reverse("plan_detail", args=[plan.pk])
    assert plan.status == Plan.Status.ACTIVE
    assert plan.sessions.filter(status=Session.Status.SCHEDULED).count() == 4
    page = clinician_client.get(response.url).content.decode()
    assert "Plan saved and activated: 4 sessions are on the calendar." in page


def test_save_and_activate_with_a_warning_leaves_a_draft_to_confirm(clinician_client, back):
    # Cryotherapy every 14 days is closer than its minimum interval (20 days): a warning.
    data = _form(clinician_client, back) | _row(0, "cryotherapy", 3, 14)
    response = clinician_client.post(_url(back), data | {"action": "activate"})
    plan = Plan.objects.get()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.sessions.exists()
    page = clinician_client.get(response.url).content.decode()
    assert "Plan saved as a draft: confirm the safety findings" in page
    assert "Too soon after the same treatment" in page
    assert "Activate plan and book 3 sessions" in page


def test_save_and_activate_with_a_block_leaves_a_draft_with_its_override_fields(
    clinician_client, back
):
    from tests.factories import MedicalFlagFactory

    MedicalFlagFactory(patient=back.patient, kind="pregnancy", ended_on=None)
    peel = _row(0, "chemical_peel", 3, 21) | {
        "courses-0-param_agent": "salicylic",
        "courses-0-param_concentration": "30",
    }
    response = clinician_client.post(
        _url(back), _form(clinician_client, back) | peel | {"action": "activate"}
    )
    plan = Plan.objects.get()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.sessions.exists()
    page = clinician_client.get(response.url).content.decode()
    assert "Plan saved as a draft" in page
    assert 'name="override-rule:' in page
    assert "Activate plan and book 3 sessions" in page


def test_save_draft_still_saves_a_draft(clinician_client, back):
    data = _form(clinician_client, back) | _row(0, "cryotherapy", 4, 28)
    clinician_client.post(_url(back), data | {"action": "save"})
    assert Plan.objects.get().status == Plan.Status.DRAFT


# --- plan templates -------------------------------------------------------------------------


@pytest.fixture
def rana_plan(clinician, db):
    site = ScarSiteFactory(body_site="left_cheek", scar_types=["rolling"])
    return make_plan(
        user=clinician,
        sites=[site],
        activate=False,
        courses=[
            course("microneedling", 3, every=42),
            course(
                "chemical_peel",
                3,
                every=42,
                offset=21,
                label="70% glycolic peel",
                default_parameters={"agent": "glycolic", "concentration": 70},
            ),
        ],
    )


def test_a_manager_saves_a_plans_courses_as_a_named_template(manager_client, manager, rana_plan):
    page = manager_client.get(reverse("plan_detail", args=[rana_plan.pk])).content.decode()
    assert "Save as template" in page
    response = manager_client.post(
        reverse("plan_save_template", args=[rana_plan.pk]),
        {"name": "Combined microneedling + peel", "description": "Rana 2017"},
    )
    assert response.status_code == 302
    template = PlanTemplate.objects.get()
    assert (template.name, template.created_by, template.is_active) == (
        "Combined microneedling + peel",
        manager,
        True,
    )
    assert [
        (c.treatment.code, c.sessions_count, c.interval_days, c.offset_days, c.label)
        for c in template.courses.all()
    ] == [
        ("microneedling", 3, 42, 0, ""),
        ("chemical_peel", 3, 42, 21, "70% glycolic peel"),
    ]
    assert template.courses.all()[1].default_parameters == {
        "agent": "glycolic",
        "concentration": 70,
    }
    assert template.summary() == "weeks 0/6/12 and 3/9/15"
    assert template.history.count() == 1


def test_a_clinician_cannot_save_a_template_nor_sees_the_button(clinician_client, rana_plan):
    page = clinician_client.get(reverse("plan_detail", args=[rana_plan.pk])).content.decode()
    assert "Save as template" not in page
    response = clinician_client.post(
        reverse("plan_save_template", args=[rana_plan.pk]), {"name": "Mine"}
    )
    assert response.status_code == 403
    assert not PlanTemplate.objects.exists()


def test_a_template_name_already_taken_is_refused(manager_client, rana_plan):
    PlanTemplate.objects.create(name="Rana")
    response = manager_client.post(
        reverse("plan_save_template", args=[rana_plan.pk]), {"name": "rana"}, follow=True
    )
    assert "A template named &#x27;rana&#x27; exists already" in response.content.decode()
    assert PlanTemplate.objects.count() == 1


def _template(name="Combined microneedling + peel", active=True):
    template = PlanTemplate.objects.create(name=name, is_active=active)
    PlanTemplateCourse.objects.create(
        template=template, treatment=treatment("microneedling"), sessions_count=3,
        interval_days=42, order=0,
    )  # fmt: skip
    PlanTemplateCourse.objects.create(
        template=template, treatment=treatment("chemical_peel"), sessions_count=3,
        interval_days=42, offset_days=21, label="70% glycolic peel",
        default_parameters={"agent": "glycolic", "concentration": "70"}, order=1,
    )  # fmt: skip
    return template


def test_the_builder_offers_active_templates_first_with_their_weeks(clinician_client, back):
    _template()
    _template("Retired protocol", active=False)
    html = clinician_client.get(_url(back)).content.decode()
    offered = html.index("Start from a protocol")
    assert offered < html.index('name="courses-0-treatment"')
    assert "<strong>Combined microneedling + peel</strong>, weeks 0/6/12 and 3/9/15" in html
    assert "Retired protocol" not in html
    assert 'Apply<span class="visually-hidden"> Combined microneedling + peel</span>' in html


def test_applying_a_template_fills_the_course_rows_and_saves_them(clinician_client, back):
    template = _template()
    response = clinician_client.get(_url(back), {"template": template.pk})
    data = browser_form(response)
    assert data["title"] == "Combined microneedling + peel"
    assert data["courses-TOTAL_FORMS"] == "2"
    assert data["courses-0-treatment"] == str(treatment("microneedling").pk)
    assert (data["courses-1-offset_days"], data["courses-1-param_agent"]) == ("21", "glycolic")
    clinician_client.post(_url(back), data | {"action": "save"})
    plan = Plan.objects.get()
    assert [(c.treatment.code, c.offset_days) for c in plan.courses.order_by("order")] == [
        ("microneedling", 0),
        ("chemical_peel", 21),
    ]
    assert plan.courses.get(offset_days=21).default_parameters["agent"] == "glycolic"


def test_applying_a_protocol_without_javascript_keeps_everything_typed(clinician_client, back):
    """Apply is a submit button: the form comes back with the protocol's courses in place of
    the rows and the goal, dates, sites and notes as typed (issue 14, a GET link lost them)."""
    template = _template()
    typed = {
        "goal": "Smoother texture before the wedding",
        "internal_notes": "Prefers late afternoons",
        "start_date": "2026-01-12",
        "preferred_time": "16:30",
        "target_sites": str(back.pk),
        "title": "",
    } | _row(0, "cryotherapy", 4, 28)
    response = clinician_client.post(
        _url(back), _form(clinician_client, back) | typed | {"template": str(template.pk)}
    )
    assert response.status_code == 200
    kept = browser_form(response, form_id="plan-builder")
    assert {k: kept[k] for k in ("goal", "internal_notes", "start_date", "target_sites")} == {
        k: typed[k] for k in ("goal", "internal_notes", "start_date", "target_sites")
    }
    assert kept["preferred_time"] == "16:30"
    assert kept["title"] == "Combined microneedling + peel"  # empty: the protocol's name
    assert kept["courses-TOTAL_FORMS"] == "2"
    assert kept["courses-0-treatment"] == str(treatment("microneedling").pk)
    assert (kept["courses-1-offset_days"], kept["courses-1-param_agent"]) == ("21", "glycolic")
    html = response.content.decode()
    assert "Combined microneedling + peel: 2 courses filled in" in html
    assert html.count("<tr><td") == 6  # the calendar preview, days 12 Jan ...
    assert "is required" not in html and "invalid-feedback" not in html

    clinician_client.post(_url(back), kept | {"action": "save"})
    plan = Plan.objects.get()
    assert (plan.goal, plan.internal_notes, plan.start_date.isoformat()) == (
        typed["goal"],
        typed["internal_notes"],
        "2026-01-12",
    )
    assert [c.treatment.code for c in plan.courses.order_by("order")] == [
        "microneedling",
        "chemical_peel",
    ]


def test_a_title_of_ones_own_survives_applying_a_protocol(clinician_client, back):
    template = _template()
    data = _form(clinician_client, back, title="Back and face, spring")
    response = clinician_client.post(_url(back), data | {"template": str(template.pk)})
    assert browser_form(response, form_id="plan-builder")["title"] == "Back and face, spring"


def test_an_unknown_protocol_posted_is_an_ordinary_preview(clinician_client, back):
    retired = _template(active=False)
    for value in (str(retired.pk), "999999", "x"):
        data = _form(clinician_client, back) | {"template": value}
        response = clinician_client.post(_url(back), data)
        assert response.status_code == 200
        assert browser_form(response, form_id="plan-builder")["courses-TOTAL_FORMS"] == "1"


def test_an_inactive_or_unknown_template_gives_the_plain_builder(clinician_client, back):
    retired = _template(active=False)
    for value in (str(retired.pk), "999999", "x"):
        data = browser_form(clinician_client.get(_url(back), {"template": value}))
        assert data["courses-TOTAL_FORMS"] == "1"


def test_templates_are_in_the_admin_for_the_manager(manager_client):
    template = _template()
    assert manager_client.get(reverse("admin:plans_plantemplate_add")).status_code == 200
    change = reverse("admin:plans_plantemplate_change", args=[template.pk])
    page = manager_client.get(change).content.decode()
    assert 'name="name"' in page and "70% glycolic peel" in page


def test_a_manager_may_add_and_change_templates_and_a_clinician_only_view_them(manager, clinician):
    for model in ("plantemplate", "plantemplatecourse"):
        assert manager.has_perm(f"plans.add_{model}") and manager.has_perm(f"plans.change_{model}")
        assert not manager.has_perm(f"plans.delete_{model}")
        assert clinician.has_perm(f"plans.view_{model}")
        assert not clinician.has_perm(f"plans.add_{model}")
        assert not clinician.has_perm(f"plans.change_{model}")


def test_the_demo_seeds_the_protocols_once(manager):
    from plans.demo import seed_plan_templates

    seed_plan_templates(manager)
    seed_plan_templates(manager)
    names = dict(PlanTemplate.objects.values_list("name", "pk"))
    assert len(names) == 3
    rana = PlanTemplate.objects.get(name="Combined microneedling + peel (Rana 2017)")
    assert rana.summary() == "weeks 0/6/12 and 3/9/15"
    peel = rana.courses.get(offset_days=21)
    assert peel.default_parameters == {"agent": "glycolic", "concentration": 70}
    cryo = PlanTemplate.objects.get(name="Cryotherapy x 4, every 28 days")
    assert cryo.summary() == "weeks 0/4/8/12"
    assert "method" in cryo.courses.get().default_parameters


# --- queries --------------------------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_builder_page_reads_a_constant_number_of_queries(clinician_client, back):
    hypertrophic = ScarType.objects.get(code="hypertrophic")

    def add(n, start):
        for i in range(start, start + n):
            made = Treatment.objects.create(
                code=f"extra-{i}", name=f"Extra {i}", setting="in_office", category="other",
                default_sessions=2, default_interval_days=14,
            )  # fmt: skip
            made.best_for.set([hypertrophic])
            _template(f"Protocol {i}")

    add(2, 0)
    small = _queries(clinician_client, _url(back))
    add(20, 2)
    large = _queries(clinician_client, _url(back))
    html = clinician_client.get(_url(back)).content.decode()
    assert "Extra 21" in html and "Protocol 21" in html
    assert large == small
