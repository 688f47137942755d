"""PostgreSQL's no-double-booking constraints (plans/0008, narrowed in plans/0024): each
refuses two held appointments that overlap on its resource, whatever the application did
before the write, and a session without the resource is neither refused nor indexed."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from clinic.models import Device, DeviceKind, Location, Room
from plans.models import Session
from tests.factories import TODAY, PlanFactory, SessionFactory, UserFactory, at

pytestmark = pytest.mark.django_db

RESOURCES = ("clinician", "room", "device", "patient")


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the exclusion constraints are PostgreSQL's; SQLite relies on the booking")


@pytest.fixture
def site():
    location = Location.objects.create(name="Overlap Street")
    kind = DeviceKind.objects.create(code="pdl-test", name="PDL (test)")
    return {
        "location": location,
        "rooms": [Room.objects.create(location=location, name=f"Room {n}") for n in (1, 2)],
        "devices": [
            Device.objects.create(location=location, kind=kind, name=f"Laser {n}") for n in (1, 2)
        ],
    }


def booked(site, n, *, start, share=None, with_device=True):
    """A held appointment at `site` whose resources are all its own (index n) except `share`,
    which it takes from appointment 0."""
    plan = site["first"].plan if share == "patient" else PlanFactory()
    resources = {
        "clinician": UserFactory(),
        "room": site["rooms"][n],
        "device": site["devices"][n] if with_device else None,
        "patient": plan.patient,
    }
    if share:
        resources[share] = getattr(site["first"], share)
    return SessionFactory(
        plan=plan,
        scheduled_at=start,
        ends_at=start + timedelta(minutes=30),
        location=site["location"],
        status=Session.Status.SCHEDULED,
        **resources,
    )


@pytest.mark.parametrize("resource", RESOURCES)
def test_each_constraint_refuses_an_overlap_on_its_own_resource(site, resource):
    start = at(TODAY, 10)
    site["first"] = booked(site, 0, start=start)
    refused = pytest.raises(IntegrityError, match=f"session_no_{resource}_overlap")
    with refused, transaction.atomic():
        booked(site, 1, start=start + timedelta(minutes=15), share=resource)
    # Back to back is no overlap: the ranges are half open.
    booked(site, 1, start=start + timedelta(minutes=30), share=resource)


def test_sessions_without_a_device_overlap_freely_and_stay_out_of_its_index(site):
    start = at(TODAY, 10)
    site["first"] = booked(site, 0, start=start, with_device=False)
    booked(site, 1, start=start, with_device=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'plans_session'::regclass AND contype = 'x'"
        )
        definitions = dict(cursor.fetchall())
    assert sorted(definitions) == sorted(f"session_no_{r}_overlap" for r in RESOURCES)
    for resource in RESOURCES:
        # NULL = NULL never clashes: indexing those rows only made every build and probe slower.
        assert f"{resource}_id IS NOT NULL" in definitions[f"session_no_{resource}_overlap"]
