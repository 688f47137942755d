import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_is_open_to_anonymous_visitors(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_logging_in_leads_to_the_home_page(client, clinician):
    phone = TOTPDevice.objects.create(user=clinician, name="Phone", confirmed=True)
    response = client.post(
        reverse("login"), {"username": "clin_user", "password": PASSWORD}, follow=True
    )
    # A clinician confirms the login with their authenticator code first (issue 11.7).
    code_page = response.redirect_chain[-1][0]
    assert code_page == f"{reverse('otp_verify')}?next=/"
    response = client.post(code_page, {"code": f"{totp(phone.bin_key):06d}"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "<h1" in response.content.decode() and "Today" in response.content.decode()


def test_a_wrong_password_is_refused_and_keeps_the_username(client, clinician):
    response = client.post(reverse("login"), {"username": "clin_user", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert 'value="clin_user"' in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(clinician_client):
    assert clinician_client.get(reverse("home")).status_code == 200
    response = clinician_client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert clinician_client.get(reverse("home")).status_code == 302


def test_anonymous_home_redirects_to_login_with_next(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


def test_login_redirect_to_an_outside_site_is_ignored(client, clinician):
    response = client.post(
        reverse("login") + "?next=https://evil.example/",
        {"username": "clin_user", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response.url == reverse("home")
