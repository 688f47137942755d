"""Issue 10, point 3: the clinician who logged a session (or a manager) amends it from the
session page with a written reason; the values before stay visible with who, when and why;
reports show the amended value marked "amended"; nothing is deleted."""

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from plans import services
from plans.models import Amendment, Assessment, Session, SessionPhoto
from tests.conftest import make_user
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    browser_form,
    course,
    frozen,
    make_plan,
    png_upload,
)

pytestmark = pytest.mark.django_db

CRYO_OK = {"method": "spray", "cycles": 2, "seconds": 15}
REASON = "Typed 2 cycles; the treatment sheet says 3."


@pytest.fixture(autouse=True)
def pinned_clock(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    with frozen():
        yield


@pytest.fixture
def logged(clinician):
    """Cryotherapy session 1 of 2 on Mon 5 Jan 2026, logged by `clinician` with a VSS of 8,
    a photo and a mild erythema."""
    patient = PatientFactory()
    ConsentFactory(patient=patient, kind="clinical_photography", signed_on=date(2025, 1, 1))
    site = ScarSiteFactory(patient=patient, body_site="chest", scar_types=["hypertrophic"])
    plan = make_plan(
        user=clinician, patient=patient, sites=[site], courses=[course("cryotherapy", 2, every=28)]
    )
    session = plan.sessions.order_by("scheduled_at").first()
    services.session_complete(
        session=session,
        user=clinician,
        parameters={row.pk: CRYO_OK for row in session.treatments.all()},
        assessments=[
            services.AssessmentInput(
                site, "vss", {"vascularity": 2, "pigmentation": 1, "pliability": 3, "height": 2}
            )
        ],
        adverse_events=[services.AdverseEventInput(kind="erythema", severity="mild")],
        photos=[services.PhotoInput(site, png_upload())],
        notes="Tolerated well.",
    )
    session.refresh_from_db()
    return session


def amend(session, user, **kwargs):
    return services.session_amend(session=session, user=user, reason=REASON, **kwargs)


def test_the_clinician_who_logged_it_amends_a_parameter_with_a_reason(logged, clinician):
    row = logged.treatments.get()

    amendment = amend(logged, clinician, parameters={row.pk: CRYO_OK | {"cycles": 3}})

    row.refresh_from_db()
    assert row.parameters["cycles"] == 3
    assert row.amended_at is not None
    assert amendment.changes == [
        {"what": "Cryotherapy: Freeze-thaw cycles", "before": "2", "after": "3"}
    ]
    assert (amendment.reason, amendment.amended_by) == (REASON, clinician)
    # The value before stays in the row's history, with who and why.
    latest, before = row.history.order_by("-history_date", "-history_id")[:2]
    assert before.parameters["cycles"] == 2
    assert latest.history_user == clinician
    assert latest.history_change_reason.startswith("Amended: Typed 2 cycles")


def test_a_score_is_amended_and_its_total_recomputed(logged, clinician):
    site = logged.plan.target_sites.get()
    items = {"vascularity": 3, "pigmentation": 1, "pliability": 3, "height": 2}

    amendment = amend(logged, clinician, assessments=[services.AssessmentInput(site, "vss", items)])

    score = Assessment.objects.get(session=logged, instrument="vss")
    assert score.total == 9 and score.amended_at is not None
    assert amendment.changes == [
        {"what": "Chest: Vancouver Scar Scale", "before": "8", "after": "9"}
    ]
    assert Assessment.objects.filter(session=logged).count() == 1


def test_notes_adverse_events_and_photos_are_amended_without_deleting_anything(logged, clinician):
    event = logged.adverse_events.get()
    photo = logged.photos.get()
    site = logged.plan.target_sites.get()

    amendment = amend(
        logged,
        clinician,
        notes="Tolerated well; mild sting.",
        withdraw_photos=[photo.pk],
        event_changes=[
            services.AdverseEventChange(event, "moderate", date(2026, 1, 5), "Settled by evening")
        ],
        adverse_events=[services.AdverseEventInput(kind="swelling", severity="mild")],
        photos=[services.PhotoInput(site, png_upload("again.png"))],
    )

    whats = [c["what"] for c in amendment.changes]
    assert "Clinical notes" in whats
    assert "Photo of Chest" in whats
    assert "Adverse event: Erythema (redness), severity" in whats
    assert "Adverse event: Swelling" in whats
    photo.refresh_from_db()
    assert photo.withdrawn_at is not None  # withdrawn, not deleted
    assert SessionPhoto.objects.filter(session=logged).count() == 2
    assert logged.adverse_events.count() == 2


def test_an_amendment_needs_a_reason_and_a_change(logged, clinician):
    row = logged.treatments.get()
    with pytest.raises(ValidationError) as caught:
        services.session_amend(
            session=logged, user=clinician, reason="  ", parameters={row.pk: CRYO_OK}
        )
    assert "reason" in caught.value.message_dict

    with pytest.raises(ValidationError) as caught:
        amend(logged, clinician, parameters={row.pk: CRYO_OK})
    assert "Nothing was changed" in caught.value.messages[0]
    assert not Amendment.objects.exists()


def test_an_invalid_amended_value_is_refused_with_its_range_and_nothing_changes(logged, clinician):
    row = logged.treatments.get()
    with pytest.raises(ValidationError) as caught:
        amend(logged, clinician, parameters={row.pk: CRYO_OK | {"cycles": 9}})
    assert "Freeze-thaw cycles must be from 1 to 3" in caught.value.messages[0]
    row.refresh_from_db()
    assert row.parameters["cycles"] == 2


def test_another_clinician_cannot_amend_but_a_manager_can(
    logged, django_user_model, manager, client
):
    other = make_user(django_user_model, "other-clinician", role="Clinician")
    row = logged.treatments.get()

    with pytest.raises(PermissionDenied):
        amend(logged, other, parameters={row.pk: CRYO_OK | {"cycles": 3}})
    client.force_login(other)
    assert client.get(reverse("session_amend", args=[logged.pk])).status_code == 403

    amend(logged, manager, parameters={row.pk: CRYO_OK | {"cycles": 3}})
    assert Amendment.objects.get().amended_by == manager


def test_front_desk_cannot_amend(logged, front_desk_client):
    url = reverse("session_amend", args=[logged.pk])
    assert front_desk_client.get(url).status_code == 403
    assert front_desk_client.post(url, {"reason": REASON}).status_code == 403


def test_a_session_not_yet_logged_cannot_be_amended(logged, clinician, clinician_client):
    later = logged.plan.sessions.get(status=Session.Status.SCHEDULED)
    assert clinician_client.get(reverse("session_amend", args=[later.pk])).status_code == 403


def test_amending_from_the_session_page_shows_both_values_and_the_report_marks_it(
    logged, clinician_client
):
    detail = reverse("session_detail", args=[logged.pk])
    assert (
        reverse("session_amend", args=[logged.pk]) in clinician_client.get(detail).content.decode()
    )
    url = reverse("session_amend", args=[logged.pk])
    form = browser_form(clinician_client.get(url), form_id="session-amend")
    row = logged.treatments.get()
    site = logged.plan.target_sites.get()
    assert form[f"t{row.pk}-cycles"] == "2"
    assert form[f"s{site.pk}-vss-vascularity"] == "2"

    response = clinician_client.post(
        url, form | {f"t{row.pk}-cycles": "3", "reason": REASON}, follow=True
    )

    assert response.redirect_chain[-1][0] == detail
    page = response.content.decode()
    assert REASON in page
    assert '<td class="before">2</td><td class="after">3</td>' in page
    report = clinician_client.get(reverse("patient_report", args=[logged.patient_id]))
    html = report.content.decode()
    assert "Freeze-thaw cycles 3" in html
    assert "(amended)" in html


def test_the_amend_form_keeps_everything_typed_when_the_reason_is_missing(logged, clinician_client):
    url = reverse("session_amend", args=[logged.pk])
    form = browser_form(clinician_client.get(url), form_id="session-amend")
    row = logged.treatments.get()

    response = clinician_client.post(url, form | {f"t{row.pk}-cycles": "3", "reason": ""})

    assert response.status_code == 200
    page = response.content.decode()
    assert "reason is required" in page
    assert browser_form(response, form_id="session-amend")[f"t{row.pk}-cycles"] == "3"
    assert not Amendment.objects.exists()


def test_the_amend_page_offers_few_valued_items_as_choices_with_the_logged_ones_checked(
    logged, clinician_client
):
    """As on the log page (issue 14): an item of a few values is a row of choices with its
    words, the value logged checked."""
    url = reverse("session_amend", args=[logged.pk])
    site = logged.plan.target_sites.get()
    page = clinician_client.get(url).content.decode()
    prefix = f"s{site.pk}"
    logged_value = f'id="id_{prefix}-vss-vascularity_3" value="2" checked'
    assert f'name="{prefix}-vss-vascularity" {logged_value}' in page
    assert f'type="number" name="{prefix}-vss-vascularity"' not in page
    assert '<span class="seg-value">3</span> <span class="seg-words">purple</span>' in page

    form = browser_form(clinician_client.get(url), form_id="session-amend")
    changed = {f"{prefix}-vss-vascularity": "3", f"{prefix}-gais_clinician": "2"}
    clinician_client.post(url, form | changed | {"reason": REASON})

    vss = Assessment.objects.get(session=logged, instrument="vss")
    assert vss.items == {"vascularity": 3, "pigmentation": 1, "pliability": 3, "height": 2}
    gais = Assessment.objects.get(session=logged, instrument="gais_clinician")
    assert (gais.total, gais.scar_site_id) == (2, site.pk)
