"""The seed's seven treatments and the default safety rule settings (plans/catalogue.py)."""

from django.db import migrations

from plans.catalogue import ensure_catalogue


def load(apps, schema_editor):
    ensure_catalogue(apps)


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial"), ("patients", "0002_scar_types")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
