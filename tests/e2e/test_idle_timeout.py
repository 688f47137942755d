"""The idle-logout warning in a real browser (static/js/idle-timeout.js)."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_notice_counts_down_to_the_idle_logout_and_staying_restarts_it(
    settings, login, front_desk, live_server
):
    # One minute: shorter than the two-minute warning, so the notice shows at once.
    settings.IDLE_TIMEOUT_MINUTES = 1
    page = login("fd_user", PASSWORD)
    notice = page.locator("#idle-warning")
    expect(notice).to_contain_text(re.compile(r"You will be logged out in 0:[0-5]\d"), timeout=5000)
    page.wait_for_timeout(3000)
    expect(notice).to_contain_text(re.compile(r"in 0:(5[0-7]|[0-4]\d) without activity"))
    page.get_by_role("button", name="Stay logged in").click()
    expect(notice).to_contain_text(re.compile(r"in (1:00|0:59|0:58) without activity"))


def test_a_clinician_sets_up_an_authenticator_at_first_login(login, clinician, live_server):
    page = login("clin_user", PASSWORD)  # the fixture scans the key and types the code
    expect(page.get_by_text("Your authenticator app is set up.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Today")
