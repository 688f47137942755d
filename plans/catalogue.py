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


# What patients read about each treatment (issue 13): plain words, no citations. From the
# seed (treat active acne first; never lemon juice or baking soda; at-home acids as
# instructed) and DOMAIN.md's "Advice patients are given"; the manager edits them.
NEVER_LEMON = "Never put lemon juice or baking soda on your skin: they dry and damage it."
SUN = (
    "Protect the treated skin from the sun: a broad-spectrum sunscreen (SPF 30 or more) every day."
)
PATIENT_TEXT = {
    "aha": {
        "patient_name": "Alpha hydroxy acid (AHA) product at home",
        "patient_description": "A skin-care product that gently removes the top layer of dead "
        "skin, so that marks and rough patches look less noticeable.",
        "preparation_advice": "",
        "aftercare_advice": "",
        "home_care_advice": "Use the product as your clinician showed you, usually once a day.\n"
        "Stop and call us if your skin stings, burns or peels a lot.\n"
        f"{SUN}\n{NEVER_LEMON}",
    },
    "lactic_acid": {
        "patient_name": "Lactic acid product at home",
        "patient_description": "A mild acid product that can even out skin texture and lighten "
        "marks.",
        "preparation_advice": "",
        "aftercare_advice": "",
        "home_care_advice": "Use the product as instructed, starting slowly.\n"
        "Stop and call us if your skin becomes red or sore.\n"
        f"{SUN}\n{NEVER_LEMON}",
    },
    "salicylic_acid": {
        "patient_name": "Salicylic acid spot treatment at home",
        "patient_description": "A product that unclogs pores and calms swelling; used on small "
        "areas because it can dry the skin.",
        "preparation_advice": "",
        "aftercare_advice": "",
        "home_care_advice": "Apply only to the areas we agreed, as a spot treatment.\n"
        "It can dry and irritate the skin: use a plain moisturiser, and stop if it stings.\n"
        f"{NEVER_LEMON}",
    },
    "pulsed_dye_laser": {
        "patient_name": "Laser treatment for red, raised scars (pulsed-dye laser)",
        "patient_description": "Pulses of laser light calm the blood vessels in a raised scar, so "
        "that it becomes flatter, softer and less red.",
        "preparation_advice": "Come with clean skin: no make-up, cream or fake tan on the area.\n"
        "Avoid sunbathing and tanning in the 4 weeks before.\n"
        "Tell us if you have had cold sores, started new medicines or could be pregnant.",
        "aftercare_advice": "Bruising or redness for a few days is expected.\n"
        "Cool the area with a clean cold pack wrapped in cloth if it feels hot.\n"
        "Do not pick or rub the treated skin.\n"
        f"{SUN}",
        "home_care_advice": f"Use a gentle cleanser and moisturiser.\n{NEVER_LEMON}",
    },
    "cryotherapy": {
        "patient_name": "Cryotherapy (freezing)",
        "patient_description": "The scar is frozen for a few seconds at a time, so that the extra "
        "scar tissue shrinks. It often takes several visits.",
        "preparation_advice": "Come with clean skin on the area to be treated.\n"
        "Tell us if you have started new medicines.",
        "aftercare_advice": "A blister may form within a day: leave it alone, do not pop it.\n"
        "Keep the area clean and dry; cover it with a plain dressing if it rubs.\n"
        "Call us if the area becomes hot, swollen, very painful or weeps.",
        "home_care_advice": f"Do not pick scabs.\n{SUN}\n{NEVER_LEMON}",
    },
    "chemical_peel": {
        "patient_name": "Chemical peel",
        "patient_description": "A solution applied by your clinician removes the top layers of "
        "skin, so that smoother skin grows in their place.",
        "preparation_advice": "Treat any active spots first: tell us if you have a breakout.\n"
        "Stop retinoid creams (such as tretinoin or adapalene) 3 to 5 days before.\n"
        "No waxing, scrubs or hair removal on the area in the week before.",
        "aftercare_advice": "Wash with a gentle cleanser and lukewarm water only.\n"
        "Use a plain moisturiser several times a day.\n"
        "Do not pick or peel flaking skin, and no scrubs.\n"
        f"{SUN}",
        "home_care_advice": f"Restart retinoid creams only when we say.\n{NEVER_LEMON}",
    },
    "microneedling": {
        "patient_name": "Microneedling",
        "patient_description": "Very fine needles make tiny channels in the skin, which prompts "
        "it to make new collagen and fill out sunken scars.",
        "preparation_advice": "Treat any active spots first: tell us if you have a breakout.\n"
        "Stop retinoid creams 3 to 5 days before.\n"
        "Numbing cream may be put on when you arrive: allow an extra 30 minutes.",
        "aftercare_advice": "Redness like mild sunburn for a day or two is expected.\n"
        "No make-up for about a day.\n"
        "Gentle cleanser and plain moisturiser only; no acids or scrubs for a week.\n"
        f"Do not pick or scratch.\n{SUN}",
        "home_care_advice": f"{NEVER_LEMON}",
    },
}

# code: {parameter: (wording for patients with {value}, plain words for choice values)}
PARAMETER_WORDING = {
    "aha": {"product": ("{value}", ""), "concentration": ("{value}% strength", "")},
    "lactic_acid": {"concentration": ("{value}% strength", "")},
    "salicylic_acid": {
        "concentration": ("{value}% strength", ""),
        "area": ("used on: {value}", ""),
    },
    "cryotherapy": {"cycles": ("{value} freeze cycles", "")},
    "chemical_peel": {
        "agent": (
            "{value}",
            "glycolic = glycolic acid\nsalicylic = salicylic acid\nlactic = lactic acid\n"
            "mandelic = mandelic acid\ntca = trichloroacetic acid (TCA)\n"
            "jessner = Jessner's solution\nmix = a mix of acids",
        ),
        "layers": ("layers: {value}", ""),
    },
    "microneedling": {"needle_depth": ("needles {value} mm deep", "")},
}


def ensure_patient_texts(apps, codes):
    """Fill the patient wording and advice of the catalogue treatments `codes` where still
    empty: for treatments just created, and once by migration for existing ones (a manager's
    text is never overwritten)."""
    Treatment = apps.get_model("plans", "Treatment")
    TreatmentParameter = apps.get_model("plans", "TreatmentParameter")
    codes = set(codes) & PATIENT_TEXT.keys()
    for treatment in Treatment.objects.filter(code__in=codes):
        changed = [
            name
            for name, text in PATIENT_TEXT[treatment.code].items()
            if text and not getattr(treatment, name)
        ]
        for name in changed:
            setattr(treatment, name, PATIENT_TEXT[treatment.code][name])
        if changed:
            treatment.save(update_fields=changed)
    for code, wordings in PARAMETER_WORDING.items():
        if code not in codes:
            continue
        for parameter in TreatmentParameter.objects.filter(
            treatment__code=code, code__in=wordings, patient_wording=""
        ):
            parameter.patient_wording, parameter.patient_values = wordings[parameter.code]
            parameter.save(update_fields=["patient_wording", "patient_values"])
