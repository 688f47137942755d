"""Issue 11.7: login throttling, a second factor for clinical staff, passwords, idle logout.

These tests log in through the real login page (never `force_login`), because what they check
is what a person typing a password meets: a lockout, a code page, a logout after idling.
"""

import datetime as dt
import re
from base64 import b32decode

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.roles import CLINICIAN, MANAGER
from tests.conftest import PASSWORD, make_user
from tests.test_url_walk import ALL_URLS

pytestmark = pytest.mark.django_db


def password_login(client, username, password=PASSWORD, url=None, **extra):
    return client.post(
        url or reverse("login"), {"username": username, "password": password}, **extra
    )


def current_code(key_bytes, digits=6):
    return f"{totp(key_bytes, digits=digits):0{digits}d}"


def other_code(code):
    return f"{(int(code) + 1) % 10**6:06d}"


def with_device(user):
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


# --- 1. throttling ------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_out_even_the_right_one(clinician):
    client = Client()
    for _ in range(4):
        assert password_login(client, "clin_user", "wrong-password").status_code == 200
    fifth = password_login(client, "clin_user", "wrong-password")
    assert fifth.status_code == 429
    assert "Too many failed attempts" in fifth.content.decode()
    right = password_login(client, "clin_user")
    assert right.status_code == 429
    assert "Too many failed attempts" in right.content.decode()
    assert client.get(reverse("home")).status_code == 302  # still not logged in


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(clinician):
    client = Client()
    for _ in range(4):
        password_login(client, "clin_user", "wrong-password")
    assert password_login(client, "clin_user").status_code == 302


def test_the_lockout_page_says_when_to_try_again_and_who_can_unlock(clinician):
    client = Client()
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), tick=False):
        for _ in range(5):
            response = password_login(client, "clin_user", "wrong-password")
    page = response.content.decode()
    assert "Too many failed attempts" in page
    # 09:00 UTC is 09:00 in London in March: the lock lifts 15 minutes later.
    assert "Try again after 09:15" in page
    assert "manager" in page
    assert "<html" in page  # the site's own page, not a bare line of text


def test_the_lock_is_for_that_username_from_that_address_only(clinician):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        password_login(attacker, "clin_user", "wrong-password")
    assert password_login(attacker, "clin_user").status_code == 429
    colleague = Client(REMOTE_ADDR="198.51.100.20")
    assert password_login(colleague, "clin_user").status_code == 302


def test_the_lock_lifts_after_the_cool_off(clinician):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            password_login(client, "clin_user", "wrong-password")
        clock.shift(dt.timedelta(minutes=14))
        assert password_login(client, "clin_user").status_code == 429
        clock.shift(dt.timedelta(minutes=16))
        assert password_login(client, "clin_user").status_code == 302


def test_the_admin_login_is_throttled_too(manager):
    client = Client()
    url = reverse("admin:login")
    for _ in range(5):
        response = password_login(client, "mgr_user", "wrong-password", url=url)
    assert response.status_code == 429
    assert password_login(client, "mgr_user", url=url).status_code == 429


def test_a_manager_sees_the_lockout_and_unlocks_it_in_the_admin(clinician, manager_client):
    client = Client()
    for _ in range(5):
        password_login(client, "clin_user", "wrong-password")
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = manager_client.get(changelist)
    assert page.status_code == 200
    assert "clin_user" in page.content.decode()
    attempt = AccessAttempt.objects.get(username="clin_user")
    response = manager_client.post(
        changelist, {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True
    )
    assert "Unlocked 1 login" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    assert password_login(client, "clin_user").status_code == 302


def test_a_clinician_cannot_see_the_lockouts(clinician_client):
    response = clinician_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# --- 2. a second factor for clinicians and managers ---------------------------------------------


def test_a_clinician_without_an_authenticator_sets_one_up_before_anything_else(clinician):
    client = Client()
    assert password_login(client, "clin_user").status_code == 302
    response = client.get(reverse("patient_list"))
    assert response.status_code == 302
    assert response.url == f"{reverse('otp_setup')}?next=/patients/"
    page = client.get(response.url).content.decode()
    assert "otpauth://totp/Cicatrix" in page
    assert "<svg" in page  # the QR code, drawn in the page
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page).group(1)
    key = b32decode(secret.replace(" ", ""))
    wrong = client.post(response.url, {"code": other_code(current_code(key)), "next": "/patients/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=clinician, confirmed=True).exists()
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=2)):
        right = client.post(response.url, {"code": current_code(key), "next": "/patients/"})
        assert right.status_code == 302
        assert right.url == "/patients/"
        assert client.get("/patients/").status_code == 200
    assert TOTPDevice.objects.get(user=clinician).confirmed


ASKS_FOR_A_CODE = [
    (name, path)
    for name, path in ALL_URLS
    # The calendar feed and the patient link open with a secret token of their own, no login.
    if name
    not in {
        "login",
        "admin:login",
        "logout",
        "otp_verify",
        "otp_setup",
        "calendar_feed",
        "patient_link",
    }
]


def test_an_unverified_clinician_is_sent_to_the_code_page_from_every_page(clinician):
    with_device(clinician)
    client = Client()
    assert password_login(client, "clin_user").status_code == 302
    assert len(ASKS_FOR_A_CODE) > 30
    for _name, path in ASKS_FOR_A_CODE:
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 302, f"{method.__name__.upper()} {path}"
            assert response.url.startswith(reverse("otp_verify") + "?next="), path


def test_a_wrong_code_is_refused_and_the_right_one_lets_the_clinician_in(clinician):
    device = with_device(clinician)
    client = Client()
    password_login(client, "clin_user")
    verify = reverse("otp_verify") + "?next=/diary/"
    page = client.get(verify)
    assert page.status_code == 200
    assert "Enter the 6-digit code" in page.content.decode()
    wrong = client.post(verify, {"code": other_code(current_code(device.bin_key))})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert client.get(reverse("home")).status_code == 302
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=2)):
        right = client.post(verify, {"code": current_code(device.bin_key)})
        assert right.status_code == 302
        assert right.url == "/diary/"
        home = client.get(reverse("home"))
    assert home.status_code == 200
    assert home.wsgi_request.user.is_verified()


def test_wrong_codes_in_a_row_are_slowed_down(clinician):
    device = with_device(clinician)
    client = Client()
    password_login(client, "clin_user")
    verify = reverse("otp_verify")
    with time_machine.travel(timezone.now(), tick=False):
        client.post(verify, {"code": other_code(current_code(device.bin_key))})
        right_too_soon = client.post(verify, {"code": current_code(device.bin_key)})
    assert "Too many wrong codes" in right_too_soon.content.decode()
    assert client.get(reverse("home")).status_code == 302


def test_a_code_page_redirect_never_leaves_the_site(clinician):
    device = with_device(clinician)
    client = Client()
    password_login(client, "clin_user")
    response = client.post(
        reverse("otp_verify") + "?next=https://evil.example/",
        {"code": current_code(device.bin_key)},
    )
    assert response.status_code == 302
    assert response.url == reverse("home")


def test_someone_with_only_the_password_cannot_replace_the_authenticator(clinician):
    with_device(clinician)
    client = Client()
    password_login(client, "clin_user")
    response = client.get(reverse("otp_setup"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("otp_verify"))
    assert TOTPDevice.objects.filter(user=clinician).count() == 1


def test_front_desk_logs_in_with_the_password_alone(front_desk):
    client = Client()
    password_login(client, "fd_user")
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("patient_list")).status_code == 200


def test_a_manager_needs_the_code_for_the_admin_too(manager):
    with_device(manager)
    client = Client()
    password_login(client, "mgr_user", url=reverse("admin:login"))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("otp_verify"))


@pytest.mark.parametrize(("debug", "lands_on"), [(True, 200), (False, 302)])
def test_demo_logins_skip_the_code_only_with_debug_on(settings, django_user_model, debug, lands_on):
    make_user(django_user_model, "clinician", CLINICIAN)
    settings.DEBUG = debug
    client = Client()
    password_login(client, "clinician")
    response = client.get(reverse("home"))
    assert response.status_code == lands_on
    if not debug:
        assert response.url.startswith(reverse("otp_setup"))


def test_a_manager_resets_a_clinicians_authenticator_in_the_admin(clinician, manager_client):
    device = with_device(clinician)
    changelist = reverse("admin:otp_totp_totpdevice_changelist")
    page = manager_client.get(changelist).content.decode()
    assert "clin_user" in page
    change = manager_client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert change.status_code == 200
    assert device.key not in change.content.decode()  # the secret is never shown
    response = manager_client.post(
        changelist, {"action": "reset_authenticator", "_selected_action": [device.pk]}, follow=True
    )
    assert "Authenticator reset: clin_user sets up a new one at their next login" in (
        response.content.decode()
    )
    assert not TOTPDevice.objects.filter(user=clinician).exists()
    client = Client()
    password_login(client, "clin_user")
    assert client.get(reverse("home")).url.startswith(reverse("otp_setup"))


def test_a_manager_cannot_reset_another_managers_authenticator(manager_client, django_user_model):
    other = make_user(django_user_model, "mgr_two", MANAGER)
    device = with_device(other)
    manager_client.post(
        reverse("admin:otp_totp_totpdevice_changelist"),
        {"action": "reset_authenticator", "_selected_action": [device.pk]},
    )
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_manager_cannot_give_anyone_an_authenticator_with_a_known_key(manager_client):
    assert manager_client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403


# --- 3. passwords -------------------------------------------------------------------------------


def test_passwords_need_twelve_characters_and_must_not_be_common():
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Xk7#pq2!mzW")
    with pytest.raises(ValidationError, match="too common"):
        validate_password("password1234")
    validate_password("harbour-lamp-ferry")
    validate_password("cicatrix-demo")


# --- 4. idle timeout and expiry at browser close ------------------------------------------------


def test_the_session_ends_when_the_browser_closes():
    assert django_settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_fifteen_idle_minutes_log_the_user_out_with_a_message(front_desk):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        password_login(client, "fd_user")
        assert client.get(reverse("home")).status_code == 200
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(reverse("home")).status_code == 200
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(reverse("home")).status_code == 200  # 14 minutes since the last page
        clock.shift(dt.timedelta(minutes=15, seconds=1))
        response = client.get(reverse("patient_list"), follow=True)
    assert response.redirect_chain[0][0] == f"{reverse('login')}?next=/patients/"
    assert "You were logged out after 15 minutes without activity" in response.content.decode()
    assert client.get(reverse("home")).status_code == 302


def test_the_idle_timeout_is_a_setting(settings, front_desk):
    settings.IDLE_TIMEOUT_MINUTES = 5
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        password_login(client, "fd_user")
        clock.shift(dt.timedelta(minutes=5, seconds=1))
        response = client.get(reverse("home"), follow=True)
    assert "You were logged out after 5 minutes without activity" in response.content.decode()


def test_every_page_tells_the_warning_script_the_timeout(front_desk):
    client = Client()
    password_login(client, "fd_user")
    page = client.get(reverse("home")).content.decode()
    assert 'data-idle-timeout="900"' in page
    assert f'data-session-status-url="{reverse("session_status")}"' in page
    assert re.search(r'<script src="[^"]*js/idle-timeout\.js" defer></script>', page)


def test_asking_how_long_is_left_is_not_activity_but_staying_is(front_desk):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        password_login(client, "fd_user")
        clock.shift(dt.timedelta(minutes=13))
        status = client.get(reverse("session_status"))
        assert status.json() == {"seconds_left": 120}
        clock.shift(dt.timedelta(minutes=1))
        assert client.get(reverse("session_status") + "?stay=1").json() == {"seconds_left": 900}
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(reverse("home")).status_code == 200


def test_the_account_page_says_when_the_authenticator_was_set_up(clinician_client):
    page = clinician_client.get(reverse("account")).content.decode()
    assert "Authenticator app" in page and "Set up on" in page


def test_the_account_page_tells_front_desk_no_authenticator_is_needed(front_desk_client):
    page = front_desk_client.get(reverse("account")).content.decode()
    assert "Not needed for your role" in page
