"""Browser tests: Playwright drives the system Chromium against Django's live server."""

import os
import shutil
import time
from base64 import b32decode

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
# test itself (fixtures) are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: run `make test`, which installs it, or apt-get.")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_FLAGS}


def _authenticator_code(key, last_t=-1):
    """The code a person's authenticator app shows now (waiting out a step already used)."""
    from django_otp.oath import TOTP

    clock = TOTP(key)
    while clock.t() <= last_t:  # django-otp refuses a code twice; the app shows the next
        time.sleep(1)
        clock = TOTP(key)
    return f"{clock.token():06d}"


def enter_second_factor(page, username):
    """What a clinician or manager does after the password: set up the app, or type its code."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if "/account/authenticator/" in page.url:
        # First login: "scan" the key shown on the page into the app.
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.get_by_label("6-digit code").fill(_authenticator_code(b32decode(secret)))
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm and continue").click()
    elif "/account/code/" in page.url:
        device = TOTPDevice.objects.get(user__username=username, confirmed=True)
        page.get_by_label("6-digit code").fill(_authenticator_code(device.bin_key, device.last_t))
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()


@pytest.fixture
def login(page, live_server):
    """Log in through the real login page (and the authenticator code page) and return the page."""

    def _login(username, password):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        # Wait for the answer to the login POST: a test that acts on the page at once
        # (a reload, say) would otherwise race the navigation still in flight.
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        enter_second_factor(page, username)
        page.wait_for_load_state()
        return page

    return _login
