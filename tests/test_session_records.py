"""Issue 10, points 1 and 2: consent before treatment, and session records that stay honest
when a busy clinician slips (a future session logged today, a course logged out of order, a
treatment logged with nothing filled in, a site left unscored)."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from patients.models import Consent
from plans import services
from plans.models import Session, TreatmentParameter
from tests.factories import (
    TODAY,
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    at,
    browser_form,
    course,
    frozen,
    make_plan,
    png_upload,
    treatment,
)

pytestmark = pytest.mark.django_db

CRYO_OK = {"method": "spray", "cycles": 2, "seconds": 15}


@pytest.fixture(autouse=True)
def pinned_clock(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


def cryo_plan(clinician, patient=None, **kwargs):
    """Cryotherapy x4 every 28 days from Mon 5 Jan 2026 (today)."""
    patient = patient or PatientFactory()
    site = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["hypertrophic"])
    return make_plan(
        user=clinician,
        patient=patient,
        sites=[site],
        courses=[course("cryotherapy", 4, every=28)],
        **kwargs,
    )


def nth(plan, n):
    return plan.sessions.order_by("scheduled_at")[n - 1]


def log(session, user, **kwargs):
    rows = session.treatments.all()
    return services.session_complete(
        session=session, user=user, parameters={row.pk: CRYO_OK for row in rows}, **kwargs
    )


# --- point 1: consent is a rule -------------------------------------------------------------


def test_activating_a_plan_for_a_patient_without_consent_is_blocked_by_the_consent_rule(
    clinician,
):
    patient = PatientFactory(consented=False)

    with pytest.raises(services.SafetyBlocked) as caught:
        cryo_plan(clinician, patient)

    rules = {c.finding.rule for c in caught.value.findings}
    assert rules == {"treatment_consent"}
    assert "No treatment consent is on file" in caught.value.findings[0].finding.message


def test_the_plan_preview_shows_the_consent_block_before_activation(clinician, clinician_client):
    patient = PatientFactory(consented=False)
    plan = cryo_plan(clinician, patient, activate=False)

    page = clinician_client.get(reverse("plan_detail", args=[plan.pk])).content.decode()

    assert "Treatment consent" in page
    assert "No treatment consent is on file" in page


@pytest.mark.parametrize(
    ("consent", "says"),
    [
        ({"withdrawn_on": date(2025, 12, 1)}, "withdrawn on 2025-12-01"),
        ({"expires_on": date(2025, 12, 31)}, "expired on 2025-12-31"),
        ({"signed_on": date(2026, 1, 10)}, "signed on 2026-01-10, after 2026-01-05"),
    ],
)
def test_a_consent_withdrawn_expired_or_not_yet_signed_on_the_day_blocks_logging(
    clinician, consent, says
):
    patient = PatientFactory()
    plan = cryo_plan(clinician, patient)
    patient.consents.all().delete()  # a test set-up shortcut: the app never deletes consents
    ConsentFactory(patient=patient, **({"signed_on": date(2025, 1, 2)} | consent))

    with pytest.raises(services.SafetyBlocked) as caught:
        log(nth(plan, 1), clinician)

    assert [c.finding.rule for c in caught.value.findings] == ["treatment_consent"]
    assert says in caught.value.findings[0].finding.message


def test_a_consent_expiring_before_a_later_session_blocks_that_session_only(clinician):
    patient = PatientFactory(consented=False)
    ConsentFactory(patient=patient, signed_on=date(2025, 6, 1), expires_on=date(2026, 1, 31))

    with pytest.raises(services.SafetyBlocked) as caught:
        cryo_plan(clinician, patient)

    blocked_days = sorted({c.on for c in caught.value.findings})
    assert blocked_days == [date(2026, 2, 2), date(2026, 3, 2), date(2026, 3, 30)]


def test_booking_an_extra_session_without_consent_is_blocked(clinician, manager):
    patient = PatientFactory()
    plan = cryo_plan(clinician, patient)
    patient.consents.update(withdrawn_on=date(2026, 1, 5))

    with pytest.raises(services.SafetyBlocked):
        services.session_book(
            course=plan.courses.get(), scheduled_at=at(date(2026, 5, 4), 10), user=clinician
        )


def test_a_home_treatment_needs_no_treatment_consent(clinician):
    patient = PatientFactory(consented=False)
    site = ScarSiteFactory(patient=patient, body_site="chin", scar_types=["rolling"])

    plan = make_plan(user=clinician, patient=patient, sites=[site], courses=[course("aha", 1)])

    assert plan.status == "active"


def test_a_photo_cannot_be_added_without_clinical_photography_consent(clinician):
    patient = PatientFactory()
    plan = cryo_plan(clinician, patient)
    site = plan.target_sites.get()

    with pytest.raises(ValidationError) as caught:
        log(nth(plan, 1), clinician, photos=[services.PhotoInput(site, png_upload())])

    assert "No clinical photography consent" in caught.value.message_dict["photo"][0]
    assert nth(plan, 1).status == Session.Status.SCHEDULED


def test_the_log_page_hides_the_photo_input_without_photography_consent(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    page = clinician_client.get(reverse("session_log", args=[nth(plan, 1).pk])).content.decode()

    assert "No clinical photography consent in force: photos cannot be added." in page
    assert 'type="file"' not in page


def test_consent_status_shows_on_the_patient_header_and_the_log_page(clinician, clinician_client):
    patient = PatientFactory()
    plan = cryo_plan(clinician, patient)
    ConsentFactory(
        patient=patient, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY, signed_on=date(2025, 3, 1)
    )
    patient.consents.filter(kind=Consent.Kind.CLINICAL_PHOTOGRAPHY).update(
        withdrawn_on=date(2025, 9, 1)
    )

    for url in (
        reverse("patient_detail", args=[patient.pk]),
        reverse("session_log", args=[nth(plan, 1).pk]),
    ):
        page = clinician_client.get(url).content.decode()
        assert "Treatment consent: in force (signed 2 Jan 2020)" in page
        assert "Clinical photography consent: not in force (withdrawn 1 Sep 2025)" in page


# --- point 2: honest session records --------------------------------------------------------


def test_the_service_refuses_a_future_session_without_the_confirmation(clinician):
    plan = cryo_plan(clinician)

    with pytest.raises(ValidationError) as caught:
        log(nth(plan, 4), clinician)

    assert caught.value.error_list[0].code in {"not_yet_due", "out_of_order"}
    assert nth(plan, 4).status == Session.Status.SCHEDULED


def test_a_future_session_logged_today_moves_to_today_and_keeps_its_booked_time(clinician):
    plan = cryo_plan(clinician)
    first = nth(plan, 1)
    log(first, clinician)
    second = nth(plan, 2)
    booked = second.scheduled_at

    log(second, clinician, performed_today=True)

    second.refresh_from_db()
    assert second.status == Session.Status.COMPLETED
    assert second.booked_for == booked
    assert timezone.localtime(second.scheduled_at).date() == TODAY
    assert second.clinician == clinician


def test_the_log_page_of_a_future_session_asks_first_and_names_its_booked_date(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    log(nth(plan, 1), clinician)
    second = nth(plan, 2)
    url = reverse("session_log", args=[second.pk])

    page = clinician_client.get(url).content.decode()

    assert "This session is booked for Monday 2 February 2026" in page
    assert "today, 5 January 2026" in page
    assert 'id="session-log"' not in page


def test_a_clinician_confirms_logs_a_future_session_and_is_offered_the_rest_of_the_course(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    log(nth(plan, 1), clinician)
    second, third = nth(plan, 2), nth(plan, 3)
    url = reverse("session_log", args=[second.pk]) + "?performed_today=1"
    form = browser_form(clinician_client.get(url), form_id="session-log")
    row = second.treatments.get()
    typed = {f"t{row.pk}-{k}": str(v) for k, v in CRYO_OK.items()}

    response = clinician_client.post(url, form | typed, follow=True)

    second.refresh_from_db()
    assert second.status == Session.Status.COMPLETED
    assert timezone.localtime(second.booked_for).date() == date(2026, 2, 2)
    assert response.redirect_chain[-1][0] == reverse("session_move", args=[third.pk])
    page = response.content.decode()
    assert "it had been booked for 2 Feb 2026" in page
    assert "Move the later sessions" in page


def test_the_main_log_action_is_offered_only_for_sessions_due_or_overdue(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    page = clinician_client.get(reverse("plan_detail", args=[plan.pk])).content.decode()

    first, later = nth(plan, 1), nth(plan, 2)
    first_log = reverse("session_log", args=[first.pk])
    later_log = reverse("session_log", args=[later.pk])
    assert f'class="btn btn-sm btn-primary" href="{first_log}"' in page
    assert f'class="btn btn-sm btn-primary" href="{later_log}"' not in page
    assert f'href="{later_log}"' in page  # still reachable, as a secondary "log early" link


def test_a_course_is_logged_in_order(clinician):
    plan = cryo_plan(clinician)
    with time_at(date(2026, 3, 2)), pytest.raises(ValidationError) as caught:
        log(nth(plan, 3), clinician)

    message = caught.value.messages[0]
    assert "Earlier sessions of this course (Mon 5 Jan 2026, Mon 2 Feb 2026)" in message
    assert "did not attend" in message and "cancel" in message
    assert nth(plan, 3).status == Session.Status.SCHEDULED


def test_a_session_after_a_missed_or_cancelled_one_can_be_logged(clinician):
    plan = cryo_plan(clinician)
    with time_at(date(2026, 3, 2)):
        services.session_mark_missed(session=nth(plan, 1), user=clinician)
        services.session_cancel(session=nth(plan, 2), user=clinician)
        log(nth(plan, 3), clinician)

    assert [s.status for s in plan.sessions.order_by("scheduled_at")] == [
        "missed",
        "cancelled",
        "completed",
        "scheduled",
    ]


def test_the_log_page_says_which_session_was_skipped_and_offers_to_mark_it(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    skipped = nth(plan, 1)
    with time_at(date(2026, 2, 2)):
        clinician_client.force_login(clinician)
        url = reverse("session_log", args=[nth(plan, 2).pk])
        page = clinician_client.get(url).content.decode()
        assert "An earlier session of this course (Mon 5 Jan 2026) is not logged yet" in page
        assert reverse("session_missed", args=[skipped.pk]) in page
        assert reverse("session_cancel", args=[skipped.pk]) in page

        response = clinician_client.post(
            reverse("session_missed", args=[skipped.pk]),
            {"next": url, "version": skipped.version},
        )

    assert response.url == url
    skipped.refresh_from_db()
    assert skipped.status == Session.Status.MISSED


def test_a_cancel_with_an_outside_next_goes_back_to_the_plan(clinician, clinician_client):
    plan = cryo_plan(clinician)
    response = clinician_client.post(
        reverse("session_cancel", args=[nth(plan, 4).pk]), {"next": "https://evil.example/"}
    )
    assert response.url == reverse("plan_detail", args=[plan.pk])


def test_a_treatment_with_only_optional_parameters_still_needs_one_of_them(clinician):
    cryo = treatment("cryotherapy")
    TreatmentParameter.objects.filter(treatment=cryo).update(required=False)
    plan = cryo_plan(clinician)
    session = nth(plan, 1)
    row = session.treatments.get()

    with pytest.raises(ValidationError) as caught:
        services.session_complete(session=session, user=clinician, parameters={row.pk: {}})

    assert (
        "record at least one treatment parameter"
        in caught.value.message_dict[f"params-{row.pk}"][0]
    )
    assert nth(plan, 1).status == Session.Status.SCHEDULED


def test_a_session_logged_without_a_score_warns_that_the_report_has_a_gap(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    session = nth(plan, 1)
    url = reverse("session_log", args=[session.pk])
    form = browser_form(clinician_client.get(url), form_id="session-log")
    row = session.treatments.get()
    typed = {f"t{row.pk}-{k}": str(v) for k, v in CRYO_OK.items()}

    response = clinician_client.post(url, form | typed, follow=True)

    session.refresh_from_db()
    assert session.status == Session.Status.COMPLETED
    assert "No outcome score for Chest: the report shows a gap" in response.content.decode()
    report = clinician_client.get(reverse("patient_report", args=[plan.patient_id]))
    assert "not scored" in report.content.decode()


def time_at(day):
    return frozen(day, 10)


def test_nothing_is_due_more_than_a_day_early_by_accident(clinician):
    """The confirmation is tied to today: a session of tomorrow is still 'early'."""
    plan = cryo_plan(clinician)
    log(nth(plan, 1), clinician)
    second = nth(plan, 2)
    services.session_reschedule(
        session=second, new_start=at(TODAY + timedelta(days=1), 11), user=clinician
    )
    with pytest.raises(ValidationError):
        log(nth(plan, 2), clinician)


def test_the_early_confirmation_also_says_when_an_earlier_session_is_open(
    clinician, clinician_client
):
    plan = cryo_plan(clinician)
    page = clinician_client.get(reverse("session_log", args=[nth(plan, 3).pk])).content.decode()

    assert "This session is booked for Monday 2 March 2026" in page
    assert "Earlier sessions of this course (Mon 5 Jan 2026, Mon 2 Feb 2026)" in page


def test_did_not_attend_without_the_session_version_changes_nothing(clinician, clinician_client):
    """Every write that has a version needs it: a replayed or scripted 'missed' is refused."""
    plan = cryo_plan(clinician)
    session = nth(plan, 1)
    response = clinician_client.post(reverse("session_missed", args=[session.pk]), follow=True)
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED
    assert "This form is out of date or incomplete" in response.content.decode()


def test_did_not_attend_with_an_old_version_changes_nothing(clinician, clinician_client):
    plan = cryo_plan(clinician)
    session = nth(plan, 1)
    stale = session.version
    Session.objects.filter(pk=session.pk).update(version=stale + 1)  # someone else saved it
    clinician_client.post(reverse("session_missed", args=[session.pk]), {"version": stale})
    session.refresh_from_db()
    assert session.status == Session.Status.SCHEDULED
