"""A clinician compares two dates of a scar site in Chromium: side by side, then the slider."""

import io
from datetime import date

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from patients.models import Consent
from plans.models import ReportDelivery, ReportPhotoChoice, SessionPhoto
from tests.conftest import PASSWORD
from tests.factories import ConsentFactory, PatientFactory, ScarSiteFactory, course, make_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DAYS = [date(2026, 3, 2), date(2026, 5, 4), date(2026, 7, 6)]


def _png(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
    return SimpleUploadedFile("cheek.png", buffer.getvalue(), content_type="image/png")


def test_clinician_compares_two_dates_moves_the_slider_and_sends_the_patient_copy(
    login, clinician, live_server, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    patient = PatientFactory(
        first_name="Ottoline", last_name="Verhaegen", email="ottoline@example.org"
    )
    ConsentFactory(
        patient=patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2026, 1, 2)
    )
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(
        user=clinician,
        sites=[site],
        courses=[course("microneedling", 1)],
        start=timezone.localdate(),
    )
    session = plan.sessions.get()
    photos = [
        SessionPhoto.objects.create(
            session=session, scar_site=site, image=_png(colour), taken_on=day, taken_by=clinician
        )
        for day, colour in zip(DAYS, [(200, 60, 60), (160, 90, 90), (120, 120, 120)], strict=True)
    ]
    page = login("clin_user", PASSWORD)
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.locator(f"#site-{site.pk}").get_by_role("link", name="Compare photos").click()
    expect(page.get_by_role("heading", name="Compare photos: Left cheek")).to_be_visible()

    # Pick the first and the middle date.
    page.get_by_label("Earlier date").select_option("2026-03-02")
    page.get_by_label("Later date").select_option("2026-05-04")
    page.get_by_role("button", name="Compare").click()
    side = page.locator("#side-by-side figure")
    expect(side).to_have_count(2)
    expect(side.nth(0)).to_contain_text("Earlier: 2 Mar 2026")
    expect(side.nth(1)).to_contain_text("Later: 4 May 2026")
    sizes = [
        side.nth(n)
        .locator("img")
        .evaluate(
            # Waits for the photo to arrive: on a busy machine it may still be loading.
            "img => new Promise(done => { const go = () => done([img.naturalWidth,"
            " img.getBoundingClientRect().width, img.getBoundingClientRect().height]);"
            " img.complete && img.naturalWidth ? go() : img.addEventListener('load', go); })"
        )
        for n in (0, 1)
    ]
    assert sizes[0][0] == 64 and sizes[1][0] == 64  # both photos were served and loaded
    assert sizes[0][1:] == sizes[1][1:]  # shown at the same size

    # The overlay: the later photo over the earlier, its clip moved by the range input.
    slider = page.locator("[data-photo-slider]")
    expect(slider).to_be_visible()
    after = slider.locator("img.slider-after")
    expect(after).to_have_attribute("src", f"/photos/{photos[1].pk}/")
    assert "50%" in after.evaluate("img => getComputedStyle(img).clipPath")
    page.get_by_label("move to reveal").fill("20")
    assert "20%" in after.evaluate("img => getComputedStyle(img).clipPath")
    page.get_by_label("move to reveal").press("ArrowRight")
    assert "21%" in after.evaluate("img => getComputedStyle(img).clipPath")

    page.get_by_role("button", name="Use this pair in the report").click()
    expect(
        page.get_by_text("The report now shows Left cheek on 2 Mar 2026 and 4 May 2026")
    ).to_be_visible()
    choice = ReportPhotoChoice.objects.get()
    assert (choice.before, choice.after) == (photos[0], photos[1])

    # Then the patient copy goes to the patient, by e-mail, as a PDF (issue 13.4).
    page.goto(f"{live_server.url}/patients/{patient.pk}/report/?copy=patient")
    expect(page.get_by_role("heading", name="Your scar treatment progress")).to_be_visible()
    page.get_by_role("button", name="E-mail the patient copy (PDF)").click()
    expect(page.get_by_role("alert")).to_contain_text("The patient copy was e-mailed")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [patient.email]
    ((name, content, kind),) = message.attachments
    assert kind == "application/pdf" and content.startswith(b"%PDF")
    assert ReportDelivery.objects.get().sent_by == clinician
    assert blocked == []
