"""Staff pages for sessions: moving, logging (the critical path), the session record, adverse
events and clinical photos, for each role."""

import re
from datetime import date

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from patients.models import Consent
from plans import services
from plans.models import AdverseEvent, Assessment, SafetyOverride, Session, SessionPhoto
from tests.factories import (
    NEEDLING_OK,
    TODAY,
    AcneActivityFactory,
    AdverseEventFactory,
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    at,
    browser_form,
    course,
    frozen,
    make_plan,
    png_upload,
    staff_world,
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
    ("session_detail", lambda w: {"pk": w.done.pk}, "get", None, (200, 200, 200)),
    ("session_log", lambda w: {"pk": w.session.pk}, "get", None, (403, 200, 200)),
    ("session_move", lambda w: {"pk": w.session.pk}, "get", None, (200, 200, 200)),
    ("session_missed", lambda w: {"pk": w.session.pk}, "post", {}, (302, 302, 302)),
    ("session_cancel", lambda w: {"pk": w.session.pk}, "post", {}, (302, 302, 302)),
    ("session_live_findings", lambda w: {"pk": w.session.pk}, "post", {}, (403, 200, 200)),
    # The clinician who logged it (the world's clinician) or a manager amends a session.
    ("session_amend", lambda w: {"pk": w.done.pk}, "get", None, (403, 200, 200)),
    # The appointment book: every role runs the diary; an outsider gets nothing.
    ("diary_day", lambda w: {}, "get", None, (200, 200, 200)),
    ("diary_week", lambda w: {}, "get", None, (200, 200, 200)),
    ("appointment_new", lambda w: {}, "get", None, (200, 200, 200)),
    ("free_slots", lambda w: {}, "get", None, (200, 200, 200)),
    (
        "session_status",
        lambda w: {"pk": w.session.pk},
        "post",
        {"status": "missed"},
        (302, 302, 302),
    ),
    ("adverse_event_list", lambda w: {}, "get", None, (403, 200, 200)),
    (
        "adverse_event_resolve",
        lambda w: {"pk": w.event.pk},
        "post",
        {"resolved_on": "2026-01-05"},
        (403, 302, 302),
    ),
    ("photo", lambda w: {"pk": w.photo.pk}, "get", None, (403, 200, 200)),
]
ACCESS_IDS = [row[0] for row in ACCESS]


def _call(client, name, kwargs, method, data):
    response = getattr(client, method)(reverse(name, kwargs=kwargs), data or {})
    if response.streaming:
        # Reading a file response to the end closes the file the way a server would;
        # calling close() again would fire request_finished and drop the test's connection.
        b"".join(response.streaming_content)
    return response


@pytest.mark.parametrize(("name", "kwargs", "method", "data", "allowed"), ACCESS, ids=ACCESS_IDS)
def test_each_role_gets_exactly_the_session_pages_its_permissions_allow(
    client, staff, name, kwargs, method, data, allowed
):
    world = staff_world(staff["clinician"])
    got = {}
    for role in ("outsider", *ROLES):  # refused roles first: an allowed POST changes things
        client.force_login(staff[role])
        got[role] = _call(client, name, kwargs(world), method, data).status_code
    assert got == {"outsider": 403} | dict(zip(ROLES, allowed, strict=True))


WITHOUT_IDS = {"adverse_event_list", "diary_day", "diary_week", "appointment_new", "free_slots"}
WITH_IDS = [row[:4] for row in ACCESS if row[0] not in WITHOUT_IDS]


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "data"), WITH_IDS, ids=[r[0] for r in WITH_IDS]
)
def test_unknown_ids_are_404_on_every_session_page(manager_client, name, kwargs, method, data):
    assert _call(manager_client, name, {"pk": UNKNOWN}, method, data).status_code == 404


def test_front_desk_cannot_log_a_session_by_posting(front_desk_client, clinician):
    world = staff_world(clinician)
    response = front_desk_client.post(reverse("session_log", args=[world.session.pk]), {})
    assert response.status_code == 403
    world.session.refresh_from_db()
    assert world.session.status == Session.Status.SCHEDULED


# --- the session record: nothing clinical for front desk -------------------------------------

CLINICAL_ON_SESSION = [
    "Tolerated well; pinpoint bleeding only.",  # the notes
    "Clinical notes",
    "needle_depth",  # logged parameters
    "Dermapen 4",
    "Scores",
    'class="score"',
    "Goodman &amp; Baron qualitative grade",
    "Erythema",
    "Photos",
    "/photos/",
]


def test_front_desk_sees_a_session_without_notes_parameters_scores_or_photos(
    client, front_desk, clinician
):
    world = staff_world(clinician)
    url = reverse("session_detail", args=[world.done.pk])
    client.force_login(front_desk)
    html = client.get(url).content.decode()
    assert "Microneedling" in html
    assert "Completed" in html
    assert [text for text in CLINICAL_ON_SESSION if text in html] == []
    client.force_login(clinician)
    html = client.get(url).content.decode()
    assert [text for text in CLINICAL_ON_SESSION if text not in html] == []


# --- moving a session ------------------------------------------------------------------------


@pytest.fixture
def cheek():
    patient = PatientFactory(first_name="Rosalind", last_name="Achterberg")
    ConsentFactory(patient=patient, kind="clinical_photography", signed_on=date(2025, 6, 1))
    return ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])


@pytest.fixture
def needling(clinician, cheek):
    """Microneedling on 5 Jan, 16 Feb and 30 Mar 2026 at 09:00."""
    return make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 3, every=42)])


def _sessions(plan):
    return list(plan.sessions.order_by("pk"))


def _times(plan):
    return [s.scheduled_at for s in _sessions(plan)]


ORIGINAL = [at(date(2026, 1, 5)), at(date(2026, 2, 16)), at(date(2026, 3, 30))]


def _move(client, session, **changes):
    url = reverse("session_move", args=[session.pk])
    return client.post(url, browser_form(client.get(url)) | changes)


def test_moving_a_session_changes_only_that_session(front_desk_client, needling):
    first = _sessions(needling)[0]
    response = _move(front_desk_client, first, date="2026-01-07", time="10:30")
    assert response.status_code == 302
    assert response.url == reverse("plan_detail", args=[needling.pk])
    assert _times(needling) == [at(date(2026, 1, 7), 10, 30), *ORIGINAL[1:]]
    assert "Session moved." in front_desk_client.get(response.url).content.decode()


def test_shift_following_moves_the_later_sessions_of_the_course_too(front_desk_client, needling):
    first = _sessions(needling)[0]
    response = _move(front_desk_client, first, date="2026-01-07", shift_following="on")
    assert response.status_code == 302
    assert _times(needling) == [
        at(date(2026, 1, 7)),
        at(date(2026, 2, 18)),
        at(date(2026, 4, 1)),
    ]


@pytest.fixture
def breakout_from_6_jan(cheek):
    return AcneActivityFactory(patient=cheek.patient, recorded_on=date(2026, 1, 6), level="severe")


def test_front_desk_moving_into_a_breakout_is_told_only_a_clinician_can_override(
    front_desk_client, needling, breakout_from_6_jan
):
    response = _move(front_desk_client, _sessions(needling)[0], date="2026-01-07")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Only a clinician can override" in html
    # Front desk is told to get a clinician, never why (issue 10, point 4).
    assert "Clinician review" in html
    assert "Acne is recorded as severe" not in html
    assert "override-" not in html
    assert _times(needling) == ORIGINAL


def test_front_desk_cannot_override_by_sending_a_reason_anyway(
    front_desk_client, needling, breakout_from_6_jan
):
    response = _move(
        front_desk_client,
        _sessions(needling)[0],
        date="2026-01-07",
        **{"override-rule:active_breakout": REASON},
    )
    assert response.status_code == 200
    assert "Only a clinician can override a blocking safety rule." in response.content.decode()
    assert _times(needling) == ORIGINAL
    assert not SafetyOverride.objects.exists()


def test_a_clinician_moves_into_a_breakout_with_a_written_reason(
    clinician_client, clinician, needling, breakout_from_6_jan
):
    first = _sessions(needling)[0]
    url = reverse("session_move", args=[first.pk])
    blocked = clinician_client.post(
        url, browser_form(clinician_client.get(url)) | {"date": "2026-01-07"}
    )
    assert blocked.status_code == 200
    assert _times(needling) == ORIGINAL
    data = browser_form(blocked)
    reasons = {name: REASON for name in data if name.startswith("override-")}
    assert reasons
    response = clinician_client.post(url, data | reasons)
    assert response.status_code == 302
    assert _times(needling) == [at(date(2026, 1, 7)), *ORIGINAL[1:]]
    override = SafetyOverride.objects.get()
    assert (override.session, override.rule, override.reason, override.overridden_by) == (
        first,
        "active_breakout",
        REASON,
        clinician,
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"date": "2026-13-45"}, "Enter a valid date."),
        ({"date": "next tuesday"}, "Enter a valid date."),
        ({"date": ""}, "This field is required."),
        ({"time": "25:99"}, "Enter a valid time."),
    ],
)
def test_a_bad_date_or_time_is_a_field_error_and_moves_nothing(
    front_desk_client, needling, changes, error
):
    response = _move(front_desk_client, _sessions(needling)[0], **changes)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert _times(needling) == ORIGINAL


def test_a_logged_session_cannot_be_moved(clinician_client, clinician):
    world = staff_world(clinician)
    response = clinician_client.get(reverse("session_move", args=[world.done.pk]), follow=True)
    assert "Only a scheduled session can be moved." in response.content.decode()


# --- logging a session -----------------------------------------------------------------------


def _log_url(session):
    """The log page; for a session booked for a later day, as after confirming it is done
    today (the confirmation itself is tested in test_session_records.py)."""
    url = reverse("session_log", args=[session.pk])
    if session.scheduled_on > timezone.localdate():
        url += "?performed_today=1"
    return url


def _log_form(client, session):
    return browser_form(client.get(_log_url(session)), form_id="session-log")


def _log_typed(session, site):
    """What a clinician types for a microneedling session and its one scar site."""
    row = session.treatments.get()
    s = f"s{site.pk}"
    return {
        f"t{row.pk}-device": "Dermapen 4",
        f"t{row.pk}-needle_depth": "1.5",
        f"t{row.pk}-passes": "3",
        f"{s}-gb_qualitative-grade": "3",
        f"{s}-gais_clinician": "2",
        f"{s}-gais_patient": "3",
        f"{s}-pain": "4",
        f"{s}-photo_caption": "Left cheek, flash",
        "ae-0-kind": "erythema",
        "ae-0-severity": "mild",
        "ae-0-scar_site": str(site.pk),
        "ae-0-notes": "Settled by evening",
        "notes": "Tolerated well.",
    }


def test_logging_a_session_completes_it_with_scores_an_adverse_event_and_a_photo(
    clinician_client, clinician, needling, cheek
):
    first = _sessions(needling)[0]
    typed = _log_typed(first, cheek)
    photo = {f"s{cheek.pk}-photo": png_upload("cheek.png")}
    response = clinician_client.post(
        _log_url(first), _log_form(clinician_client, first) | typed | photo
    )
    assert response.status_code == 302
    assert response.url == reverse("patient_detail", args=[cheek.patient_id])

    first.refresh_from_db()
    assert (first.status, first.notes, first.clinician) == (
        Session.Status.COMPLETED,
        "Tolerated well.",
        clinician,
    )
    assert first.treatments.get().parameters == NEEDLING_OK
    assert sorted(first.assessments.values_list("instrument", "total", "assessed_on")) == [
        ("gais_clinician", 2, TODAY),
        ("gais_patient", 3, TODAY),
        ("gb_qualitative", 3, TODAY),
        ("pain", 4, TODAY),
    ]
    event = AdverseEvent.objects.get()
    assert (event.session, event.kind, event.severity, event.scar_site, event.onset_on) == (
        first,
        "erythema",
        "mild",
        cheek,
        TODAY,
    )
    saved = SessionPhoto.objects.get()
    assert (saved.session, saved.scar_site, saved.caption, saved.taken_on) == (
        first,
        cheek,
        "Left cheek, flash",
        TODAY,
    )
    page = clinician_client.get(response.url).content.decode()
    assert "Session logged for Rosalind Achterberg." in page
    assert '<span class="plan-progress">1 of 3 done</span>' in page


def test_an_out_of_range_parameter_is_named_with_its_range_and_everything_typed_is_kept(
    clinician_client, needling, cheek
):
    first = _sessions(needling)[0]
    typed = _log_typed(first, cheek) | {f"t{first.treatments.get().pk}-needle_depth": "5"}
    photo = {f"s{cheek.pk}-photo": png_upload("cheek.png")}
    response = clinician_client.post(
        _log_url(first), _log_form(clinician_client, first) | typed | photo
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Needle depth must be from 0.25 to 3 mm." in html
    kept = browser_form(response, form_id="session-log")
    assert {name: kept[name] for name in typed} == typed
    assert "choose the photo again" in html
    assert "Choose “cheek.png” again." in html
    first.refresh_from_db()
    assert first.status == Session.Status.SCHEDULED
    assert not Assessment.objects.exists()
    assert not AdverseEvent.objects.exists()
    assert not SessionPhoto.objects.exists()


def test_a_missing_required_parameter_is_named(clinician_client, needling, cheek):
    first = _sessions(needling)[0]
    typed = _log_typed(first, cheek) | {f"t{first.treatments.get().pk}-device": ""}
    response = clinician_client.post(_log_url(first), _log_form(clinician_client, first) | typed)
    assert "Device is required." in response.content.decode()
    assert Session.objects.get(pk=first.pk).status == Session.Status.SCHEDULED


@pytest.fixture
def first_logged(clinician, needling):
    """The first session done with NEEDLING_OK; the second is next."""
    first, second, _ = _sessions(needling)
    services.session_complete(
        session=first,
        user=clinician,
        parameters={row.pk: NEEDLING_OK for row in first.treatments.all()},
    )
    return second


def _param_wrappers(html):
    """{parameter field name: CSS classes of its wrapper} on the log form."""
    return {
        name: classes
        for classes, name in re.findall(
            r'<div class="(col-sm-6 col-lg-3 param[^"]*)"[^>]*>.*?name="([^"]+)"', html, re.S
        )
    }


def test_the_log_form_carries_forward_last_sessions_parameters(clinician_client, first_logged):
    response = clinician_client.get(_log_url(first_logged))
    row = first_logged.treatments.get()
    form = browser_form(response, form_id="session-log")
    assert {k: form[f"t{row.pk}-{k}"] for k in NEEDLING_OK} == {
        "device": "Dermapen 4",
        "needle_depth": "1.5",
        "passes": "3",
    }
    html = response.content.decode()
    assert "Last time: 1.5" in html
    assert "param-changed" not in " ".join(_param_wrappers(html).values())


def test_a_value_changed_from_last_time_is_highlighted(clinician_client, first_logged, cheek):
    row = first_logged.treatments.get()
    typed = _log_typed(first_logged, cheek) | {
        f"t{row.pk}-needle_depth": "2",
        f"s{cheek.pk}-pain": "11",  # keeps the form on screen
    }
    response = clinician_client.post(
        _log_url(first_logged), _log_form(clinician_client, first_logged) | typed
    )
    html = response.content.decode()
    assert "Pain must be a whole number from 0 to 10." in html
    wrappers = _param_wrappers(html)
    assert "param-changed" in wrappers[f"t{row.pk}-needle_depth"]
    assert "param-changed" not in wrappers[f"t{row.pk}-device"]
    assert "param-changed" not in wrappers[f"t{row.pk}-passes"]


@pytest.fixture
def breakout_today(cheek, needling):
    """Acne recorded after the plan was booked: the first session is now blocked."""
    return AcneActivityFactory(patient=cheek.patient, recorded_on=TODAY, level="moderate")


def test_a_safety_block_is_shown_before_anything_is_typed(
    clinician_client, needling, breakout_today
):
    html = clinician_client.get(_log_url(_sessions(needling)[0])).content.decode()
    block = html.index("Acne is recorded as moderate")
    assert "Blocked: Active breakout" in html
    assert block < html.index('name="t')  # above the first parameter
    assert "override-" in html


def test_completing_a_blocked_session_without_a_reason_is_refused(
    clinician_client, needling, cheek, breakout_today
):
    first = _sessions(needling)[0]
    data = _log_form(clinician_client, first) | _log_typed(first, cheek)
    response = clinician_client.post(_log_url(first), data)
    assert response.status_code == 200
    assert "Blocked by a safety rule. Nothing was saved." in response.content.decode()
    assert Session.objects.get(pk=first.pk).status == Session.Status.SCHEDULED
    assert not Assessment.objects.exists()


def test_completing_a_blocked_session_with_a_reason_stores_it(
    clinician_client, clinician, needling, cheek, breakout_today
):
    first = _sessions(needling)[0]
    data = _log_form(clinician_client, first) | _log_typed(first, cheek)
    reasons = {name: REASON for name in data if name.startswith("override-")}
    response = clinician_client.post(_log_url(first), data | reasons)
    assert response.status_code == 302
    assert Session.objects.get(pk=first.pk).status == Session.Status.COMPLETED
    override = SafetyOverride.objects.get()
    assert (override.session, override.reason, override.overridden_by) == (
        first,
        REASON,
        clinician,
    )


def test_a_logged_sessions_log_page_leads_to_its_record(clinician_client, clinician):
    world = staff_world(clinician)
    response = clinician_client.get(_log_url(world.done))
    assert response.status_code == 302
    assert response.url == reverse("session_detail", args=[world.done.pk])
    assert "This session is completed." in clinician_client.get(response.url).content.decode()


# --- adverse events --------------------------------------------------------------------------


@pytest.fixture
def events(clinician, needling):
    """Thirty unresolved adverse events (onset 1-30 Dec 2025) and one resolved."""
    first = _sessions(needling)[0]
    made = [
        AdverseEventFactory(
            session=first, onset_on=date(2025, 12, day), notes=f"event {day:02d}", kind="swelling"
        )
        for day in range(1, 31)
    ]
    AdverseEventFactory(
        session=first,
        onset_on=date(2025, 12, 1),
        resolved_on=date(2025, 12, 2),
        kind="blistering",
    )
    return made


def _events_listed(response):
    return re.findall(r"event (\d\d)</div>", response.content.decode())


def test_the_adverse_event_list_shows_unresolved_ones_oldest_first_25_a_page(
    clinician_client, events
):
    url = reverse("adverse_event_list")
    first = clinician_client.get(url)
    html = first.content.decode()
    assert "30 unresolved, oldest first." in html
    assert "Blistering" not in html
    assert _events_listed(first) == [f"{day:02d}" for day in range(1, 26)]
    second = clinician_client.get(url, {"page": "2"})
    assert _events_listed(second) == [f"{day:02d}" for day in range(26, 31)]
    assert clinician_client.get(url, {"page": "abc"}).status_code == 200


def test_resolving_before_the_onset_is_refused_with_a_message(clinician_client, events):
    event = events[9]  # onset 10 Dec 2025
    response = clinician_client.post(
        reverse("adverse_event_resolve", args=[event.pk]),
        {"resolved_on": "2025-12-09"},
        follow=True,
    )
    assert "Resolved on must be on or after the onset (10 Dec 2025)." in response.content.decode()
    event.refresh_from_db()
    assert event.resolved_on is None


@pytest.mark.parametrize("typed", ["", "soon", "2025-02-30"])
def test_resolving_without_a_real_date_asks_for_one(clinician_client, events, typed):
    event = events[0]
    response = clinician_client.post(
        reverse("adverse_event_resolve", args=[event.pk]), {"resolved_on": typed}, follow=True
    )
    assert "Resolved on: give a date (YYYY-MM-DD)." in response.content.decode()
    event.refresh_from_db()
    assert event.resolved_on is None


def test_resolving_an_event_takes_it_off_the_list(clinician_client, events):
    event = events[0]
    response = clinician_client.post(
        reverse("adverse_event_resolve", args=[event.pk]),
        {"resolved_on": "2025-12-03", "next": "/adverse-events/?page=1"},
    )
    assert response.status_code == 302
    assert response.url == "/adverse-events/?page=1"
    event.refresh_from_db()
    assert event.resolved_on == date(2025, 12, 3)
    page = clinician_client.get(response.url)
    assert "Swelling (Mild, 2025-12-01) for Rosalind Achterberg marked resolved." in (
        page.content.decode()
    )
    assert "01" not in _events_listed(page)


def test_resolving_never_redirects_off_site(clinician_client, events):
    response = clinician_client.post(
        reverse("adverse_event_resolve", args=[events[0].pk]),
        {"resolved_on": "2025-12-03", "next": "https://evil.example/"},
    )
    assert response.url == reverse("adverse_event_list")


# --- photos ----------------------------------------------------------------------------------


def test_a_photo_is_served_privately_to_a_clinician(clinician_client, clinician):
    world = staff_world(clinician)
    response = clinician_client.get(reverse("photo", args=[world.photo.pk]))
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    assert body.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("kind", "signed", "withdrawn", "status"),
    [
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 2), None, 200),
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 5), None, 200),
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 2), date(2026, 1, 6), 200),
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 6), None, 403),  # signed after
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 2), date(2026, 1, 4), 403),
        (Consent.Kind.CLINICAL_PHOTOGRAPHY, date(2026, 1, 2), date(2026, 1, 5), 403),
        (Consent.Kind.MARKETING_PHOTOGRAPHY, date(2026, 1, 2), None, 403),
        (Consent.Kind.TREATMENT, date(2026, 1, 2), None, 403),
    ],
)
def test_a_photo_needs_clinical_photography_consent_in_force_on_the_day_taken(
    clinician_client, clinician, kind, signed, withdrawn, status
):
    world = staff_world(clinician)  # photo taken 5 Jan 2026
    world.consent.kind, world.consent.signed_on, world.consent.withdrawn_on = (
        kind,
        signed,
        withdrawn,
    )
    world.consent.save()
    response = clinician_client.get(reverse("photo", args=[world.photo.pk]))
    if response.streaming:
        b"".join(response.streaming_content)
    assert response.status_code == status


def test_an_anonymous_photo_request_is_sent_to_log_in(client, clinician):
    world = staff_world(clinician)
    url = reverse("photo", args=[world.photo.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_nothing_under_media_url_is_served(clinician_client, clinician):
    world = staff_world(clinician)
    for prefix in (settings.MEDIA_URL, "/media/"):
        response = clinician_client.get(prefix + world.photo.image.name)
        assert response.status_code == 404
        assert b"\x89PNG" not in response.content
