from django.db import migrations

from patients.reference import ensure_scar_types


def add_scar_types(apps, schema_editor):
    ensure_scar_types(apps)


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]
    operations = [migrations.RunPython(add_scar_types, migrations.RunPython.noop)]
