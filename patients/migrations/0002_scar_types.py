from django.db import migrations

SCAR_TYPES = [
    # code, name, group, description
    ("hypertrophic", "Hypertrophic", "raised", "Extra layers of scar tissue on top of the skin."),
    ("keloid", "Keloid", "raised", "Shiny, smooth growth of scar tissue beyond the wound."),
    ("icepick", "Atrophic: icepick", "atrophic", "Narrow, deep, puncture-like."),
    ("boxcar", "Atrophic: boxcar", "atrophic", "Wide, sharp-edged depression."),
    ("rolling", "Atrophic: rolling", "atrophic", "Wavy, sloping depressions."),
    (
        "macular",
        "Macular / post-inflammatory mark",
        "flat",
        "Flat red or brown mark: colour, not contour.",
    ),
]


def add_scar_types(apps, schema_editor):
    ScarType = apps.get_model("patients", "ScarType")
    for order, (code, name, group, description) in enumerate(SCAR_TYPES):
        ScarType.objects.update_or_create(
            code=code,
            defaults={"name": name, "group": group, "description": description, "order": order},
        )


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]
    operations = [migrations.RunPython(add_scar_types, migrations.RunPython.noop)]
