"""Safety rule settings are clinical governance: no list editing, a written reason and a
confirmation for every change, the reason in the history, and a switched-off block rule shown
to managers until it is on again."""

import html as html_lib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from plans import rule_governance
from plans.models import SafetyRuleSetting
from plans.rule_governance import Choice

pytestmark = pytest.mark.django_db

PREGNANCY = "pregnancy_salicylic"
ISOTRETINOIN = "isotretinoin_recent"


def rule(code):
    return SafetyRuleSetting.objects.get(rule=code)


def change_url(setting):
    return reverse("admin:plans_safetyrulesetting_change", args=[setting.pk])


def form_data(setting, **changes):
    """What the change page posts for the setting, with some fields changed."""
    values = {
        "action": setting.action,
        "enabled": setting.enabled,
        "window": "" if setting.window is None else setting.window,
        "change_reason": "",
        "_save": "Save",
    }
    values.update(changes)
    if values.pop("enabled"):
        values["enabled"] = "on"
    return values


def hidden_inputs(page):
    """The confirmation page's hidden fields, as the browser would post them back."""
    data = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", page):
        name = re.search(r'name="([^"]*)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag)
        if name != "csrfmiddlewaretoken":
            data[name] = html_lib.unescape(value.group(1)) if value else ""
    return data


def confirm(client, setting, **changes):
    """Submit the change, then press the confirmation page's confirm button."""
    page = client.post(change_url(setting), form_data(setting, **changes))
    assert page.status_code == 200
    return client.post(
        change_url(setting), {**hidden_inputs(page.content.decode()), "_confirm": "1"}
    )


# --- the list ------------------------------------------------------------------------------


def test_the_rule_list_has_no_editable_inputs(manager_client):
    page = manager_client.get(reverse("admin:plans_safetyrulesetting_changelist"))

    html = page.content.decode()
    assert page.status_code == 200
    assert "Salicylic acid in pregnancy" in html
    assert 'name="form-TOTAL_FORMS"' not in html
    assert not re.search(r'name="form-\d+-', html)
    assert 'name="_save"' not in html


def test_the_rule_list_shows_the_last_reason_and_who_changed_it(manager_client, manager):
    confirm(manager_client, rule(ISOTRETINOIN), window=3, change_reason="New guideline, 2026")

    html = manager_client.get(reverse("admin:plans_safetyrulesetting_changelist")).content.decode()

    assert "New guideline, 2026" in html
    assert str(manager) in html


# --- a change needs a reason and a confirmation --------------------------------------------


def test_a_change_without_a_reason_is_refused_naming_the_field(manager_client):
    setting = rule(PREGNANCY)

    page = manager_client.post(change_url(setting), form_data(setting, enabled=False))

    assert page.status_code == 200
    assert "The “reason for the change” is required" in page.content.decode()
    assert rule(PREGNANCY).enabled is True


def test_a_reason_of_only_spaces_is_no_reason(manager_client):
    setting = rule(PREGNANCY)

    page = manager_client.post(
        change_url(setting), form_data(setting, enabled=False, change_reason="   ")
    )

    assert "The “reason for the change” is required" in page.content.decode()
    assert rule(PREGNANCY).enabled is True


def test_a_change_with_a_reason_shows_the_confirmation_and_saves_nothing_yet(manager_client):
    setting = rule(PREGNANCY)
    history_before = setting.history.count()

    page = manager_client.post(
        change_url(setting), form_data(setting, enabled=False, change_reason="Audit asked")
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert "will no longer be checked" in html
    assert "no session will be blocked or warned for it" in html
    assert "pregnancy or breastfeeding" in html.lower()
    assert "Audit asked" in html
    assert hidden_inputs(html)["confirmed"]
    assert rule(PREGNANCY).enabled is True
    assert rule(PREGNANCY).history.count() == history_before


def test_block_to_warn_says_staff_can_go_ahead_without_an_override(manager_client):
    setting = rule(PREGNANCY)

    page = manager_client.post(
        change_url(setting), form_data(setting, action="warn", change_reason="Trial")
    )

    html = page.content.decode()
    assert "will warn instead of blocking" in html
    assert "staff can go ahead without a written override" in html


def test_a_window_change_names_the_old_and_new_window_with_its_unit(manager_client):
    setting = rule(ISOTRETINOIN)

    page = manager_client.post(
        change_url(setting), form_data(setting, window=3, change_reason="New guideline")
    )

    html = page.content.decode()
    assert "6 months" in html
    assert "3 months" in html
    assert rule(ISOTRETINOIN).window == 6


def test_a_confirmed_change_is_saved_with_its_reason_and_user_in_the_history(
    manager_client, manager
):
    response = confirm(
        manager_client, rule(PREGNANCY), enabled=False, change_reason="Supplier recall"
    )

    assert response.status_code == 302
    setting = rule(PREGNANCY)
    assert setting.enabled is False
    assert setting.change_reason == "Supplier recall"
    last = setting.history.order_by("-history_date", "-history_id").first()
    assert last.change_reason == "Supplier recall"
    assert last.enabled is False
    assert last.history_user == manager


def test_cancel_goes_back_to_the_form_with_the_values_kept(manager_client):
    setting = rule(ISOTRETINOIN)
    page = manager_client.post(
        change_url(setting), form_data(setting, window=4, change_reason="Checking the page")
    )

    back = manager_client.post(
        change_url(setting), {**hidden_inputs(page.content.decode()), "_cancel": "1"}
    )

    html = back.content.decode()
    assert back.status_code == 200
    assert re.search(r'name="window"[^>]*value="4"', html)
    assert "Checking the page" in html
    assert rule(ISOTRETINOIN).window == 6


def test_a_confirmation_for_other_values_asks_again(manager_client):
    setting = rule(PREGNANCY)
    page = manager_client.post(
        change_url(setting), form_data(setting, action="warn", change_reason="Trial")
    )
    tampered = {**hidden_inputs(page.content.decode()), "action": "inform", "_confirm": "1"}

    again = manager_client.post(change_url(setting), tampered)

    assert again.status_code == 200
    assert "will only inform instead of blocking" in again.content.decode()
    assert rule(PREGNANCY).action == "block"


def test_a_save_that_changes_nothing_needs_no_reason_and_adds_no_history(manager_client):
    setting = rule(PREGNANCY)
    history_before = setting.history.count()

    response = manager_client.post(change_url(setting), form_data(setting))

    assert response.status_code == 302
    assert rule(PREGNANCY).history.count() == history_before


@pytest.mark.parametrize(
    "changes",
    [
        {"action": "explode", "change_reason": "x"},
        {"window": "soon", "change_reason": "x"},
        {"window": "-3", "change_reason": "x"},
        {"window": "99999999999", "change_reason": "x"},
        {"rule": "active_breakout", "change_reason": "x", "window": 2},
    ],
)
def test_odd_input_is_answered_with_the_form_never_a_server_error(manager_client, changes):
    setting = rule(PREGNANCY)

    page = manager_client.post(change_url(setting), form_data(setting, **changes))

    assert page.status_code == 200
    assert rule(PREGNANCY).action == "block"
    assert rule(PREGNANCY).rule == PREGNANCY


def test_a_history_version_cannot_be_posted_back_past_the_confirmation(manager_client):
    confirm(manager_client, rule(PREGNANCY), action="warn", change_reason="Trial")
    setting = rule(PREGNANCY)
    version = setting.history.order_by("history_date", "history_id").first()
    url = reverse(
        "admin:plans_safetyrulesetting_simple_history", args=[setting.pk, version.history_id]
    )

    response = manager_client.post(url, form_data(setting, enabled=False, change_reason="x"))

    assert response.status_code in (403, 405)
    assert rule(PREGNANCY).enabled is True


def test_the_history_page_shows_who_and_why(manager_client, manager):
    confirm(manager_client, rule(PREGNANCY), action="warn", change_reason="Committee, 3 March")

    page = manager_client.get(
        reverse("admin:plans_safetyrulesetting_history", args=[rule(PREGNANCY).pk])
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert "Committee, 3 March" in html
    assert str(manager) in html


# --- a switched-off block rule is shown to managers -----------------------------------------


def switch_off(code):
    SafetyRuleSetting.objects.filter(rule=code).update(enabled=False)


def test_a_disabled_block_rule_shows_on_the_admin_index(manager_client):
    switch_off(PREGNANCY)

    html = manager_client.get(reverse("admin:index")).content.decode()

    assert "Salicylic acid in pregnancy" in html
    assert change_url(rule(PREGNANCY)) in html


def test_a_disabled_block_rule_shows_on_today_for_a_manager(manager_client):
    switch_off(PREGNANCY)

    html = manager_client.get(reverse("home")).content.decode()

    assert "Salicylic acid in pregnancy" in html
    assert change_url(rule(PREGNANCY)) in html


@pytest.mark.parametrize("client_fixture", ["clinician_client", "front_desk_client"])
def test_the_disabled_rule_alert_is_not_shown_to_clinicians_or_front_desk(request, client_fixture):
    switch_off(PREGNANCY)
    client = request.getfixturevalue(client_fixture)

    html = client.get(reverse("home")).content.decode()

    assert "disabled-block-rules" not in html
    assert change_url(rule(PREGNANCY)) not in html


def test_re_enabling_the_rule_removes_the_alert(manager_client):
    switch_off(PREGNANCY)
    saved = confirm(manager_client, rule(PREGNANCY), enabled=True, change_reason="Recall over")
    manager_client.get(saved.url)  # shows (and so clears) the "was changed" message

    assert rule(PREGNANCY).enabled is True
    # (The admin index still names the rule under "Recent actions".)
    assert "disabled-block-rules" not in manager_client.get(reverse("admin:index")).content.decode()
    today = manager_client.get(reverse("home")).content.decode()
    assert "disabled-block-rules" not in today
    assert "Salicylic acid in pregnancy" not in today


def test_the_alert_runs_as_many_queries_for_three_rules_as_for_one(manager_client):
    def queries_for_today():
        manager_client.get(reverse("home"))  # warm-up: session, permissions
        with CaptureQueriesContext(connection) as queries:
            html = manager_client.get(reverse("home")).content.decode()
        return len(queries), html

    switch_off(PREGNANCY)
    one, _ = queries_for_today()
    switch_off("active_breakout")
    switch_off("salicylate_allergy")
    three, html = queries_for_today()

    assert html.count("/admin/plans/safetyrulesetting/") == 3
    assert three == one


def test_a_disabled_warning_rule_is_not_an_alert(manager_client):
    switch_off(ISOTRETINOIN)

    assert "disabled-block-rules" not in manager_client.get(reverse("admin:index")).content.decode()


def test_a_block_rule_turned_to_warn_then_off_is_still_an_alert():
    SafetyRuleSetting.objects.filter(rule=PREGNANCY).update(action="warn", enabled=False)
    SafetyRuleSetting.objects.filter(rule=ISOTRETINOIN).update(action="block", enabled=False)

    codes = {setting.rule for setting in rule_governance.disabled_block_rules()}

    assert codes == {PREGNANCY, ISOTRETINOIN}


# --- the wording, without HTTP -------------------------------------------------------------


def test_switching_a_block_rule_off_says_what_is_no_longer_checked():
    lines = rule_governance.consequences(
        PREGNANCY, Choice("block", True, None), Choice("block", False, None)
    )

    assert lines[0].startswith("“Salicylic acid in pregnancy” will no longer be checked")


def test_switching_a_rule_on_again_says_it_is_checked_again():
    lines = rule_governance.consequences(
        PREGNANCY, Choice("block", False, None), Choice("block", True, None)
    )

    assert "will be checked again" in lines[0]


def test_a_shorter_window_says_fewer_sessions_are_flagged():
    lines = rule_governance.consequences(
        ISOTRETINOIN, Choice("warn", True, None), Choice("warn", True, 1)
    )

    assert lines == [
        "The time window changes from 6 months (the rule's default) to 1 month: "
        "a shorter window flags fewer sessions."
    ]


def test_no_change_has_no_consequences():
    same = Choice("warn", True, 6)

    assert rule_governance.consequences(ISOTRETINOIN, same, same) == []
