"""Reference data every clinic starts with: the kinds of scar of DOMAIN.md."""

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


def ensure_scar_types(apps):
    """Create the scar types that are missing; existing rows are left as they are."""
    ScarType = apps.get_model("patients", "ScarType")
    for order, (code, name, group, description) in enumerate(SCAR_TYPES):
        ScarType.objects.get_or_create(
            code=code,
            defaults={"name": name, "group": group, "description": description, "order": order},
        )
