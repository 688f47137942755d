"""Sending the patient's copy (issue 13.4): by e-mail with the PDF attached, or as a link that
opens that one copy without a login for 14 days, until it is revoked."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from plans import report_views, sending
from plans.models import ReportDelivery, ReportLinkOpening
from tests.factories import PatientFactory, PlanFactory, frozen

pytestmark = pytest.mark.django_db

SEND_URL = "report_send"


@pytest.fixture(autouse=True)
def pinned_clock():
    with frozen():
        yield


@pytest.fixture
def ada():
    return PatientFactory(first_name="Adaline", last_name="Quillfeather", email="ada@example.org")


@pytest.fixture
def other():
    return PatientFactory(first_name="Bartholomew", last_name="Umber", email="bart@example.org")


@pytest.fixture
def rendered(monkeypatch):
    """Which patients' copies were rendered (the real PDF is still made)."""
    calls = []
    real = report_views.patient_copy_pdf

    def spy(patient, plan=None, *, request=None):
        calls.append((patient.pk, getattr(plan, "pk", None)))
        return real(patient, plan, request=request)

    monkeypatch.setattr(report_views, "patient_copy_pdf", spy)
    return calls


def send(client, patient, how, **extra):
    data = {"how": how, "send_token": extra.pop("token", "t" * 20)} | extra
    return client.post(reverse(SEND_URL, args=[patient.pk]), data)


def link_from(response):
    match = re.search(r'value="(http://testserver/my-report/([A-Za-z0-9_-]+)/)"', response.text)
    assert match, "the page shows the link"
    return match.group(1), match.group(2)


# --- by e-mail --------------------------------------------------------------------------------


def test_the_patient_copy_is_emailed_as_a_pdf_and_recorded(clinician_client, clinician, ada):
    response = send(clinician_client, ada, "email")
    assert response.status_code == 302
    assert response.url == reverse("patient_report", args=[ada.pk]) + "?copy=patient"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.org"]
    [(filename, content, mimetype)] = message.attachments
    assert mimetype == "application/pdf"
    assert filename.endswith(".pdf") and ada.record_number not in filename
    assert content.startswith(b"%PDF")
    assert "Dear Adaline" in message.body
    delivery = ReportDelivery.objects.get()
    assert (delivery.patient, delivery.how, delivery.to_address) == (ada, "email", ada.email)
    assert delivery.sent_by == clinician and delivery.sent_at == timezone.now()
    page = clinician_client.get(response.url)
    assert "The patient copy was e-mailed to ada@example.org." in page.text
    assert "E-mail with the PDF" in page.text  # the record, on the report page


def test_a_plan_report_is_sent_for_that_plan(clinician_client, ada, rendered):
    plan = PlanFactory(patient=ada)
    response = send(clinician_client, ada, "email", plan=str(plan.pk))
    assert response.url == reverse("plan_report", args=[ada.pk, plan.pk]) + "?copy=patient"
    assert rendered == [(ada.pk, plan.pk)]
    assert ReportDelivery.objects.get().plan == plan


def test_another_patients_plan_cannot_be_sent_under_this_patient(clinician_client, ada, other):
    plan = PlanFactory(patient=other)
    assert send(clinician_client, ada, "email", plan=str(plan.pk)).status_code == 404
    assert mail.outbox == [] and not ReportDelivery.objects.exists()


def test_a_double_click_sends_one_email(clinician_client, ada):
    send(clinician_client, ada, "email", token="same-form-token-123")
    second = send(clinician_client, ada, "email", token="same-form-token-123")
    assert len(mail.outbox) == 1
    assert ReportDelivery.objects.count() == 1
    assert "already sent" in clinician_client.get(second.url).text


def test_without_an_address_nothing_is_sent_and_the_clinician_is_told(clinician_client):
    patient = PatientFactory(email="")
    for how in ("email", "email_link"):
        response = send(clinician_client, patient, how)
        page = clinician_client.get(response.url)
        assert "has no e-mail address on file" in page.text
    assert mail.outbox == []
    assert not ReportDelivery.objects.exists()


def test_a_refused_email_records_nothing(clinician_client, ada, monkeypatch):
    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    response = send(clinician_client, ada, "email")
    assert "could not be sent" in clinician_client.get(response.url).text
    assert not ReportDelivery.objects.exists()


def test_manager_may_send(manager_client, ada):
    assert send(manager_client, ada, "email").status_code == 302
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("who", ["front_desk_client", "outsider_client"])
def test_front_desk_and_outsiders_cannot_send(request, who, ada):
    client = request.getfixturevalue(who)
    for how in ("email", "link", "email_link"):
        assert send(client, ada, how).status_code == 403
    assert mail.outbox == [] and not ReportDelivery.objects.exists()


def test_sending_is_post_only_and_unknown_patients_are_404(clinician_client, ada):
    assert clinician_client.get(reverse(SEND_URL, args=[ada.pk])).status_code == 405
    assert clinician_client.post(reverse(SEND_URL, args=[ada.pk + 999]), {}).status_code == 404


def test_the_report_page_offers_sending_to_clinicians(clinician_client, ada):
    page = clinician_client.get(reverse("patient_report", args=[ada.pk]))
    assert "E-mail the patient copy (PDF)" in page.text
    assert 'name="send_token"' in page.text


# --- the patient link ---------------------------------------------------------------------------


def make_link(client, patient, **extra):
    response = send(client, patient, "link", **extra)
    assert response.status_code == 200
    return link_from(response)


def test_a_link_opens_its_own_patients_copy_without_a_login(clinician_client, ada, other, rendered):
    url, token = make_link(clinician_client, ada)
    send(clinician_client, other, "link", token="other-form-token-1")
    rendered.clear()
    anonymous = Client()
    response = anonymous.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert rendered == [(ada.pk, None)]
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies  # no session, no CSRF cookie: the link is no login


def test_only_a_hash_of_the_token_is_stored(clinician_client, ada):
    _, token = make_link(clinician_client, ada)
    delivery = ReportDelivery.objects.get()
    assert delivery.token_hash == sending.token_digest(token) != token
    assert token not in str(ReportDelivery.objects.values().get())
    assert delivery.expires_at == timezone.now() + timedelta(days=14)


def test_every_opening_is_logged(clinician_client, ada):
    url, _ = make_link(clinician_client, ada)
    anonymous = Client(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Phone browser")
    anonymous.get(url)
    anonymous.get(url)
    openings = ReportLinkOpening.objects.filter(delivery__patient=ada)
    assert openings.count() == 2
    assert {(o.ip, o.user_agent) for o in openings} == {("203.0.113.9", "Phone browser")}
    page = clinician_client.get(reverse("patient_report", args=[ada.pk]))
    assert "opened 2 times" in page.text


def test_a_link_expires_after_14_days(clinician_client, ada):
    url, _ = make_link(clinician_client, ada)
    with time_machine.travel(timezone.now() + timedelta(days=14, minutes=-1), tick=False):
        assert Client().get(url).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=14), tick=False):
        response = Client().get(url)
    assert response.status_code == 410
    assert "no longer valid" in response.text
    assert ada.last_name not in response.text and b"%PDF" not in response.content
    assert ReportLinkOpening.objects.count() == 1


def test_a_revoked_link_no_longer_opens(clinician_client, manager, ada):
    url, _ = make_link(clinician_client, ada)
    delivery = ReportDelivery.objects.get()
    page = clinician_client.get(reverse("patient_report", args=[ada.pk]))
    revoke = reverse("report_link_revoke", args=[delivery.pk])
    assert revoke in page.text
    assert clinician_client.post(revoke).status_code == 302
    response = Client().get(url)
    assert response.status_code == 410 and ada.last_name not in response.text
    delivery.refresh_from_db()
    assert delivery.revoked_at == timezone.now() and delivery.revoked_by.username == "clin_user"
    assert not ReportLinkOpening.objects.exists()


def test_only_links_are_revoked_and_not_by_front_desk(clinician_client, front_desk, ada):
    make_link(clinician_client, ada)
    send(clinician_client, ada, "email", token="email-form-token-1")
    link = ReportDelivery.objects.get(how="link")
    email = ReportDelivery.objects.get(how="email")
    assert clinician_client.post(reverse("report_link_revoke", args=[email.pk])).status_code == 404
    right = reverse("report_link_revoke", args=[link.pk])
    front_desk_client = Client()
    front_desk_client.force_login(front_desk)
    assert front_desk_client.post(right).status_code == 403
    assert clinician_client.get(right).status_code == 405
    link.refresh_from_db()
    assert link.revoked_at is None


@pytest.mark.parametrize(
    # A well-formed token that was never issued (fixed: xdist's workers must collect the same).
    "token",
    ["x", "A" * 43, "q7Yh2-Lm_" * 4 + "Zx9A1b2", "../../patients/1", "A" * 500],
)
def test_an_unknown_token_is_refused_without_patient_data(clinician_client, ada, token):
    make_link(clinician_client, ada)
    response = Client().get(f"/my-report/{token}/")
    assert response.status_code == 404
    assert ada.last_name not in response.text and b"%PDF" not in response.content


def test_an_email_link_is_not_a_patient_link(clinician_client, ada):
    send(clinician_client, ada, "email")
    delivery = ReportDelivery.objects.get()
    assert sending.find_link(delivery.form_token) is None


def test_the_link_reaches_no_other_page(clinician_client, ada, other):
    url, token = make_link(clinician_client, ada)
    plan = PlanFactory(patient=ada)
    anonymous = Client()
    assert anonymous.get(url).status_code == 200
    others = [
        reverse("home"),
        reverse("patient_detail", args=[ada.pk]),
        reverse("patient_report", args=[ada.pk]),
        reverse("patient_report_pdf", args=[ada.pk]) + "?copy=patient",
        reverse("plan_report_pdf", args=[ada.pk, plan.pk]) + "?copy=patient",
        reverse("patient_report", args=[other.pk]),
        reverse("diary_day"),
        f"{reverse('patient_report', args=[ada.pk])}?token={token}",
        url + "../",
        url + "x/",
        url.replace(token, token + "A"),
    ]
    for path in others:
        response = anonymous.get(path)
        assert response.status_code in (302, 404), path
        if response.status_code == 302:
            assert "/login/" in response.url, path
        assert b"%PDF" not in response.content
    assert anonymous.post(url).status_code == 405
    assert anonymous.post(reverse(SEND_URL, args=[ada.pk]), {"how": "link"}).status_code == 302


def test_a_link_can_be_emailed_to_the_patient(clinician_client, ada):
    response = send(clinician_client, ada, "email_link")
    assert "A link to the patient copy was e-mailed" in clinician_client.get(response.url).text
    [message] = mail.outbox
    assert message.to == [ada.email] and message.attachments == []
    url = re.search(r"http://testserver/my-report/[A-Za-z0-9_-]+/", message.body).group(0)
    assert Client().get(url).status_code == 200
    delivery = ReportDelivery.objects.get()
    assert (delivery.how, delivery.to_address) == ("link", ada.email)


def test_a_link_form_submitted_twice_makes_one_link(clinician_client, ada):
    make_link(clinician_client, ada, token="link-form-token-12")
    again = send(clinician_client, ada, "link", token="link-form-token-12")
    assert again.status_code == 302
    assert ReportDelivery.objects.count() == 1
