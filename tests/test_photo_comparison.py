"""Several photos per site and session, each with its view; comparing two dates of a scar site;
choosing the pair the progress report shows. Photography consent rules as everywhere."""

import re
from datetime import date
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from patients.models import Consent
from plans.models import ReportPhotoChoice, SessionPhoto
from plans.reports import build_report
from tests.factories import (
    AssessmentFactory,
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    course,
    frozen,
    items_for_total,
    make_plan,
    png_upload,
    tiny_png,
)

pytestmark = pytest.mark.django_db

JAN, JAN_LATER, FEB, MAR = date(2026, 1, 5), date(2026, 1, 20), date(2026, 2, 16), date(2026, 3, 30)


@pytest.fixture(autouse=True)
def pinned_clock_and_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


def _photo(session, site, on, user, view=SessionPhoto.View.FRONT, **extra):
    return SessionPhoto.objects.create(
        session=session,
        scar_site=site,
        image=SimpleUploadedFile("cheek.png", tiny_png(), content_type="image/png"),
        taken_on=on,
        view=view,
        taken_by=user,
        **extra,
    )


@pytest.fixture
def world(clinician):
    """A cheek photographed on 5 Jan (front and close-up), 20 Jan (front, withdrawn later),
    16 Feb (front, while consent was withdrawn) and 30 Mar (front, consent signed again).
    Vancouver scores: 8 in the January session, 4 on 28 Mar."""
    patient = PatientFactory(first_name="Rosalind", last_name="Achterberg")
    ConsentFactory(
        patient=patient,
        kind=Consent.Kind.CLINICAL_PHOTOGRAPHY,
        signed_on=date(2025, 6, 1),
        withdrawn_on=date(2026, 2, 1),
    )
    ConsentFactory(
        patient=patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2026, 3, 1)
    )
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(user=clinician, sites=[site], courses=[course("microneedling", 3, every=42)])
    first, second, third = plan.sessions.order_by("scheduled_at")
    AssessmentFactory(
        scar_site=site, session=first, assessed_on=JAN, items=items_for_total("vss", 8)
    )
    AssessmentFactory(
        scar_site=site, assessed_on=date(2026, 3, 28), items=items_for_total("vss", 4)
    )
    return SimpleNamespace(
        patient=patient,
        site=site,
        plan=plan,
        jan=_photo(first, site, JAN, clinician),
        jan_close=_photo(first, site, JAN, clinician, view=SessionPhoto.View.CLOSE_UP),
        withdrawn=_photo(first, site, JAN_LATER, clinician, withdrawn_at=timezone.now()),
        unconsented=_photo(second, site, FEB, clinician),
        mar=_photo(third, site, MAR, clinician),
    )


def compare_url(w, **query):
    url = reverse("photo_compare", args=[w.patient.pk, w.site.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def choose_url(w):
    return reverse("photo_report_pair", args=[w.patient.pk, w.site.pk])


def photo_ids(html):
    return [int(pk) for pk in re.findall(r'src="/photos/(\d+)/"', html)]


def report_pair(patient):
    """The before and after photo the report shows for the world's cheek."""
    site = next(s for s in build_report(patient).sites if s.site.body_site == "left_cheek")
    return site.photos.before, site.photos.latest


# --- several photos per site and session ------------------------------------------------------


def test_the_session_log_takes_several_photos_of_a_site_each_with_its_view(
    clinician_client, clinician
):
    patient = PatientFactory()
    ConsentFactory(
        patient=patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2025, 6, 1)
    )
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(user=clinician, sites=[site], courses=[course("microneedling", 1)])
    session = plan.sessions.get()
    url = reverse("session_log", args=[session.pk])
    page = clinician_client.get(url)
    form = browser_form(page, form_id="session-log")
    s = f"s{site.pk}"
    # The slots offer the usual set by default: front, left 45, right 45, close-up.
    assert [form[f"{s}-{n}_view"] for n in ("photo", "photo_2", "photo_3", "photo_4")] == [
        "front",
        "left_45",
        "right_45",
        "close_up",
    ]
    row = session.treatments.get()
    form |= {
        f"t{row.pk}-device": "Dermapen 4",
        f"t{row.pk}-needle_depth": "1.5",
        f"t{row.pk}-passes": "3",
        f"{s}-gais_clinician": "2",
        f"{s}-photo": png_upload("front.png"),
        f"{s}-photo_caption": "Flash",
        f"{s}-photo_2": png_upload("left.png"),
        f"{s}-photo_2_view": "left_45",
        f"{s}-photo_4": png_upload("close.png"),
        f"{s}-photo_4_view": "close_up",
        f"{s}-photo_4_caption": "Edge of the scar",
    }
    response = clinician_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = session.photos.order_by("pk")
    assert [(p.scar_site, p.view, p.caption) for p in saved] == [
        (site, "front", "Flash"),
        (site, "left_45", ""),
        (site, "close_up", "Edge of the scar"),
    ]
    page = clinician_client.get(reverse("session_detail", args=[session.pk])).content.decode()
    assert len(photo_ids(page)) == 3


def test_without_photography_consent_the_log_offers_no_photo_slot_at_all(
    clinician_client, clinician
):
    site = ScarSiteFactory(body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(user=clinician, sites=[site], courses=[course("microneedling", 1)])
    page = clinician_client.get(reverse("session_log", args=[plan.sessions.get().pk]))
    html = page.content.decode()
    assert 'type="file"' not in html
    assert f"s{site.pk}-photo_2_view" not in html


# --- the comparison page ----------------------------------------------------------------------


def test_the_comparison_lists_only_dates_with_photos_that_may_be_shown(clinician_client, world):
    page = clinician_client.get(compare_url(world)).content.decode()
    dates = re.search(r'<ul[^>]*id="photo-dates"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert "5 Jan 2026" in dates and "30 Mar 2026" in dates
    assert "(front, close-up)" in dates
    assert "20 Jan 2026" not in page  # withdrawn
    assert "16 Feb 2026" not in page  # consent withdrawn on the day
    # First vs latest of the front view, by default; each shown at the same frame size.
    assert photo_ids(page)[:2] == [world.jan.pk, world.mar.pk]
    assert world.unconsented.pk not in photo_ids(page)
    assert world.withdrawn.pk not in photo_ids(page)


def test_a_photo_taken_while_consent_was_withdrawn_never_appears_even_when_asked_for(
    clinician_client, world
):
    for query in ({"before": FEB, "after": MAR}, {"before": JAN_LATER, "after": FEB}):
        page = clinician_client.get(compare_url(world, **query)).content.decode()
        assert world.unconsented.pk not in photo_ids(page)
        assert world.withdrawn.pk not in photo_ids(page)
    assert clinician_client.get(reverse("photo", args=[world.unconsented.pk])).status_code == 403


def test_the_chosen_dates_and_view_are_shown_with_each_dates_scores(clinician_client, world):
    page = clinician_client.get(compare_url(world, view="close_up")).content.decode()
    assert photo_ids(page) == [world.jan_close.pk]  # one date only: nothing to slide
    assert "choose two different dates" in page

    page = clinician_client.get(compare_url(world, before=MAR, after=JAN)).content.decode()
    # Dates given the wrong way round are put in order: earlier first.
    assert photo_ids(page) == [world.jan.pk, world.mar.pk, world.jan.pk, world.mar.pk]
    scores = re.findall(
        r'<ul class="list-unstyled small mb-0 compare-scores">(.*?)</ul>', page, re.S
    )
    assert "Vancouver Scar Scale: <strong>8</strong>" in scores[0]  # of the January session
    assert "Vancouver Scar Scale: <strong>4</strong>" in scores[1]  # the nearest to 30 Mar
    assert "scored 28 Mar 2026" in scores[1]
    assert "data-photo-slider hidden" in page  # shown by the script; side by side without it
    assert "js/photo-compare.js" in page


def test_a_date_that_does_not_exist_falls_back_to_the_listed_dates(clinician_client, world):
    response = clinician_client.get(compare_url(world, before="2026-02-30", after="yesterday"))
    assert response.status_code == 200
    assert photo_ids(response.content.decode())[:2] == [world.jan.pk, world.mar.pk]


def test_front_desk_never_sees_the_comparison(front_desk_client, world):
    assert front_desk_client.get(compare_url(world)).status_code == 403
    post = {"before": world.jan.pk, "after": world.mar.pk}
    assert front_desk_client.post(choose_url(world), post).status_code == 403
    page = front_desk_client.get(reverse("patient_detail", args=[world.patient.pk]))
    assert "Compare photos" not in page.content.decode()
    assert not ReportPhotoChoice.objects.exists()


def test_the_patient_page_links_each_site_to_its_comparison(clinician_client, world):
    page = clinician_client.get(reverse("patient_detail", args=[world.patient.pk]))
    assert f'href="{compare_url(world)}"' in page.content.decode()


def test_another_patients_site_is_not_found(clinician_client, world):
    other = ScarSiteFactory()
    for name in ("photo_compare", "photo_report_pair"):
        url = reverse(name, args=[world.patient.pk, other.pk])
        response = clinician_client.post(url) if "pair" in name else clinician_client.get(url)
        assert response.status_code == 404
    assert (
        clinician_client.get(reverse("photo_compare", args=[999_999, world.site.pk])).status_code
        == 404
    )


# --- choosing the report's pair ---------------------------------------------------------------


def test_choosing_a_pair_changes_the_report_pair(clinician_client, clinician, world):
    later = _photo(world.jan.session, world.site, date(2026, 1, 12), clinician)
    assert report_pair(world.patient) == (world.jan, world.mar)  # first vs latest

    response = clinician_client.post(choose_url(world), {"before": later.pk, "after": world.mar.pk})
    assert response.status_code == 302
    page = clinician_client.get(response.url).content.decode()
    assert "The report now shows" in page
    assert "The report shows the photos of 12 Jan 2026 and 30 Mar 2026" in page
    choice = ReportPhotoChoice.objects.get()
    assert (choice.before, choice.after, choice.chosen_by) == (later, world.mar, clinician)
    assert choice.history.count() == 1
    assert report_pair(world.patient) == (later, world.mar)
    report = clinician_client.get(reverse("patient_report", args=[world.patient.pk]))
    assert photo_ids(report.content.decode()) == [later.pk, world.mar.pk]

    # Chosen again, the one row changes (and its history grows).
    clinician_client.post(choose_url(world), {"before": world.jan.pk, "after": later.pk})
    choice.refresh_from_db()
    assert (choice.before, choice.after, choice.history.count()) == (world.jan, later, 2)
    assert report_pair(world.patient) == (world.jan, later)


def test_a_chosen_photo_withdrawn_later_gives_back_first_vs_latest(
    clinician_client, clinician, world
):
    later = _photo(world.jan.session, world.site, date(2026, 1, 12), clinician)
    clinician_client.post(choose_url(world), {"before": later.pk, "after": world.mar.pk})
    SessionPhoto.objects.filter(pk=later.pk).update(withdrawn_at=timezone.now())
    assert report_pair(world.patient) == (world.jan, world.mar)
    page = clinician_client.get(compare_url(world)).content.decode()
    assert "The report shows the first and the latest photo." in page


def _other_site_photo(w):
    other = ScarSiteFactory(patient=w.patient, body_site="right_cheek", scar_types=["rolling"])
    return _photo(w.jan.session, other, date(2026, 1, 12), w.jan.taken_by)


def _other_patient_photo(w):
    site = ScarSiteFactory(body_site="left_cheek", scar_types=["rolling"])
    ConsentFactory(
        patient=site.patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2025, 6, 1)
    )
    plan = make_plan(user=w.jan.taken_by, sites=[site], courses=[course("microneedling", 1)])
    return _photo(plan.sessions.get(), site, date(2026, 1, 12), w.jan.taken_by)


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (_other_site_photo, "not a photo of this scar site"),
        (_other_patient_photo, "not a photo of this scar site"),
        (lambda w: w.withdrawn, "was withdrawn"),
        (lambda w: w.unconsented, "without clinical photography consent"),
        (lambda w: w.jan_close, "same view"),
        (lambda w: w.mar, "different dates"),
    ],
    ids=["other-site", "other-patient", "withdrawn", "unconsented", "other-view", "same-photo"],
)
def test_a_bad_choice_is_refused_with_a_clear_message(clinician_client, world, make_bad, message):
    bad = make_bad(world)
    response = clinician_client.post(
        choose_url(world), {"before": bad.pk, "after": world.mar.pk}, follow=True
    )
    assert response.status_code == 200
    assert "Not saved:" in response.content.decode()
    assert message in response.content.decode()
    assert not ReportPhotoChoice.objects.exists()
    assert report_pair(world.patient) == (world.jan, world.mar)


def test_a_choice_without_photo_numbers_is_refused(clinician_client, world):
    response = clinician_client.post(choose_url(world), {"before": "x"}, follow=True)
    assert "Not saved: That photo is not a photo of this scar site." in response.content.decode()
    assert not ReportPhotoChoice.objects.exists()


def test_choosing_needs_a_post(clinician_client, world):
    assert clinician_client.get(choose_url(world)).status_code == 405


def test_the_model_refuses_a_pair_in_the_wrong_order_or_of_one_photo(clinician, world):
    wrong_order = ReportPhotoChoice(
        scar_site=world.site, before=world.mar, after=world.jan, chosen_by=clinician
    )
    with pytest.raises(ValidationError, match="earlier day"):
        wrong_order.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReportPhotoChoice.objects.create(
            scar_site=world.site, before=world.jan, after=world.jan, chosen_by=clinician
        )
