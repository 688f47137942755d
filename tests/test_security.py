"""The holes the security probe found (issue 11): each test here failed before its fix."""

import io
from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER
from patients.models import Consent, MedicalFlag
from plans import safety
from tests.factories import (
    TODAY,
    ConsentFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    UserFactory,
    course,
    frozen,
    make_plan,
    png_upload,
)

pytestmark = pytest.mark.django_db

HOSTILE_HTML = (
    b"<!doctype html><html><body><script>"
    b"fetch('/admin/clinic/user/1/change/',{method:'POST',body:'is_superuser=on'})"
    b"</script></body></html>"
)


def real_pdf():
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def jpeg_bytes(size=(16, 16)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 120, 110)).save(buffer, format="JPEG")
    return buffer.getvalue()


def consent_post(client, patient, name, content, content_type="application/pdf"):
    return client.post(
        reverse("consent_add", args=[patient.pk]),
        {
            "kind": Consent.Kind.TREATMENT,
            "signed_on": "2026-01-02",
            "scanned_file": SimpleUploadedFile(name, content, content_type=content_type),
        },
    )


# --- 1. a hostile consent upload ----------------------------------------------------------


@pytest.mark.parametrize(
    "name,content,content_type",
    [
        ("scan.html", HOSTILE_HTML, "text/html"),
        ("scan.pdf", HOSTILE_HTML, "application/pdf"),  # a lie in the name and the type
        ("scan.png", HOSTILE_HTML, "image/png"),
        ("scan.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg"),
        ("scan.pdf", b"%PDF-1.7\n<script>not really a pdf</script>", "application/pdf"),
        ("scan.jpg", b"\xff\xd8\xff\xe0 then html <script>", "image/jpeg"),
    ],
    ids=["html", "html-named-pdf", "html-named-png", "svg", "fake-pdf", "fake-jpeg"],
)
def test_front_desk_cannot_upload_anything_but_a_real_pdf_jpeg_or_png_consent(
    front_desk_client, name, content, content_type
):
    patient = PatientFactory(consented=False)
    response = consent_post(front_desk_client, patient, name, content, content_type)
    assert response.status_code == 200  # the form again, with the message
    errors = response.context["form"].errors["scanned_file"]
    assert any("PDF, JPEG or PNG" in e for e in errors), errors
    assert not Consent.objects.filter(patient=patient).exists()


@pytest.mark.parametrize(
    "name,content",
    [("signed.pdf", None), ("signed.jpg", "jpeg"), ("signed.png", "png")],
)
def test_real_pdf_jpeg_and_png_consents_are_kept_under_a_random_name(
    front_desk_client, name, content
):
    patient = PatientFactory(last_name="Quillfeather", consented=False)
    data = {
        None: real_pdf,
        "jpeg": jpeg_bytes,
        "png": lambda: png_upload().read(),
    }[content]()
    response = consent_post(front_desk_client, patient, name, data)
    assert response.status_code == 302, response.context["form"].errors
    stored = Consent.objects.get(patient=patient).scanned_file.name
    assert "signed" not in stored and "Quillfeather" not in stored
    assert stored.startswith(f"consents/{patient.pk}/")


def test_a_consent_over_the_size_limit_is_refused_naming_the_limit(front_desk_client, settings):
    settings.CONSENT_MAX_BYTES = 1_000_000
    patient = PatientFactory(consented=False)
    big = real_pdf() + b"\n%" + b"x" * 1_200_000
    response = consent_post(front_desk_client, patient, "big.pdf", big)
    errors = response.context["form"].errors["scanned_file"]
    assert any("the limit is 1 MB" in e for e in errors), errors
    assert not Consent.objects.filter(patient=patient).exists()


def test_an_upload_past_the_largest_limit_is_not_kept_while_the_request_is_read(
    front_desk_client, settings
):
    from clinic.uploads import OversizedUpload

    settings.CONSENT_MAX_BYTES = settings.UPLOAD_MAX_BYTES = 200_000
    patient = PatientFactory(consented=False)
    response = consent_post(front_desk_client, patient, "huge.pdf", real_pdf() + b"0" * 600_000)
    form = response.context["form"]
    upload = form.files["scanned_file"]
    assert isinstance(upload, OversizedUpload)  # only its name and size were kept
    assert upload.size > 600_000
    assert any("the limit is 0.2 MB" in e for e in form.errors["scanned_file"])


def test_an_old_html_consent_is_served_as_a_sandboxed_download_never_as_a_page(
    manager_client,
):
    # Stored before uploads were checked: the view must still not let it run.
    consent = ConsentFactory(scanned_file=SimpleUploadedFile("evil.html", HOSTILE_HTML))
    response = manager_client.get(reverse("consent_file", args=[consent.patient_id, consent.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert ".html" not in response["Content-Disposition"]
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]


def test_a_pdf_consent_is_served_as_a_pdf_attachment(front_desk_client):
    consent = ConsentFactory(scanned_file=SimpleUploadedFile("x.pdf", real_pdf()))
    response = front_desk_client.get(reverse("consent_file", args=[consent.patient_id, consent.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_the_admin_refuses_an_html_consent_too(manager_client):
    patient = PatientFactory(consented=False)
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    page = manager_client.get(url)
    from tests.factories import browser_form

    data = browser_form(page, form_id="patient_form")
    data.update(
        {
            "consents-TOTAL_FORMS": "1",
            "consents-0-kind": "treatment",
            "consents-0-signed_on": "2026-01-02",
            "consents-0-patient": str(patient.pk),
        }
    )
    data["consents-0-scanned_file"] = SimpleUploadedFile("evil.pdf", HOSTILE_HTML)
    response = manager_client.post(url, data)
    assert response.status_code == 200
    assert "must be a PDF, JPEG or PNG file" in response.content.decode()
    assert not Consent.objects.filter(patient=patient).exists()


def test_a_photo_that_is_really_html_is_refused_by_the_model():
    from django.core.exceptions import ValidationError

    from plans.models import PHOTO_CHECK

    with pytest.raises(ValidationError, match="must be a JPEG, PNG or WebP"):
        PHOTO_CHECK(SimpleUploadedFile("scar.png", HOSTILE_HTML))


def test_a_decompression_bomb_photo_is_refused_naming_the_pixel_limit(settings):
    from django.core.exceptions import ValidationError
    from PIL import Image

    from plans.models import PHOTO_CHECK

    settings.UPLOAD_MAX_IMAGE_PIXELS = 1_000_000
    buffer = io.BytesIO()
    Image.new("1", (2000, 2000)).save(buffer, format="PNG")  # 4 MP, a few hundred bytes
    with pytest.raises(ValidationError, match="megapixels"):
        PHOTO_CHECK(SimpleUploadedFile("bomb.png", buffer.getvalue()))


def test_a_stored_photo_loses_its_exif_location_and_keeps_its_orientation(clinician):
    from PIL import Image

    from plans.models import SessionPhoto

    image = Image.new("RGB", (40, 20), (200, 90, 90))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    plan = make_plan(user=clinician, courses=[course("cryotherapy", 1)])
    session = plan.sessions.get()
    photo = SessionPhoto(
        session=session,
        scar_site=plan.target_sites.get(),
        image=SimpleUploadedFile("phone.jpg", buffer.getvalue()),
        taken_by=clinician,
    )
    photo.full_clean()
    photo.save()
    with photo.image.open("rb") as handle:
        stored = Image.open(handle)
        assert stored.size == (20, 40)  # the rotation is in the pixels now
        assert not stored.getexif()  # no orientation, no GPS, nothing


# --- 2. a manager raising themself or others --------------------------------------------------


def user_change(client, user, **changes):
    url = reverse("admin:clinic_user_change", args=[user.pk])
    page = client.get(url)
    if page.status_code != 200:
        return page
    from tests.factories import browser_form

    data = browser_form(page, form_id="user_form")
    data.update(changes)
    return client.post(url, data)


def test_a_manager_cannot_make_themself_superuser_or_staff(manager_client, manager):
    response = user_change(manager_client, manager, is_superuser="on", user_permissions=["1", "2"])
    assert response.status_code in (200, 302)
    manager.refresh_from_db()
    assert not manager.is_superuser
    assert not manager.user_permissions.exists()
    assert manager.groups.filter(name=MANAGER).exists()  # their own role is untouched


def test_a_manager_cannot_give_anyone_the_manager_role(manager_client):
    clinician = UserFactory(role=CLINICIAN)
    manager_group = Group.objects.get(name=MANAGER)
    response = user_change(manager_client, clinician, groups=[str(manager_group.pk)])
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    clinician.refresh_from_db()
    assert not clinician.groups.filter(name=MANAGER).exists()
    assert not clinician.is_staff


def test_a_manager_can_still_move_a_front_desk_user_to_clinician(manager_client):
    user = UserFactory(role=FRONT_DESK)
    clinician_group = Group.objects.get(name=CLINICIAN)
    response = user_change(manager_client, user, groups=[str(clinician_group.pk)])
    assert response.status_code == 302
    assert list(user.groups.values_list("name", flat=True)) == [CLINICIAN]


@pytest.mark.parametrize("target", ["superuser", "other manager"])
def test_a_manager_cannot_change_a_superuser_or_another_manager(manager_client, target):
    if target == "superuser":
        other = UserFactory(username="root", is_superuser=True, is_staff=True)
    else:
        other = UserFactory(username="mgr2", role=MANAGER)
    response = user_change(manager_client, other, first_name="Mallory", is_active="")
    assert response.status_code == 403
    other.refresh_from_db()
    assert other.first_name != "Mallory" and other.is_active


@pytest.mark.parametrize("target_role", [None, FRONT_DESK, CLINICIAN, MANAGER])
def test_a_manager_cannot_set_anyone_elses_password(manager_client, target_role):
    other = UserFactory(is_superuser=target_role is None, role=target_role)
    url = reverse("admin:auth_user_password_change", args=[other.pk])
    response = manager_client.post(
        url,
        {"password1": "Tr1cky-new-Passw0rd", "password2": "Tr1cky-new-Passw0rd"},
    )
    assert response.status_code == 403
    other.refresh_from_db()
    assert not other.check_password("Tr1cky-new-Passw0rd")


def test_changes_to_accounts_and_roles_are_kept_with_who_made_them(manager_client, manager):
    user = UserFactory(role=FRONT_DESK)
    clinician_group = Group.objects.get(name=CLINICIAN)
    user_change(manager_client, user, groups=[str(clinician_group.pk)], last_name="Stroud")
    latest = user.history.order_by("-history_date", "-history_id").first()
    assert latest.history_user == manager
    assert latest.last_name == "Stroud"
    assert [g.group.name for g in latest.groups.all()] == [CLINICIAN]
    assert not hasattr(latest, "password")  # no password hash is copied into history


def test_a_change_to_a_roles_permissions_is_kept_in_history():
    from django.contrib.auth.models import Permission

    group = Group.objects.get(name=FRONT_DESK)
    before = group.history.count()
    group.permissions.add(Permission.objects.get(codename="view_outcomes"))
    assert group.history.count() == before + 1


def test_a_login_adds_no_history_row(client, clinician):
    before = clinician.history.count()
    from tests.conftest import PASSWORD

    assert client.login(username=clinician.username, password=PASSWORD)
    assert clinician.history.count() == before


# --- 3. one far-future date taking Today down ---------------------------------------------------


@pytest.fixture
def far_future_flag(clinician):
    """A microneedling session today for a patient whose isotretinoin 'ends' in 9999."""
    patient = PatientFactory(first_name="Greer")
    site = ScarSiteFactory(patient=patient)
    plan = make_plan(user=clinician, sites=[site], courses=[course("microneedling", 1)])
    MedicalFlagFactory(
        patient=patient,
        kind=MedicalFlag.Kind.ISOTRETINOIN,
        started_on=date(2025, 6, 1),
        ended_on=date(9999, 12, 31),  # stored before dates were bounded
    )
    return plan.sessions.get()


@pytest.mark.parametrize("client_fixture", ["front_desk_client", "clinician_client"])
def test_a_flag_ending_in_9999_leaves_today_standing(request, far_future_flag, client_fixture):
    client = request.getfixturevalue(client_fixture)
    with frozen(TODAY):
        response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Greer" in response.content.decode()


def test_a_flag_ending_in_9999_still_warns_on_the_log_and_move_pages(
    clinician_client, far_future_flag
):
    with frozen(TODAY):
        log = clinician_client.get(reverse("session_log", args=[far_future_flag.pk]))
        move = clinician_client.get(reverse("session_move", args=[far_future_flag.pk]))
    assert log.status_code == move.status_code == 200
    assert "Recent isotretinoin" in log.content.decode()


def test_the_flag_form_refuses_a_date_past_2100_naming_the_range(clinician_client):
    patient = PatientFactory(consented=False)
    response = clinician_client.post(
        reverse("flag_add", args=[patient.pk]),
        {"kind": "isotretinoin", "started_on": "2026-01-01", "ended_on": "9999-12-31"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["ended_on"]
    assert errors == ["Enter a date from 01/01/1900 to 31/12/2100."]
    assert response.context["form"]["started_on"].value() == "2026-01-01"  # nothing lost
    assert not MedicalFlag.objects.filter(patient=patient).exists()


def test_a_rule_that_cannot_be_evaluated_blocks_with_could_not_check(monkeypatch):
    def broken(ctx, window):
        raise OverflowError("date value out of range")

    rule = safety.RULES["keloid_history"]
    monkeypatch.setitem(
        safety.RULES, "keloid_history", safety.Rule(**{**rule.__dict__, "check": broken})
    )
    ctx = safety.SafetyContext(
        on=TODAY,
        treatment=safety.TreatmentFacts("microneedling", "Microneedling", "microneedling"),
    )
    findings = safety.evaluate(ctx)
    assert [(f.rule, f.action) for f in findings] == [("keloid_history", safety.Action.BLOCK)]
    assert findings[0].message.startswith("Could not check: Keloid history.")


def test_isotretinoin_ending_at_the_calendars_end_is_still_ongoing():
    ctx = safety.SafetyContext(
        on=TODAY,
        treatment=safety.TreatmentFacts("microneedling", "Microneedling", "microneedling"),
        flags=(safety.FlagPeriod("isotretinoin", date(2025, 6, 1), date(9999, 12, 31)),),
    )
    findings = safety.evaluate(ctx)
    assert [f.rule for f in findings] == ["isotretinoin_recent"]
    assert "Could not check" not in findings[0].message


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_today_with_a_day_at_the_calendars_edge_shows_today(front_desk_client, day):
    with frozen(TODAY):
        response = front_desk_client.get(reverse("home"), {"day": day})
    assert response.status_code == 200
    assert response.context["day"] == TODAY
