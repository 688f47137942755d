"""Indexes for patient search on PostgreSQL (issue 12): the staff search compares
UPPER(name) LIKE 'word%' and UPPER(record_number) = ..., the admin UPPER(field) LIKE '%word%'.
Plain b-tree indexes on the columns serve neither. SQLite gets nothing: it has no operator
classes or trigram indexes, and its tables are small."""

from django.db import migrations

PATIENT = "patients_patient"

PREFIX_INDEXES = {  # staff search: prefix LIKE and equality on the upper-cased value
    "patient_upper_last_name_idx": "UPPER(last_name) text_pattern_ops",
    "patient_upper_first_name_idx": "UPPER(first_name) text_pattern_ops",
    "patient_upper_record_number_idx": "UPPER(record_number)",
}
# The admin's search ORs icontains over these fields: every one needs an index or the OR
# falls back to reading the whole table.
TRIGRAM_FIELDS = ("last_name", "first_name", "record_number", "email", "phone")


def _trigram_name(field):
    return f"patient_{field}_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension
    for name, expression in PREFIX_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {PATIENT} ({expression})")
    for field in TRIGRAM_FIELDS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_trigram_name(field)} ON {PATIENT} "
            f"USING gin (UPPER({field}) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*PREFIX_INDEXES, *map(_trigram_name, TRIGRAM_FIELDS)]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("patients", "0006_record_access")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
