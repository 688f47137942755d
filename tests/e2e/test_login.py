import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_clinician_logs_in_through_the_login_page_and_out_again(login, clinician, live_server):
    page = login("clin_user", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Today")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_server.url}/login/")


def test_a_wrong_password_keeps_the_user_on_the_login_page(login, clinician, live_server):
    page = login("clin_user", "not-the-password")
    expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()
    expect(page.get_by_label("Username")).to_have_value("clin_user")


def test_pages_load_no_resource_from_outside_the_app(login, clinician, live_server):
    requested = []
    page = login("clin_user", PASSWORD)
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/")
    assert any(url.endswith("bootstrap.min.css") for url in requested)
    outside = [url for url in requested if not url.startswith(live_server.url)]
    assert outside == []
