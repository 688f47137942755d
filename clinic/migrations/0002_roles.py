from django.db import migrations


def create_roles(apps, schema_editor):
    """Create the Front desk, Clinician and Manager groups.

    Their permissions come from clinic.roles.ROLE_PERMISSIONS, applied after every migrate
    (post_migrate), because other apps' permissions do not exist yet at this point.
    """
    Group = apps.get_model("auth", "Group")
    for name in ("Front desk", "Clinician", "Manager"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
