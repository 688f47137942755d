"""The session log on one screen (issue 14): per scar site the baseline, the last score and
the last photo beside the entry, only the instruments the plan tracks shown (the others under
"More scores"), few-valued items as choices, optional adverse event rows, an error summary,
and the query budget for a patient with many sessions."""

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from patients.models import Consent, RecordAccess
from plans import services
from plans.models import AdverseEvent, Assessment, Session, SessionPhoto
from plans.views.sessions import site_histories
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    baseline,
    browser_form,
    course,
    frozen,
    items_for_total,
    log_session,
    make_plan,
    png_upload,
)

pytestmark = pytest.mark.django_db

DAY = date(2026, 6, 1)  # "today" in these tests: a Monday
SITES = ("left_cheek", "right_cheek", "temples")


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen(DAY):
        yield


def atrophic_patient(clinician, *, done, photos=True):
    """Three atrophic sites with baselines (grade and ECCA); a fortnightly microneedling
    plan whose first `done` sessions are logged with a grade per site (and a photo each);
    returns (the next session, sites)."""
    patient = PatientFactory(first_name="Ines", last_name="Valdemar")
    if photos:
        ConsentFactory(
            patient=patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2025, 1, 2)
        )
    sites = [
        ScarSiteFactory(patient=patient, body_site=code, scar_types=["rolling", "boxcar"])
        for code in SITES
    ]
    start = DAY - timedelta(days=14 * done)
    for site in sites:
        baseline(site, "gb_qualitative", 4, user=clinician, on=start - timedelta(days=3))
        baseline(site, "ecca", 0, user=clinician, on=start - timedelta(days=3))
    plan = make_plan(
        user=clinician,
        sites=sites,
        courses=[course("microneedling", done + 2, every=14)],
        start=start,
    )
    visits = list(plan.sessions.order_by("scheduled_at"))
    for n, visit in enumerate(visits[:done]):
        log_session(
            visit,
            clinician,
            scores=[(site, "gb_qualitative", max(1, 3 - n)) for site in sites],
            photos=[services.PhotoInput(site, png_upload(f"{site.pk}-{n}.png")) for site in sites]
            if photos
            else [],
        )
    return visits[done], sites


def log_url(session):
    url = reverse("session_log", args=[session.pk])
    if session.scheduled_on > timezone.localdate():
        url += "?performed_today=1"
    return url


def site_block(html, site):
    """The HTML of one site's fieldset on the log page."""
    start = html.index(f'id="outcome-{site.pk}"')
    following = html.find('site-block" id="outcome-', start)
    return html[start : following if following > 0 else html.index('id="adverse-events"')]


# --- what the plan tracks --------------------------------------------------------------------


def test_before_the_plans_first_scores_the_baseline_instruments_are_tracked(clinician):
    session, sites = atrophic_patient(clinician, done=0)
    history = site_histories(session, sites)[sites[0].pk]
    assert history.tracked == ["gb_qualitative", "ecca"]
    assert "gb_qualitative" not in history.others and "ecca" not in history.others
    assert set(history.others) == {"gb_quantitative", "vss", "posas_observer", "posas_patient"}


def test_once_the_plan_scored_a_site_its_instruments_are_the_tracked_ones(clinician):
    session, sites = atrophic_patient(clinician, done=2)
    history = site_histories(session, sites)[sites[0].pk]
    assert history.tracked == ["gb_qualitative"]
    assert history.others[0] == "ecca"  # used for the site before: first under More scores
    assert history.baseline["gb_qualitative"]["total"] == 4
    assert history.last["gb_qualitative"]["total"] == 2  # the second session's grade
    assert history.last["gb_qualitative"]["assessed_on"] == DAY - timedelta(days=14)


def test_a_site_never_scored_gets_its_scar_types_default(clinician):
    patient = PatientFactory()
    raised = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["keloid"])
    flat = ScarSiteFactory(patient=patient, body_site="chin", scar_types=["rolling"])
    plan = make_plan(
        user=clinician, sites=[raised, flat], courses=[course("cryotherapy", 2, every=28)]
    )
    histories = site_histories(plan.sessions.first(), [raised, flat])
    assert histories[raised.pk].tracked == ["vss"]
    assert histories[flat.pk].tracked == ["gb_qualitative"]
    assert histories[raised.pk].baseline == {} and histories[raised.pk].photo is None


def test_the_log_page_shows_tracked_instruments_open_and_the_others_under_more_scores(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=2)
    html = clinician_client.get(log_url(session)).content.decode()
    block = site_block(html, sites[0])
    more = block.index('<details class="more-scores"')
    assert block.index(f'id="s{sites[0].pk}-gb_qualitative-scores"') < more
    assert more < block.index(f'id="s{sites[0].pk}-ecca-scores"')
    assert more < block.index(f'id="s{sites[0].pk}-vss-scores"')
    assert '<details class="more-scores" open' not in block
    # Per-session ratings keep their place, outside "More scores".
    assert block.index(f'name="s{sites[0].pk}-gais_clinician"') < more
    assert block.index(f'name="s{sites[0].pk}-pain"') < more


def test_a_score_under_more_scores_is_saved_too(clinician_client, clinician):
    session, sites = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    ecca = {f"s{sites[0].pk}-ecca-{code}": "1" for code in items_for_total("ecca", 0)}
    response = clinician_client.post(log_url(session), form | ecca)
    assert response.status_code == 302
    saved = Assessment.objects.get(session=session, instrument="ecca")
    assert (saved.scar_site, saved.total) == (sites[0], 15 + 20 + 25 + 30 + 40 + 50)


def test_more_scores_opens_when_one_of_its_instruments_was_typed(clinician_client, clinician):
    session, sites = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    typed = {f"s{sites[0].pk}-ecca-v_atrophic": "2"}  # one item of six: not saved
    html = clinician_client.post(log_url(session), form | typed).content.decode()
    assert '<details class="more-scores" open' in site_block(html, sites[0])
    assert '<details class="more-scores" open' not in site_block(html, sites[1])


# --- baseline, last score and last photo beside the entry -------------------------------------


def test_each_tracked_instrument_shows_its_baseline_and_last_score_with_dates(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=2)
    html = clinician_client.get(log_url(session)).content.decode()
    block = site_block(html, sites[1])
    grade = block[block.index("Goodman &amp; Baron qualitative grade") :]
    meta = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", grade[: grade.index("</p>")]))
    before = (DAY - timedelta(days=31)).strftime("%-d %b %Y")
    last = (DAY - timedelta(days=14)).strftime("%-d %b %Y")
    assert f"Baseline 4 ({before})" in meta
    assert f"Last 2 ({last})" in meta
    assert "Now: not scored" in meta


def test_the_last_choice_is_marked_on_the_segmented_items(clinician_client, clinician):
    session, sites = atrophic_patient(clinician, done=2)
    html = clinician_client.get(log_url(session)).content.decode()
    marked = re.findall(
        rf'for="id_s{sites[0].pk}-gb_qualitative-grade_(\d)">(?:(?!</label>).)*\(last time\)', html
    )
    assert marked == ["2"]  # the option "2 mild", the second session's grade


def test_the_last_consented_photo_is_shown_through_the_checked_photo_view(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=2)
    newest = SessionPhoto.objects.filter(scar_site=sites[0]).order_by("-taken_on").first()
    html = clinician_client.get(log_url(session)).content.decode()
    block = site_block(html, sites[0])
    src = reverse("photo", args=[newest.pk]) + "?size=thumb"
    assert f'src="{src}"' in block
    assert "/media/" not in html
    on = newest.taken_on.strftime("%-d %b %Y")
    assert f'alt="Last photo of Left cheek, front, {on}"' in block

    response = clinician_client.get(src)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"].startswith("private, no-store")
    assert "sandbox" in response["Content-Security-Policy"]
    assert RecordAccess.objects.filter(what=RecordAccess.What.PHOTO).exists()


def test_a_withdrawn_photo_or_one_without_consent_on_its_day_is_not_shown(
    clinician_client, clinician, manager
):
    session, sites = atrophic_patient(clinician, done=2)
    latest, earlier = SessionPhoto.objects.filter(scar_site=sites[0]).order_by("-taken_on")
    SessionPhoto.objects.filter(pk=latest.pk).update(withdrawn_at=timezone.now())
    html = clinician_client.get(log_url(session)).content.decode()
    assert reverse("photo", args=[latest.pk]) not in html
    assert reverse("photo", args=[earlier.pk]) + "?size=thumb" in site_block(html, sites[0])

    # Consent signed after the photos were taken: none of them can be shown.
    Consent.objects.filter(patient=sites[0].patient).update(signed_on=DAY - timedelta(days=1))
    html = clinician_client.get(log_url(session)).content.decode()
    assert "?size=thumb" not in html
    assert "No earlier photo" in site_block(html, sites[0])
    assert (
        clinician_client.get(reverse("photo", args=[earlier.pk]) + "?size=thumb").status_code == 403
    )


def test_a_thumbnail_is_refused_to_front_desk_and_unknown_ids_are_404(
    client, front_desk, clinician
):
    _, sites = atrophic_patient(clinician, done=1)
    photo = SessionPhoto.objects.filter(scar_site=sites[0]).first()
    url = reverse("photo", args=[photo.pk]) + "?size=thumb"
    client.force_login(front_desk)
    assert client.get(url).status_code == 403
    client.force_login(clinician)
    assert client.get(url).status_code == 200
    assert client.get(reverse("photo", args=[999_999]) + "?size=thumb").status_code == 404


def test_a_thumbnail_is_a_small_copy(clinician_client, clinician):
    from io import BytesIO

    from PIL import Image

    _, sites = atrophic_patient(clinician, done=1)
    photo = SessionPhoto.objects.filter(scar_site=sites[0]).first()
    big = Image.new("RGB", (1600, 1200), (180, 120, 110))
    buffer = BytesIO()
    big.save(buffer, "PNG")
    with photo.image.open("wb") as handle:
        handle.write(buffer.getvalue())
    response = clinician_client.get(reverse("photo", args=[photo.pk]) + "?size=thumb")
    small = Image.open(BytesIO(response.content))
    assert max(small.size) == 240


# --- few-valued items as choices ---------------------------------------------------------------


def test_few_valued_items_are_choices_with_their_words_and_not_scored_first(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=0)
    html = clinician_client.get(log_url(session)).content.decode()
    name = f"s{sites[0].pk}-ecca-v_atrophic"
    radios = re.findall(rf'<input type="radio" class="btn-check" name="{name}"[^>]*>', html)
    assert len(radios) == 5
    assert 'value=""' in radios[0] and "checked" in radios[0]
    assert all("checked" not in radio for radio in radios[1:])
    for words in ("none", "fewer than 5", "5-20", "more than 20"):
        assert f'<span class="seg-words">{words}</span>' in html
    assert f'<fieldset class="segmented" id="id_{name}"' in html
    # Counts (0-500) stay number boxes.
    assert f'type="number" name="s{sites[0].pk}-gb_quantitative-macular"' in html


def test_a_choice_is_saved_as_its_number_and_the_server_computes_the_total(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    assert form[f"s{sites[0].pk}-gb_qualitative-grade"] == ""  # "Not scored"
    response = clinician_client.post(
        log_url(session), form | {f"s{sites[0].pk}-gb_qualitative-grade": "2"}
    )
    assert response.status_code == 302
    saved = Assessment.objects.get(session=session, scar_site=sites[0])
    assert (saved.instrument, saved.items, saved.total) == ("gb_qualitative", {"grade": 2}, 2)
    assert Session.objects.get(pk=session.pk).status == Session.Status.COMPLETED


def test_gais_ratings_are_listed_with_their_words_and_saved_as_numbers(clinician_client, clinician):
    """A drop-down, "Not scored" first: as a row of choices each rating would take two lines
    of buttons per site."""
    session, sites = atrophic_patient(clinician, done=1)
    html = clinician_client.get(log_url(session)).content.decode()
    name = f"s{sites[0].pk}-gais_patient"
    select = html[html.index(f'<select name="{name}"') :]
    select = select[: select.index("</select>")]
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)
    assert options[0] == ("", "Not scored")
    assert options[4] == ("4", "4 no change")
    assert len(options) == 6

    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    response = clinician_client.post(log_url(session), form | {name: "2"})
    assert response.status_code == 302
    saved = Assessment.objects.get(session=session, instrument="gais_patient")
    assert (saved.scar_site, saved.total) == (sites[0], 2)


# --- adverse events ----------------------------------------------------------------------------


def test_adverse_event_fields_are_not_marked_required_and_blank_rows_wait_behind_a_button(
    clinician_client, clinician
):
    session, _ = atrophic_patient(clinician, done=0)
    html = clinician_client.get(log_url(session)).content.decode()
    events = html[html.index('id="adverse-events"') : html.index('id="id_notes"')]
    assert "asteriskField" not in events
    assert "requiredField" not in events
    assert '<details class="ae-blank" id="ae-blank">' in events
    assert '<summary class="btn btn-outline-secondary">Add adverse event</summary>' in events
    assert events.index("<summary") < events.index('name="ae-0-kind"')
    assert '<button type="button" class="btn btn-outline-secondary" id="add-ae" hidden>' in events


def test_a_started_adverse_event_needs_kind_and_severity_named_with_the_choices(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=0)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    response = clinician_client.post(log_url(session), form | {"ae-1-notes": "Redness at edge"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Kind is required for an adverse event: choose what happened (Erythema (redness)" in html
    assert "Severity is required for an adverse event: choose how severe it was (Mild, " in html
    assert not AdverseEvent.objects.exists()
    assert Session.objects.get(pk=session.pk).status == Session.Status.SCHEDULED
    # The started row is shown outside the blank ones, with what was typed.
    events = html[html.index('id="ae-forms"') : html.index('id="ae-blank"')]
    assert 'id="ae-row-1"' in events and "Redness at edge" in events


def test_untouched_adverse_event_rows_are_not_recorded(clinician_client, clinician):
    session, _ = atrophic_patient(clinician, done=1)  # parameters carried forward
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    assert clinician_client.post(log_url(session), form).status_code == 302
    assert not AdverseEvent.objects.exists()


# --- the error summary -------------------------------------------------------------------------


def test_a_refused_save_puts_an_error_summary_first_that_links_to_each_field(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    row = session.treatments.get()
    typed = {
        f"t{row.pk}-needle_depth": "9",
        f"s{sites[0].pk}-pain": "12",
        f"s{sites[1].pk}-gb_qualitative-grade": "7",  # a value no choice offers
        "ae-0-kind": "erythema",
    }
    response = clinician_client.post(log_url(session), form | typed)
    html = response.content.decode()
    summary = html[
        html.index('id="error-summary"') : html.index("</div>", html.index('id="error-summary"'))
    ]
    assert 'tabindex="-1"' in summary and "autofocus" in summary
    assert html.index('id="error-summary"') < html.index('id="session-log"')
    found = re.findall(r'<a href="#([^"]+)" data-error-link>([^<]+)</a>', summary)
    links = {text: target for target, text in found}
    assert links == {
        "Microneedling: Needle depth must be from 0.25 to 3 mm.": f"id_t{row.pk}-needle_depth",
        "Right cheek, Goodman &amp; Baron qualitative grade: Grade must be a whole number from "
        "1 to 4.": f"id_s{sites[1].pk}-gb_qualitative-grade",
        "Left cheek: Pain must be a whole number from 0 to 10.": f"id_s{sites[0].pk}-pain",
        "Adverse event 1: Severity is required for an adverse event: choose how severe it was "
        "(Mild, Moderate, Severe), or clear the row.": "id_ae-0-severity",
    }
    for target in links.values():  # every link lands on an element of the page
        assert f'id="{target}"' in html
    assert 'data-unsaved="1"' in html  # all of it is still unsaved: leaving asks


def test_a_stale_save_is_in_the_error_summary_too(clinician_client, clinician):
    session, _ = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    Session.objects.filter(pk=session.pk).update(version=session.version + 1)
    html = clinician_client.post(log_url(session), form).content.decode()
    summary = html[
        html.index('id="error-summary"') : html.index("</ul>", html.index('id="error-summary"'))
    ]
    assert "changed" in summary.lower() or "someone" in summary.lower()
    assert html.count('class="alert alert-danger"') == 0  # not shown twice


def test_a_page_without_errors_has_no_summary_and_is_not_marked_unsaved(
    clinician_client, clinician
):
    session, _ = atrophic_patient(clinician, done=1)
    html = clinician_client.get(log_url(session)).content.decode()
    assert 'id="error-summary"' not in html
    assert 'data-unsaved="1"' not in html
    assert "data-unsaved-guard" in html


# --- queries -----------------------------------------------------------------------------------


def _queries(client, url):
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_log_page_runs_as_many_queries_after_10_sessions_as_after_1(
    clinician_client, clinician
):
    one, sites = atrophic_patient(clinician, done=1)
    small, html = _queries(clinician_client, log_url(one))
    assert html.count("?size=thumb") == 3
    ten, _ = atrophic_patient(clinician, done=10)
    large, html = _queries(clinician_client, log_url(ten))
    assert html.count("?size=thumb") == 3
    assert html.count("Baseline <strong") >= 3
    assert large == small


def test_a_gais_value_outside_the_choices_is_named_with_the_allowed_ones_and_nothing_is_lost(
    clinician_client, clinician
):
    session, sites = atrophic_patient(clinician, done=1)
    form = browser_form(clinician_client.get(log_url(session)), form_id="session-log")
    name = f"s{sites[0].pk}-gais_clinician"
    typed = {name: "9", f"s{sites[0].pk}-gb_qualitative-grade": "2"}
    response = clinician_client.post(log_url(session), form | typed)
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "Improvement (clinician) must be one of 1 (very much improved) to 5 (worse), or Not scored."
    ) in html
    assert (
        browser_form(response, form_id="session-log")[f"s{sites[0].pk}-gb_qualitative-grade"] == "2"
    )
    assert Session.objects.get(pk=session.pk).status != Session.Status.COMPLETED
