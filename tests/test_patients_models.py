"""Patients, their dated flags and consents, acne records and scar sites."""

from datetime import date, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from clinic.roles import CLINICIAN
from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite
from plans import services
from tests.factories import (
    AcneActivityFactory,
    ConsentFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    UserFactory,
    db_refuses,
)

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)


# --- patients ------------------------------------------------------------------------------


def test_record_numbers_are_unique():
    PatientFactory(record_number="CX-000123")

    with db_refuses():
        PatientFactory(record_number="CX-000123")


def test_a_duplicate_record_number_is_reported_by_full_clean():
    PatientFactory(record_number="CX-000123")
    twin = PatientFactory.build(record_number="CX-000123")

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert caught.value.message_dict == {
        "record_number": ["Patient with this Record number already exists."]
    }


@pytest.mark.parametrize("value", [0, 7, 12])
def test_the_database_refuses_a_fitzpatrick_type_outside_one_to_six(value):
    patient = PatientFactory(fitzpatrick_type=3)

    with db_refuses():
        Patient.objects.filter(pk=patient.pk).update(fitzpatrick_type=value)

    patient.refresh_from_db()
    assert patient.fitzpatrick_type == 3


@pytest.mark.parametrize("value", [None, 1, 6])
def test_fitzpatrick_types_one_to_six_or_unknown_are_stored(value):
    patient = PatientFactory(fitzpatrick_type=value)

    patient.refresh_from_db()
    assert patient.fitzpatrick_type == value


def test_full_clean_reports_a_wrong_fitzpatrick_type_on_its_field():
    patient = PatientFactory.build(fitzpatrick_type=7)

    with pytest.raises(ValidationError) as caught:
        patient.full_clean()

    assert list(caught.value.message_dict) == ["fitzpatrick_type"]


def test_the_fitzpatrick_constraint_message_names_the_allowed_types():
    patient = PatientFactory.build(fitzpatrick_type=7)

    with pytest.raises(ValidationError) as caught:
        patient.validate_constraints()

    assert caught.value.messages == ["Fitzpatrick skin type must be I to VI (1-6)."]


def test_a_date_of_birth_in_the_future_is_refused():
    with time_machine.travel(date(2026, 3, 10), tick=False):
        patient = PatientFactory.build(date_of_birth=date(2026, 3, 11))
        with pytest.raises(ValidationError) as caught:
            patient.full_clean()

    assert caught.value.message_dict == {
        "date_of_birth": ["Date of birth cannot be in the future."]
    }


def test_archiving_keeps_the_row_but_hides_it_from_active_lists():
    kept = PatientFactory()
    gone = PatientFactory()

    gone.archive()

    assert Patient.objects.filter(pk=gone.pk).exists()
    assert gone.is_archived
    assert list(Patient.objects.active()) == [kept]
    assert list(Patient.objects.archived()) == [gone]


def test_archiving_twice_keeps_the_first_archive_time():
    patient = PatientFactory()
    with time_machine.travel("2026-03-10 10:00Z", tick=False):
        patient.archive()
    with time_machine.travel("2026-04-10 10:00Z", tick=False):
        patient.archive()

    patient.refresh_from_db()
    assert patient.archived_at.date() == date(2026, 3, 10)


# --- search ----------------------------------------------------------------------------------


@pytest.fixture
def people():
    return {
        "ann": PatientFactory(
            record_number="CX-000101",
            first_name="Annika",
            last_name="Thornbury",
            date_of_birth=date(1991, 5, 4),
        ),
        "bo": PatientFactory(
            record_number="CX-000102",
            first_name="Bodil",
            last_name="Annesley",
            date_of_birth=date(1988, 12, 30),
        ),
        "cy": PatientFactory(
            record_number="CX-001010",
            first_name="Cyprian",
            last_name="Marwood",
            date_of_birth=date(1991, 4, 5),
        ),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CX-000101", {"ann"}),
        ("cx-000102", {"bo"}),
        ("  CX-001010  ", {"cy"}),
        ("CX-0001", set()),  # a record number matches exactly, not by prefix
        ("ann", {"ann", "bo"}),  # Annika, Annesley
        ("ann thorn", {"ann"}),
        ("Thorn Ann", {"ann"}),
        ("bod ann", {"bo"}),
        ("ann mar", set()),
        ("wood", set()),  # names match from their start
        ("1991-05-04", {"ann"}),
        ("04/05/1991", {"ann"}),
        ("05/04/1991", {"cy"}),  # day first
        ("30/12/1988", {"bo"}),
        ("1975-01-01", set()),
        ("Quentin", set()),
    ],
)
def test_search_finds_patients_by_number_names_or_date_of_birth(people, text, expected):
    found = set(Patient.objects.search(text))

    assert found == {people[key] for key in expected}


@pytest.mark.parametrize("text", ["", "   ", None])
def test_an_empty_search_lists_everyone(people, text):
    assert Patient.objects.search(text).count() == 3


def test_search_chains_with_active(people):
    people["ann"].archive()

    assert list(Patient.objects.active().search("ann")) == [people["bo"]]


# --- acne activity -------------------------------------------------------------------------


def test_acne_level_on_a_day_is_the_latest_record_on_or_before_it():
    patient = PatientFactory()
    AcneActivityFactory(patient=patient, recorded_on=date(2026, 1, 1), level="moderate")
    AcneActivityFactory(patient=patient, recorded_on=date(2026, 2, 1), level="none")
    AcneActivityFactory(patient=patient, recorded_on=date(2026, 3, 1), level="severe")
    AcneActivityFactory(recorded_on=date(2026, 2, 15), level="severe")  # someone else

    assert patient.acne_level_on(date(2025, 12, 31)) == ""
    assert patient.acne_level_on(date(2026, 1, 1)) == "moderate"
    assert patient.acne_level_on(date(2026, 1, 31)) == "moderate"
    assert patient.acne_level_on(date(2026, 2, 1)) == "none"
    assert patient.acne_level_on(date(2026, 2, 28)) == "none"
    assert patient.acne_level_on(date(2026, 3, 1)) == "severe"


def test_the_later_of_two_records_on_one_day_wins():
    patient = PatientFactory()
    AcneActivityFactory(patient=patient, recorded_on=DAY, level="mild")
    AcneActivityFactory(patient=patient, recorded_on=DAY, level="none")

    assert patient.acne_level_on(DAY) == "none"


@pytest.mark.parametrize(("level", "active"), [("none", False), ("mild", True), ("severe", True)])
def test_acne_is_active_unless_recorded_as_none(level, active):
    assert AcneActivity(level=level).is_active is active


# --- medical flags -------------------------------------------------------------------------


def test_the_database_refuses_a_flag_that_ends_before_it_starts():
    with db_refuses():
        MedicalFlagFactory(started_on=DAY, ended_on=DAY - timedelta(days=1))


def test_full_clean_explains_a_flag_that_ends_before_it_starts():
    flag = MedicalFlagFactory.build(
        patient=PatientFactory(), started_on=DAY, ended_on=DAY - timedelta(days=1)
    )

    with pytest.raises(ValidationError) as caught:
        flag.full_clean()

    assert caught.value.message_dict == {
        "ended_on": ["The end date must be on or after the start date."]
    }


@pytest.mark.parametrize(("started", "ended"), [(DAY, DAY), (None, DAY), (DAY, None), (None, None)])
def test_flags_may_start_and_end_on_one_day_or_be_open_ended(started, ended):
    flag = MedicalFlagFactory(started_on=started, ended_on=ended)

    flag.full_clean()
    assert MedicalFlag.objects.filter(pk=flag.pk).exists()


@pytest.mark.parametrize(
    ("started", "ended", "day", "active"),
    [
        (DAY, DAY + timedelta(days=30), DAY - timedelta(days=1), False),
        (DAY, DAY + timedelta(days=30), DAY, True),
        (DAY, DAY + timedelta(days=30), DAY + timedelta(days=30), True),
        (DAY, DAY + timedelta(days=30), DAY + timedelta(days=31), False),
        (None, DAY, date(1990, 1, 1), True),
        (None, DAY, DAY + timedelta(days=1), False),
        (DAY, None, DAY - timedelta(days=1), False),
        (DAY, None, date(2099, 1, 1), True),
        (None, None, DAY, True),
    ],
)
def test_a_flag_is_active_from_its_start_through_its_end_day(started, ended, day, active):
    flag = MedicalFlag(kind=MedicalFlag.Kind.PREGNANCY, started_on=started, ended_on=ended)

    assert flag.active_on(day) is active


# --- consents ------------------------------------------------------------------------------


def test_the_database_refuses_a_consent_withdrawn_before_it_was_signed():
    with db_refuses():
        ConsentFactory(signed_on=DAY, withdrawn_on=DAY - timedelta(days=1))


def test_full_clean_explains_a_consent_withdrawn_before_it_was_signed():
    consent = ConsentFactory.build(
        patient=PatientFactory(), signed_on=DAY, withdrawn_on=DAY - timedelta(days=1)
    )

    with pytest.raises(ValidationError) as caught:
        consent.full_clean()

    assert caught.value.message_dict == {
        "withdrawn_on": ["The withdrawal date must be on or after the signing date."]
    }


@pytest.mark.parametrize(
    ("withdrawn", "day", "in_force"),
    [
        (None, DAY - timedelta(days=1), False),
        (None, DAY, True),
        (None, date(2099, 1, 1), True),
        (DAY + timedelta(days=10), DAY + timedelta(days=9), True),
        (DAY + timedelta(days=10), DAY + timedelta(days=10), False),
        (DAY + timedelta(days=10), DAY + timedelta(days=11), False),
        (DAY, DAY, False),  # signed and withdrawn the same day: never in force
    ],
)
def test_a_consent_is_in_force_from_signing_until_the_day_it_is_withdrawn(withdrawn, day, in_force):
    consent = Consent(kind=Consent.Kind.TREATMENT, signed_on=DAY, withdrawn_on=withdrawn)

    assert consent.in_force_on(day) is in_force


# --- scar sites ----------------------------------------------------------------------------


def test_a_patient_has_one_open_scar_site_per_body_site():
    site = ScarSiteFactory(body_site="left_cheek")

    with db_refuses():
        ScarSiteFactory(patient=site.patient, body_site="left_cheek")


def test_full_clean_explains_a_second_open_scar_site_on_one_body_site():
    site = ScarSiteFactory(body_site="chin")
    twin = ScarSite(patient=site.patient, body_site="chin")

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert caught.value.messages == ["This patient already has a scar site there."]


def test_an_archived_scar_site_leaves_its_body_site_free():
    old = ScarSiteFactory(body_site="chin")
    old.archive()

    new = ScarSite(patient=old.patient, body_site="chin")
    new.full_clean()
    new.save()

    assert set(old.patient.scar_sites.filter(body_site="chin")) == {old, new}
    assert list(ScarSite.objects.active().filter(patient=old.patient)) == [new]


def test_scar_sites_have_the_archivable_active_and_archived_lists():
    kept = ScarSiteFactory(body_site="chin")
    gone = ScarSiteFactory(patient=kept.patient, body_site="nose")
    gone.archive()

    assert list(ScarSite.objects.active()) == [kept]
    assert list(ScarSite.objects.archived()) == [gone]


def test_two_patients_may_each_have_a_scar_site_on_the_same_body_site():
    ScarSiteFactory(body_site="upper_back")
    ScarSiteFactory(body_site="upper_back")

    assert ScarSite.objects.filter(body_site="upper_back").count() == 2


def test_scar_types_are_attached_by_code():
    site = ScarSiteFactory(scar_types=["rolling", "boxcar"])

    assert sorted(site.scar_types.values_list("code", flat=True)) == ["boxcar", "rolling"]
    assert all(t.is_atrophic for t in site.scar_types.all())


# --- history -------------------------------------------------------------------------------


def test_a_change_keeps_the_earlier_version_in_history():
    patient = PatientFactory(phone="0100 000 000")
    patient.phone = "0100 999 999"
    patient.save()

    assert [h.phone for h in patient.history.order_by("history_id")] == [
        "0100 000 000",
        "0100 999 999",
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: PatientFactory.build(),
        lambda: AcneActivityFactory.build(patient=PatientFactory(), level="mild"),
        lambda: MedicalFlagFactory.build(patient=PatientFactory()),
        lambda: ConsentFactory.build(patient=PatientFactory()),
        lambda: ScarSiteFactory.build(patient=PatientFactory(), body_site="neck"),
    ],
    ids=["patient", "acne", "flag", "consent", "scar_site"],
)
def test_history_rows_record_the_user_when_a_service_saves(make):
    clinician = UserFactory(role=CLINICIAN)
    record = make()

    services._save(record, user=clinician)

    latest = record.history.first()
    assert latest.history_type == "+"
    assert latest.history_user == clinician
