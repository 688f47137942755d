"""Staff pages for plans: Today, the plan builder, activation with safety blocks, hold/resume/
cancel and booking, for each role."""

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from plans.models import Course, Plan, SafetyOverride, Session
from tests.factories import (
    TODAY,
    AcneActivityFactory,
    PatientFactory,
    ScarSiteFactory,
    SessionFactory,
    at,
    browser_form,
    course,
    frozen,
    make_plan,
    staff_world,
    treatment,
)

pytestmark = pytest.mark.django_db

ROLES = ("front_desk", "clinician", "manager")
UNKNOWN = 999_999
REASON = "Breakout is on the back only; the treated cheek is clear. Discussed with patient."


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def staff(front_desk, clinician, manager, outsider):
    return {
        "front_desk": front_desk,
        "clinician": clinician,
        "manager": manager,
        "outsider": outsider,
    }


# --- who may open what -----------------------------------------------------------------------

# (url name, kwargs from the world, method, POST data, expected for front desk/clinician/manager);
# an outsider (logged in, no role) always gets 403.
ACCESS = [
    ("home", lambda w: {}, "get", None, (200, 200, 200)),
    ("plan_create", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    ("plan_builder_preview", lambda w: {"pk": w.patient.pk}, "post", {}, (403, 200, 200)),
    ("plan_detail", lambda w: {"pk": w.plan.pk}, "get", None, (200, 200, 200)),
    (
        "plan_save_template",
        lambda w: {"pk": w.plan.pk},
        "post",
        {"name": "Wren's protocol"},
        (403, 403, 302),
    ),
    ("plan_activate", lambda w: {"pk": w.draft.pk}, "post", {}, (403, 302, 302)),
    ("plan_hold", lambda w: {"pk": w.plan.pk}, "post", {}, (403, 302, 302)),
    (
        "plan_resume",
        lambda w: {"pk": w.plan.pk},
        "post",
        {"restart_on": "2026-03-02"},
        (403, 302, 302),
    ),
    ("plan_cancel", lambda w: {"pk": w.plan.pk}, "post", {}, (403, 302, 302)),
    ("session_book", lambda w: {"pk": w.plan.pk}, "get", None, (200, 200, 200)),
    ("patient_report", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    ("patient_report_pdf", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    (
        "plan_report",
        lambda w: {"pk": w.patient.pk, "plan_pk": w.plan.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    (
        "plan_report_pdf",
        lambda w: {"pk": w.patient.pk, "plan_pk": w.plan.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    (
        "plan_sessions_csv",
        lambda w: {"pk": w.patient.pk, "plan_pk": w.plan.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    ("patient_fhir", lambda w: {"pk": w.patient.pk}, "get", None, (403, 200, 200)),
    ("patient_full_record", lambda w: {"pk": w.patient.pk}, "get", None, (403, 403, 200)),
    ("clinic_outcomes", lambda w: {}, "get", None, (403, 403, 200)),
    ("session_aftercare", lambda w: {"pk": w.done.pk}, "get", None, (403, 200, 200)),
    ("session_aftercare_pdf", lambda w: {"pk": w.done.pk}, "get", None, (403, 200, 200)),
    (
        "photo_compare",
        lambda w: {"pk": w.patient.pk, "site_pk": w.site.pk},
        "get",
        None,
        (403, 200, 200),
    ),
    (
        "photo_report_pair",
        lambda w: {"pk": w.patient.pk, "site_pk": w.site.pk},
        "post",
        {},
        (403, 302, 302),
    ),
    ("report_send", lambda w: {"pk": w.patient.pk}, "post", {}, (403, 302, 302)),
    ("report_link_revoke", lambda w: {"pk": 999999}, "post", {}, (403, 404, 404)),
]
ACCESS_IDS = [row[0] for row in ACCESS]


def _call(client, name, kwargs, method, data):
    return getattr(client, method)(reverse(name, kwargs=kwargs), data or {})


def test_the_access_tables_cover_every_staff_url():
    from patients import urls as patient_urls
    from plans import urls as plan_urls
    from tests import test_patient_import, test_views_patients, test_views_sessions

    staff_urls = {p.name for p in patient_urls.urlpatterns + plan_urls.urlpatterns} | {"home"}
    staff_urls -= {
        "patient_link"
    }  # the patient's own link: no login (tests/test_report_sending.py)
    tables = (
        ACCESS,
        test_views_patients.ACCESS,
        test_views_sessions.ACCESS,
        test_patient_import.ACCESS,
    )
    assert staff_urls - {row[0] for table in tables for row in table} == set()


@pytest.mark.parametrize(("name", "kwargs", "method", "data", "allowed"), ACCESS, ids=ACCESS_IDS)
def test_each_role_gets_exactly_the_plan_pages_its_permissions_allow(
    client, staff, name, kwargs, method, data, allowed
):
    world = staff_world(staff["clinician"])
    got = {}
    for role in ("outsider", *ROLES):  # refused roles first: an allowed POST changes things
        client.force_login(staff[role])
        got[role] = _call(client, name, kwargs(world), method, data).status_code
    assert got == {"outsider": 403} | dict(zip(ROLES, allowed, strict=True))


@pytest.mark.parametrize("name", ["plan_activate", "plan_hold", "plan_cancel"])
def test_front_desk_posting_a_plan_change_is_refused_and_changes_nothing(
    front_desk_client, clinician, name
):
    world = staff_world(clinician)
    for plan in (world.draft, world.plan):
        response = front_desk_client.post(reverse(name, args=[plan.pk]))
        assert response.status_code == 403
    assert Plan.objects.get(pk=world.draft.pk).status == Plan.Status.DRAFT
    assert Plan.objects.get(pk=world.plan.pk).status == Plan.Status.ACTIVE
    assert not world.draft.sessions.exists()


class _Unknown:
    """Stands in for the world: every record it hands out has an id that does not exist."""

    pk = UNKNOWN

    def __getattr__(self, name):
        return self


WITH_IDS = [row[:4] for row in ACCESS if row[1](_Unknown())]


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "data"), WITH_IDS, ids=[r[0] for r in WITH_IDS]
)
def test_unknown_ids_are_404_on_every_plan_page(manager_client, name, kwargs, method, data):
    response = _call(manager_client, name, kwargs(_Unknown()), method, data)
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["plan_report", "plan_report_pdf", "plan_sessions_csv"])
def test_another_patients_plan_under_this_patients_url_is_404(manager_client, clinician, name):
    world = staff_world(clinician)
    other = make_plan(user=clinician, courses=[course("cryotherapy", 1)], activate=False)
    url = reverse(name, kwargs={"pk": world.patient.pk, "plan_pk": other.pk})
    assert manager_client.get(url).status_code == 404


# --- Today -----------------------------------------------------------------------------------


@pytest.fixture
def due_today(clinician):
    patient = PatientFactory(first_name="Imogen", last_name="Thorne", record_number="CX-004242")
    plan = make_plan(
        user=clinician, patient=patient, courses=[course("cryotherapy", 2, every=28)], start=TODAY
    )
    return plan.sessions.order_by("scheduled_at").first()


def _due_table(response):
    html = response.content.decode()
    start = html.find('id="due-today"')
    return html[start : html.find("</table>", start)] if start != -1 else ""


def test_today_lists_the_sessions_due_with_a_move_link_for_front_desk(front_desk_client, due_today):
    due = _due_table(front_desk_client.get(reverse("home")))
    assert "Imogen Thorne" in due
    assert "CX-004242" in due
    assert "Cryotherapy" in due
    assert reverse("session_move", args=[due_today.pk]) in due
    assert reverse("session_log", args=[due_today.pk]) not in due


def test_today_offers_the_clinician_a_log_link(clinician_client, due_today):
    due = _due_table(clinician_client.get(reverse("home")))
    assert reverse("session_log", args=[due_today.pk]) in due


@pytest.mark.parametrize("role", ["front_desk_client", "clinician_client", "manager_client"])
def test_today_offers_registering_a_patient_to_every_role(request, role):
    client = request.getfixturevalue(role)
    html = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("patient_create")}">Register a patient</a>' in html


def test_another_day_can_be_looked_at_and_a_garbled_day_means_today(front_desk_client, due_today):
    response = front_desk_client.get(reverse("home"), {"day": "2026-02-02"})
    assert "Monday 2 February 2026" in response.content.decode()
    assert "session 2 of 2" in _due_table(response)
    response = front_desk_client.get(reverse("home"), {"day": "yesterday"})
    assert "Today, Monday 5 January 2026" in response.content.decode()
    assert "session 1 of 2" in _due_table(response)


def test_an_impossible_day_on_today_does_not_break_the_page(front_desk_client, due_today):
    front_desk_client.raise_request_exception = False
    response = front_desk_client.get(reverse("home"), {"day": "2026-02-30"})
    assert response.status_code == 200


def test_a_busy_day_pages_its_appointments_and_the_week_stays_whole(front_desk_client):
    """52 five-minute visits on the day: 50 on its first page, 2 on its second; the 3 of later
    in the week show on both (one query fetches both lists only when both fit)."""
    first = SessionFactory(scheduled_at=at(TODAY, 7), ends_at=at(TODAY, 7, 5))
    day = [first] + [
        SessionFactory(
            plan=first.plan,
            scheduled_at=at(TODAY, 7 + n // 12, n % 12 * 5),
            ends_at=at(TODAY, 7 + n // 12, n % 12 * 5 + 4),
        )
        for n in range(1, 52)
    ]
    later = [
        SessionFactory(plan=first.plan, scheduled_at=at(TODAY + timedelta(days=2), 9 + n))
        for n in range(3)
    ]

    def moves(html, sessions):
        return [s for s in sessions if reverse("session_move", args=[s.pk]) in html]

    page_one = front_desk_client.get(reverse("home"), {"clinician": ""})
    page_two = front_desk_client.get(reverse("home"), {"clinician": "", "due": "2"})

    assert moves(_due_table(page_one), day) == day[:50]
    assert "Page 1 of 2" in page_one.content.decode()
    assert moves(_due_table(page_two), day) == day[50:]
    assert moves(page_one.content.decode(), later) == later
    assert moves(page_two.content.decode(), later) == later


# --- the plan builder ------------------------------------------------------------------------


@pytest.fixture
def cheek():
    patient = PatientFactory(first_name="Rosalind", last_name="Achterberg")
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])


def _plan_form(client, patient, **changes):
    """The new-plan form as a clinician fills it in: form fields and course rows."""
    data = browser_form(client.get(reverse("plan_create", args=[patient.pk])))
    return data | {"title": "Rana protocol"} | changes


def _course_row(n, code, sessions, every, offset, label=""):
    return {
        f"courses-{n}-treatment": str(treatment(code).pk),
        f"courses-{n}-label": label,
        f"courses-{n}-sessions_count": str(sessions),
        f"courses-{n}-interval_days": str(every),
        f"courses-{n}-offset_days": str(offset),
    }


@pytest.fixture
def rana_rows(db):
    """Microneedling at weeks 0, 6, 12 and a glycolic peel at weeks 3, 9, 15 (Rana 2017)."""
    # The builder starts with one row: a second is one more row sent (TOTAL_FORMS).
    return (
        _course_row(0, "microneedling", 3, 42, 0)
        | _course_row(1, "chemical_peel", 3, 42, 21, "70% glycolic peel")
        | {"courses-TOTAL_FORMS": "2"}
    )


def _preview_rows(response):
    html = response.content.decode()
    start = html.find('id="calendar-preview"')
    assert start != -1, "no calendar preview on the page"
    table = html[start : html.find("</table>", start)]
    return re.findall(r'<tr><td class="text-nowrap">([^<]+)</td>\s*<td>([^<]+)</td>', table)


def test_the_preview_shows_the_dates_of_needling_at_weeks_0_6_12_and_peels_at_3_9_15(
    clinician_client, cheek, rana_rows
):
    data = _plan_form(clinician_client, cheek.patient, target_sites=[str(cheek.pk)])
    response = clinician_client.post(
        reverse("plan_create", args=[cheek.patient.pk]), data | rana_rows | {"action": "preview"}
    )
    assert response.status_code == 200
    assert _preview_rows(response) == [
        ("Mon 5 Jan 2026", "Microneedling 1 of 3"),
        ("Mon 26 Jan 2026", "70% glycolic peel 1 of 3"),
        ("Mon 16 Feb 2026", "Microneedling 2 of 3"),
        ("Mon 9 Mar 2026", "70% glycolic peel 2 of 3"),
        ("Mon 30 Mar 2026", "Microneedling 3 of 3"),
        ("Mon 20 Apr 2026", "70% glycolic peel 3 of 3"),
    ]
    assert not Plan.objects.exists()
    kept = browser_form(response)
    assert {k: kept[k] for k in rana_rows} == rana_rows


def test_saving_the_builder_creates_a_draft_plan_with_its_courses(
    clinician_client, cheek, rana_rows
):
    data = _plan_form(clinician_client, cheek.patient, target_sites=[str(cheek.pk)])
    response = clinician_client.post(
        reverse("plan_create", args=[cheek.patient.pk]), data | rana_rows | {"action": "save"}
    )
    plan = Plan.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("plan_detail", args=[plan.pk])
    assert (plan.status, plan.title, plan.start_date) == (Plan.Status.DRAFT, "Rana protocol", TODAY)
    assert list(plan.target_sites.all()) == [cheek]
    assert [
        (c.treatment.code, c.sessions_count, c.interval_days, c.offset_days, c.label)
        for c in plan.courses.order_by("order")
    ] == [
        ("microneedling", 3, 42, 0, ""),
        ("chemical_peel", 3, 42, 21, "70% glycolic peel"),
    ]
    assert not plan.sessions.exists()
    page = clinician_client.get(response.url).content.decode()
    assert "Plan saved as a draft. Check the calendar, then activate it." in page
    assert "Activate plan and book 6 sessions" in page


def _suggested(response):
    html = response.content.decode()
    start = html.index('id="suggest-heading"')
    return set(re.findall(r"<strong class=\"me-auto\">([^<]+)</strong>", html[start:]))


@pytest.mark.parametrize(
    ("scar", "suggested", "not_suggested"),
    [
        ("hypertrophic", {"Pulsed-dye laser", "Cryotherapy"}, {"Microneedling"}),
        ("keloid", {"Pulsed-dye laser", "Cryotherapy"}, {"Microneedling"}),
        ("rolling", {"Microneedling"}, {"Pulsed-dye laser", "Cryotherapy"}),
        ("icepick", {"Microneedling"}, {"Pulsed-dye laser", "Cryotherapy"}),
    ],
)
def test_suggestions_fit_the_scar_type_of_the_site(
    clinician_client, scar, suggested, not_suggested
):
    site = ScarSiteFactory(body_site="upper_back", scar_types=[scar])
    listed = _suggested(clinician_client.get(reverse("plan_create", args=[site.patient_id])))
    assert suggested <= listed
    assert listed & not_suggested == set()


def test_suggestions_follow_the_sites_chosen_for_the_plan(clinician_client, cheek, rana_rows):
    ScarSiteFactory(patient=cheek.patient, body_site="upper_back", scar_types=["hypertrophic"])
    data = _plan_form(clinician_client, cheek.patient, target_sites=[str(cheek.pk)])
    response = clinician_client.post(
        reverse("plan_create", args=[cheek.patient.pk]), data | rana_rows | {"action": "preview"}
    )
    listed = _suggested(response)
    assert "Microneedling" in listed
    assert "Pulsed-dye laser" not in listed


@pytest.mark.parametrize("sessions", ["0", "99", "-1", "three"])
def test_a_course_with_an_impossible_number_of_sessions_is_refused(
    clinician_client, cheek, rana_rows, sessions
):
    data = _plan_form(clinician_client, cheek.patient, target_sites=[str(cheek.pk)])
    rows = rana_rows | {"courses-0-sessions_count": sessions}
    response = clinician_client.post(
        reverse("plan_create", args=[cheek.patient.pk]), data | rows | {"action": "save"}
    )
    assert response.status_code == 200
    assert "Sessions must be a whole number from 1 to 52." in response.content.decode()
    assert not Plan.objects.exists()
    assert not Course.objects.exists()


def test_the_builder_offers_only_this_patients_open_scar_sites(clinician_client, cheek):
    archived = ScarSiteFactory(patient=cheek.patient, body_site="chin", scar_types=["rolling"])
    archived.archive()
    stranger = ScarSiteFactory(body_site="forehead", scar_types=["rolling"])
    html = clinician_client.get(reverse("plan_create", args=[cheek.patient.pk])).content.decode()
    offered = re.findall(r'name="target_sites" value="(\d+)"', html)
    assert offered == [str(cheek.pk)]
    assert archived.pk != stranger.pk


@pytest.mark.parametrize("whose", ["another patient", "archived"])
def test_a_forged_target_site_is_refused(clinician_client, cheek, rana_rows, whose):
    if whose == "archived":
        forged = ScarSiteFactory(patient=cheek.patient, body_site="chin", scar_types=["rolling"])
        forged.archive()
    else:
        forged = ScarSiteFactory(body_site="forehead", scar_types=["rolling"])
    data = _plan_form(clinician_client, cheek.patient, target_sites=[str(forged.pk)])
    response = clinician_client.post(
        reverse("plan_create", args=[cheek.patient.pk]), data | rana_rows | {"action": "save"}
    )
    assert response.status_code == 200
    assert f"Select a valid choice. {forged.pk} is not one of the available choices." in (
        response.content.decode()
    )
    assert not Plan.objects.exists()


# --- activation with a safety block ----------------------------------------------------------


@pytest.fixture
def blocked_draft(clinician, cheek):
    """A microneedling draft starting today while acne is active today."""
    plan = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[course("microneedling", 3, every=42)],
        start=TODAY,
        activate=False,
    )
    AcneActivityFactory(patient=cheek.patient, recorded_on=TODAY, level="moderate")
    return plan


BREAKOUT = ("Acne is recorded as moderate since 2026-01-05", "Microneedling needs clear skin")


def test_activating_into_a_breakout_without_reasons_shows_the_block_and_saves_nothing(
    clinician_client, blocked_draft
):
    response = clinician_client.post(reverse("plan_activate", args=[blocked_draft.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Blocked by a safety rule. Nothing was saved." in html
    assert all(part in html for part in BREAKOUT)
    assert "Override reason for" in html
    blocked_draft.refresh_from_db()
    assert blocked_draft.status == Plan.Status.DRAFT
    assert not blocked_draft.sessions.exists()
    assert not SafetyOverride.objects.exists()


def _override_fields(data):
    return [name for name in data if name.startswith("override-")]


def test_a_clinicians_written_reason_activates_the_plan_and_is_stored_for_each_visit(
    clinician_client, clinician, blocked_draft
):
    url = reverse("plan_activate", args=[blocked_draft.pk])
    data = browser_form(clinician_client.post(url), action=url)
    assert _override_fields(data)
    response = clinician_client.post(url, data | dict.fromkeys(_override_fields(data), REASON))
    assert response.status_code == 302
    blocked_draft.refresh_from_db()
    assert blocked_draft.status == Plan.Status.ACTIVE
    assert blocked_draft.sessions.count() == 3
    # every visit of the course falls in the breakout: each keeps who, why and which rule
    assert sorted(
        (o.session.scheduled_on, o.rule, o.reason, o.overridden_by)
        for o in SafetyOverride.objects.all()
    ) == [
        (day, "active_breakout", REASON, clinician)
        for day in (date(2026, 1, 5), date(2026, 2, 16), date(2026, 3, 30))
    ]
    page = clinician_client.get(response.url).content.decode()
    assert "Plan activated: 3 sessions are on the calendar." in page


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_blank_reason_activates_nothing(clinician_client, blocked_draft, reason):
    url = reverse("plan_activate", args=[blocked_draft.pk])
    data = browser_form(clinician_client.post(url), action=url)
    response = clinician_client.post(url, data | dict.fromkeys(_override_fields(data), reason))
    assert response.status_code == 200
    assert "Blocked by a safety rule. Nothing was saved." in response.content.decode()
    assert Plan.objects.get(pk=blocked_draft.pk).status == Plan.Status.DRAFT
    assert not SafetyOverride.objects.exists()


def test_front_desk_sees_the_block_on_a_draft_but_no_way_to_override_it(
    front_desk_client, blocked_draft
):
    html = front_desk_client.get(reverse("plan_detail", args=[blocked_draft.pk])).content.decode()
    # Front desk sees that a clinician must review it, never the rule (issue 10, point 4).
    assert "Clinician review" in html
    assert "Active breakout" not in html
    assert "override-" not in html
    assert reverse("plan_activate", args=[blocked_draft.pk]) not in html


# --- hold, resume, cancel --------------------------------------------------------------------


@pytest.fixture
def active_plan(clinician, cheek):
    return make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 3, every=42)])


def _statuses(plan):
    plan.refresh_from_db()
    return plan.status, [(s.scheduled_on, s.status) for s in plan.sessions.order_by("pk")]


def test_holding_a_plan_freezes_its_sessions(clinician_client, active_plan):
    response = clinician_client.post(reverse("plan_hold", args=[active_plan.pk]), follow=True)
    assert "Plan on hold: its future sessions are frozen." in response.content.decode()
    assert _statuses(active_plan) == (
        Plan.Status.ON_HOLD,
        [
            (date(2026, 1, 5), Session.Status.ON_HOLD),
            (date(2026, 2, 16), Session.Status.ON_HOLD),
            (date(2026, 3, 30), Session.Status.ON_HOLD),
        ],
    )


def test_resuming_restarts_the_held_sessions_on_the_chosen_date(clinician_client, active_plan):
    clinician_client.post(reverse("plan_hold", args=[active_plan.pk]))
    response = clinician_client.post(
        reverse("plan_resume", args=[active_plan.pk]), {"restart_on": "2026-03-02"}, follow=True
    )
    assert "Plan resumed from 02 Mar 2026." in response.content.decode()
    assert _statuses(active_plan) == (
        Plan.Status.ACTIVE,
        [
            (date(2026, 3, 2), Session.Status.SCHEDULED),
            (date(2026, 4, 13), Session.Status.SCHEDULED),
            (date(2026, 5, 25), Session.Status.SCHEDULED),
        ],
    )


def test_resuming_without_a_date_asks_for_one_and_stays_on_hold(clinician_client, active_plan):
    clinician_client.post(reverse("plan_hold", args=[active_plan.pk]))
    response = clinician_client.post(
        reverse("plan_resume", args=[active_plan.pk]), {"restart_on": ""}, follow=True
    )
    assert (
        "Restart on: give a date from 01/01/1900 to 31/12/2100 (YYYY-MM-DD)."
        in response.content.decode()
    )
    assert _statuses(active_plan)[0] == Plan.Status.ON_HOLD


def test_resuming_on_an_impossible_date_asks_for_a_real_one(clinician_client, active_plan):
    clinician_client.post(reverse("plan_hold", args=[active_plan.pk]))
    clinician_client.raise_request_exception = False
    response = clinician_client.post(
        reverse("plan_resume", args=[active_plan.pk]), {"restart_on": "2026-02-30"}
    )
    assert response.status_code == 302
    assert _statuses(active_plan)[0] == Plan.Status.ON_HOLD


def test_cancelling_a_plan_cancels_its_future_sessions(clinician_client, active_plan):
    response = clinician_client.post(reverse("plan_cancel", args=[active_plan.pk]), follow=True)
    assert "Plan cancelled: future sessions are cancelled." in response.content.decode()
    assert _statuses(active_plan) == (
        Plan.Status.CANCELLED,
        [
            (date(2026, 1, 5), Session.Status.CANCELLED),
            (date(2026, 2, 16), Session.Status.CANCELLED),
            (date(2026, 3, 30), Session.Status.CANCELLED),
        ],
    )


def test_holding_a_cancelled_plan_is_refused_with_a_message(clinician_client, active_plan):
    clinician_client.post(reverse("plan_cancel", args=[active_plan.pk]))
    response = clinician_client.post(reverse("plan_hold", args=[active_plan.pk]), follow=True)
    assert "A plan that is cancelled cannot become on hold." in response.content.decode()
    assert _statuses(active_plan)[0] == Plan.Status.CANCELLED


# --- the plan page and booking ---------------------------------------------------------------


def test_internal_notes_are_shown_to_clinicians_only(client, front_desk, clinician, cheek):
    plan = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[course("cryotherapy", 1)],
        internal_notes="Anxious about needles; ask about isotretinoin.",
    )
    url = reverse("plan_detail", args=[plan.pk])
    client.force_login(front_desk)
    assert "Anxious about needles" not in client.get(url).content.decode()
    client.force_login(clinician)
    assert "Anxious about needles" in client.get(url).content.decode()


def test_front_desk_books_an_extra_session_of_a_course(front_desk_client, active_plan):
    url = reverse("session_book", args=[active_plan.pk])
    needling = active_plan.courses.get()
    data = browser_form(front_desk_client.get(url))
    response = front_desk_client.post(
        url, data | {"course": str(needling.pk), "date": "2026-05-11", "time": "10:30"}
    )
    assert response.status_code == 302
    assert response.url == reverse("plan_detail", args=[active_plan.pk])
    booked = active_plan.sessions.order_by("scheduled_at").last()
    assert booked.scheduled_at == at(date(2026, 5, 11), 10, 30)
    assert [str(row) for row in booked.treatments.all()] == ["Microneedling 4 of 4"]


def test_front_desk_cannot_book_into_a_breakout(front_desk_client, active_plan, cheek):
    AcneActivityFactory(patient=cheek.patient, recorded_on=date(2026, 5, 1), level="severe")
    url = reverse("session_book", args=[active_plan.pk])
    data = browser_form(front_desk_client.get(url)) | {
        "course": str(active_plan.courses.get().pk),
        "date": "2026-05-11",
        "time": "10:30",
    }
    response = front_desk_client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Only a clinician can override a block" in html
    assert "override-" not in html
    assert active_plan.sessions.count() == 3
    assert timezone.localdate() == TODAY
