"""Existing sessions get an end (their treatment's length) and a clinician (their plan's); the
catalogue gets its appointment lengths and equipment; PostgreSQL gets the clash guarantee.

Sessions that existed before the appointment book have no location: they are not in the
exclusion constraints (which cover diary appointments, location set) until someone books
them into a slot, so an old double booking cannot stop the upgrade.
"""

from datetime import timedelta

import django.db.models.deletion  # noqa: F401
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery

import clinic.validators

HOLDS_TIME = "('scheduled', 'arrived', 'in_treatment', 'completed')"
RESOURCES = ("clinician_id", "room_id", "device_id", "patient_id")


def backfill(apps, schema_editor):
    from plans.catalogue import TREATMENTS, ensure_appointment_defaults

    ensure_appointment_defaults(apps, TREATMENTS)
    Session = apps.get_model("plans", "Session")
    Plan = apps.get_model("plans", "Plan")
    Treatment = apps.get_model("plans", "Treatment")
    Session.objects.filter(clinician__isnull=True).update(
        clinician=Subquery(Plan.objects.filter(pk=OuterRef("plan_id")).values("clinician")[:1])
    )
    # Longest treatment of the visit first, so that a combined visit gets the longer length.
    for treatment in Treatment.objects.order_by("duration_minutes"):
        Session.objects.filter(treatments__treatment=treatment).update(
            ends_at=F("scheduled_at") + timedelta(minutes=treatment.duration_minutes)
        )
    Session.objects.filter(ends_at__isnull=True).update(
        ends_at=F("scheduled_at") + timedelta(minutes=30)
    )
    HistoricalSession = apps.get_model("plans", "HistoricalSession")
    HistoricalSession.objects.filter(ends_at__isnull=True).update(
        ends_at=F("scheduled_at") + timedelta(minutes=30)
    )


def exclusion_sql(column):
    name = f"session_no_{column.removesuffix('_id')}_overlap"
    return (
        f"ALTER TABLE plans_session ADD CONSTRAINT {name} EXCLUDE USING gist "
        f"({column} WITH =, tstzrange(scheduled_at, ends_at, '[)') WITH &&) "
        f"WHERE (status IN {HOLDS_TIME} AND location_id IS NOT NULL)"
    ), f"ALTER TABLE plans_session DROP CONSTRAINT {name}"


def add_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in RESOURCES:
            schema_editor.execute(exclusion_sql(column)[0])


def drop_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in RESOURCES:
            schema_editor.execute(exclusion_sql(column)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0004_appointment_book_resources"),
        ("plans", "0007_appointment_book"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="session",
            name="ends_at",
            field=models.DateTimeField(
                validators=[clinic.validators.validate_clinic_date], verbose_name="ends"
            ),
        ),
        migrations.AlterField(
            model_name="historicalsession",
            name="ends_at",
            field=models.DateTimeField(
                validators=[clinic.validators.validate_clinic_date], verbose_name="ends"
            ),
        ),
        BtreeGistExtension(),
        migrations.RunPython(add_exclusions, drop_exclusions),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(fields=["room", "scheduled_at"], name="session_room_time_idx"),
        ),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(fields=["device", "scheduled_at"], name="session_device_time_idx"),
        ),
    ]
