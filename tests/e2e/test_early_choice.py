"""A choice made before the page's script has run still takes effect.

On a busy day (or a slow tablet) the select is on screen before the deferred behaviours.js
has run; a clinician who picks an instrument at once must still get that instrument's form.
CI once failed this way: the change event fired before the listener existed and nothing
happened."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.factories import PatientFactory, ScarSiteFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_instrument_chosen_before_the_script_runs_still_switches_the_form(
    login, clinician, live_server
):
    patient = PatientFactory(first_name="Ottilie", last_name="Brackenbury")
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    page = login("clin_user", PASSWORD)

    # Hold behaviours.js back until the choice has been made.
    held = []

    def hold(route):
        held.append(route)

    page.route("**/js/behaviours*.js", hold)
    page.goto(
        f"{live_server.url}/patients/{patient.pk}/sites/{site.pk}/assess/",
        wait_until="commit",  # deferred scripts hold DOMContentLoaded back
    )
    page.get_by_label("Instrument").select_option("gb_qualitative")
    assert held, "the script was requested and held"
    for route in held:
        route.continue_()

    expect(page.get_by_label("Grade")).to_be_visible()
    assert "instrument=gb_qualitative" in page.url


def test_a_page_whose_choice_is_untouched_is_not_submitted_again(
    login, front_desk, clinician, live_server
):
    # Today's clinician filter marks no option selected for the front desk's "Everyone": the
    # first option is the page's own choice, not a change to submit.
    page = login("fd_user", PASSWORD)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_server.url}/")
    expect(page.get_by_label("Clinician")).to_have_value("")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert not [url for url in requests if "clinician=" in url]
