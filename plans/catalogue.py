"""The treatment catalogue of the seed (DOMAIN.md) and the default safety rule settings.

Course lengths and parameter ranges are "check" facts: data the manager edits in the admin.
`ensure_catalogue` only adds what is missing, never changes a row a manager edited; the
data migration uses it on a new database, and post_migrate after a flush (tests).
"""

ALL_ACNE = ["hypertrophic", "keloid", "icepick", "boxcar", "rolling", "macular"]

# code: (name, setting, category, peel_depth, salicylate, clear_skin, best_for,
#        default_sessions, default_interval_days, min_interval_days, description, staff_notes)
TREATMENTS = {
    "aha": (
        "Alpha hydroxy acids (AHA)",
        "home",
        "home_acid",
        "",
        False,
        False,
        ALL_ACNE,
        3,
        28,
        None,
        "Daily at-home acid product; reviewed in clinic.",
        "At-home treatments are a good start for a small number of shallow scars. "
        "Advise against lemon juice and baking soda on the skin (dryness, damage).",
    ),
    "lactic_acid": (
        "Lactic acid",
        "home",
        "home_acid",
        "",
        False,
        False,
        ALL_ACNE,
        3,
        28,
        None,
        "Mild lactic acid product at home (in-office lactic peels: use Chemical peel).",
        "Suits all acne scar types.",
    ),
    "salicylic_acid": (
        "Salicylic acid",
        "home",
        "home_acid",
        "",
        True,
        False,
        ALL_ACNE,
        3,
        28,
        None,
        "Salicylic acid spot treatment at home.",
        "Can dry and irritate the skin: start with a low concentration.",
    ),
    "pulsed_dye_laser": (
        "Pulsed-dye laser",
        "in_office",
        "vascular_laser",
        "",
        False,
        True,
        ["hypertrophic", "keloid"],
        4,
        42,
        28,
        "595 nm vascular laser for raised, red scars.",
        "Best for hypertrophic and keloid scars; typically 3-6 sessions every 4-8 weeks.",
    ),
    "cryotherapy": (
        "Cryotherapy",
        "in_office",
        "cryotherapy",
        "",
        False,
        False,
        ["hypertrophic", "keloid"],
        4,
        28,
        20,
        "Freezing raised scars: spray, contact or intralesional.",
        "For deep hypertrophic scars; often repeated several times, every 20-30 days.",
    ),
    "chemical_peel": (
        "Chemical peel",
        "in_office",
        "peel",
        "",
        False,
        True,
        ALL_ACNE,
        4,
        21,
        14,
        "In-office peel under dermatologist supervision; depth depends on the agent.",
        "One study: a single peel improved a scar's appearance by up to 90 percent. "
        "Combined with microneedling for the best results (e.g. Rana 2017).",
    ),
    "microneedling": (
        "Microneedling",
        "in_office",
        "microneedling",
        "",
        False,
        True,
        ["icepick", "boxcar", "rolling"],
        4,
        42,
        28,
        "Collagen induction with fine needles, for atrophic acne scars.",
        "Typically 4-6 sessions, 4-6 weeks apart. Treat active breakouts first.",
    ),
}

# code: [(param code, label, kind, unit, min, max, choices, required)]
PARAMETERS = {
    "aha": [
        ("product", "Product", "text", "", None, None, "", True),
        ("acid", "Acid", "choice", "", None, None, "glycolic,lactic,mandelic,citric,malic", True),
        ("concentration", "Concentration", "number", "%", 1, 30, "", True),
        ("ph", "pH", "number", "", 1, 7, "", False),
    ],
    "lactic_acid": [
        ("concentration", "Concentration", "number", "%", 1, 90, "", True),
        ("contact_time", "Contact time", "number", "min", 0, 30, "", False),
    ],
    "salicylic_acid": [
        ("concentration", "Concentration", "number", "%", 0.5, 30, "", True),
        ("area", "Area treated", "text", "", None, None, "", True),
    ],
    "pulsed_dye_laser": [
        ("wavelength", "Wavelength", "number", "nm", 585, 600, "", True),
        ("fluence", "Fluence", "number", "J/cm²", 3, 15, "", True),
        ("spot_size", "Spot size", "number", "mm", 3, 12, "", True),
        ("pulse_duration", "Pulse duration", "number", "ms", 0.45, 40, "", True),
        ("passes", "Passes", "number", "", 1, 3, "", True),
        ("cooling", "Cooling", "choice", "", None, None, "dynamic,cold air,contact,none", True),
    ],
    "cryotherapy": [
        ("method", "Method", "choice", "", None, None, "spray,contact,intralesional", True),
        ("cycles", "Freeze-thaw cycles", "number", "", 1, 3, "", True),
        ("seconds", "Seconds per cycle", "number", "s", 5, 60, "", True),
    ],
    "chemical_peel": [
        (
            "agent",
            "Agent",
            "choice",
            "",
            None,
            None,
            "glycolic,salicylic,lactic,mandelic,tca,jessner,mix",
            True,
        ),
        ("concentration", "Concentration", "number", "%", 1, 100, "", True),
        ("ph", "pH", "number", "", 0.5, 7, "", False),
        ("layers", "Layers", "number", "", 1, 6, "", True),
        ("contact_time", "Contact time", "number", "min", 0, 30, "", False),
        ("neutralised", "Neutralised", "yes_no", "", None, None, "", True),
        ("frost_level", "Frost level", "choice", "", None, None, "none,1,2,3", False),
    ],
    "microneedling": [
        ("device", "Device", "text", "", None, None, "", True),
        ("needle_depth", "Needle depth", "number", "mm", 0.25, 3, "", True),
        ("passes", "Passes", "number", "", 1, 10, "", True),
        ("serum", "Serum applied", "text", "", None, None, "", False),
    ],
}

RULE_SETTINGS = [
    ("treatment_consent", "block", None),
    ("active_breakout", "block", None),
    ("isotretinoin_recent", "warn", 6),
    ("pregnancy_salicylic", "block", None),
    ("salicylate_allergy", "block", None),
    ("fitzpatrick_pih", "warn", None),
    ("fitzpatrick_unassessed", "warn", None),
    ("keloid_history", "warn", None),
    ("anticoagulant", "warn", None),
    ("herpes_simplex", "inform", None),
    ("min_interval", "warn", None),
    ("peel_before_microneedling", "warn", 14),
]


# Equipment kinds the catalogue's treatments need (the manager adds more in the admin).
DEVICE_KINDS = {
    "pulsed_dye_laser": "Pulsed-dye laser",
    "cryotherapy_unit": "Cryotherapy unit",
}
# code: (appointment minutes, device kind). Home treatments are a regimen; their minutes are
# the length of a review visit in clinic. DOMAIN.md "The clinic's day" (check).
APPOINTMENTS = {
    "aha": (15, None),
    "lactic_acid": (15, None),
    "salicylic_acid": (15, None),
    "pulsed_dye_laser": (30, "pulsed_dye_laser"),
    "cryotherapy": (30, "cryotherapy_unit"),
    "chemical_peel": (45, None),
    "microneedling": (60, None),
}
# Appointments outside a plan, with their usual length in minutes.
VISIT_MINUTES = {"consultation": 30, "review": 15, "patch_test": 15, "photo": 15}


def ensure_visit_types(apps):
    """The usual lengths of appointments outside a plan, where missing (never overwritten)."""
    VisitType = apps.get_model("plans", "VisitType")
    for kind, minutes in VISIT_MINUTES.items():
        VisitType.objects.get_or_create(kind=kind, defaults={"minutes": minutes})


def ensure_appointment_defaults(apps, codes):
    """Device kinds, and the length and equipment of the catalogue treatments `codes`."""
    DeviceKind = apps.get_model("clinic", "DeviceKind")
    Treatment = apps.get_model("plans", "Treatment")
    kinds = {
        code: DeviceKind.objects.get_or_create(code=code, defaults={"name": name})[0]
        for code, name in DEVICE_KINDS.items()
    }
    for code in set(codes) & APPOINTMENTS.keys():
        minutes, kind = APPOINTMENTS[code]
        Treatment.objects.filter(code=code).update(
            duration_minutes=minutes, device_kind=kinds[kind] if kind else None
        )


def ensure_catalogue(apps):
    """Create the seed's treatments, their parameters and rule settings where missing; returns
    the codes of the treatments it created."""
    Treatment = apps.get_model("plans", "Treatment")
    TreatmentParameter = apps.get_model("plans", "TreatmentParameter")
    ScarType = apps.get_model("patients", "ScarType")
    SafetyRuleSetting = apps.get_model("plans", "SafetyRuleSetting")
    scar_types = {t.code: t for t in ScarType.objects.all()}
    created_codes = []
    for code, row in TREATMENTS.items():
        (name, setting, category, depth, salicylate, clear, best_for) = row[:7]
        (sessions, interval, minimum, description, notes) = row[7:]
        treatment, created = Treatment.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "setting": setting,
                "category": category,
                "peel_depth": depth,
                "contains_salicylate": salicylate,
                "needs_clear_skin": clear,
                "default_sessions": sessions,
                "default_interval_days": interval,
                "min_interval_days": minimum,
                "description": description,
                "staff_notes": notes,
            },
        )
        if not created:
            continue
        created_codes.append(code)
        treatment.best_for.set([scar_types[c] for c in best_for if c in scar_types])
        TreatmentParameter.objects.bulk_create(
            TreatmentParameter(
                treatment=treatment,
                code=pcode,
                label=label,
                kind=kind,
                unit=unit,
                min_value=low,
                max_value=high,
                choices=choices,
                required=required,
                order=order,
            )
            for order, (pcode, label, kind, unit, low, high, choices, required) in enumerate(
                PARAMETERS[code]
            )
        )
    for rule, action, window in RULE_SETTINGS:
        SafetyRuleSetting.objects.get_or_create(
            rule=rule, defaults={"action": action, "window": window}
        )
    return created_codes
