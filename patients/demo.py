"""Synthetic demo patients for `manage.py seed_demo` (called with the command's own rng).

Everything here is made up: names come from the small lists below, e-mails use example.org and
phone numbers the fictional 555-01xx range. The first patients are hand-made "stories" that a
demo user will click on (plans/demo.py gives them their plans); the rest are generated so that,
across the set, every sex, skin type, scar type, consent state, acne course and medical flag
occurs, and every safety rule has a patient it can fire for.

Fast at scale: objects are built in Python and inserted with bulk_create per model, in
dependency order, in chunks of patients, inside one transaction. No per-row save() or query.
"""

import time
import unicodedata
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import ManyToManyField
from django.utils import timezone
from simple_history.exceptions import NotHistoricalModelError
from simple_history.utils import bulk_create_with_history, get_history_manager_for_model

from clinic import bulkload
from patients.models import (
    AcneActivity,
    Consent,
    MedicalFlag,
    Patient,
    RecordNumberFormat,
    ScarSite,
    ScarType,
)

DEMO_PREFIX = "DEMO-"
DEMO_DIGITS = 5  # record_number(): DEMO-00001
# The story whose treatment consent is not in force (withdrawn days ago): her next sessions
# are blocked and a new plan waits in draft until she signs again. Every other demo patient
# has a treatment consent in force on every day they are treated.
NO_CONSENT_STORY = 13
# The story whose skin type is not yet assessed (Patient.fitzpatrick_type NULL).
UNASSESSED_STORY = 14
# Rows per INSERT. Django lowers it further on SQLite, whose statements take at most 999
# variables (SQLITE_LIMIT_VARIABLE_NUMBER in the builds Django supports): a 12-column model is
# then inserted ~83 rows at a time. PostgreSQL's limit (65535) is far above 2000 x columns.
BATCH_SIZE = 2000
# Patients built and inserted per round, so memory stays flat at 20,000 patients.
CHUNK = 2000

FIRST_NAMES = {
    "F": (
        "Amara", "Maya", "Hannah", "Sofia", "Priya", "Leila", "Aisha", "Mei", "Yuki", "Fatima",
        "Olivia", "Emma", "Zara", "Nadia", "Elena", "Grace", "Chiara", "Ana", "Mariam", "Keisha",
        "Rosa", "Lucía", "Freya", "Ifeoma", "Nia", "Sara", "Hana", "Isla", "Noor", "Thandiwe",
        "Valentina", "Ewa", "Saanvi", "Jia", "Marta", "Eilidh", "Imani", "Camille", "Ingrid",
        "Chloé",
    ),
    "M": (
        "Daniel", "Kwame", "Lucas", "Tomás", "Rafael", "Omar", "Arjun", "Kenji", "Mateo",
        "Samuel", "Liam", "Noah", "Ibrahim", "Wei", "Diego", "Felix", "Hugo", "Jonas", "Kofi",
        "Malik", "Nikolai", "Oscar", "Pavel", "Ravi", "Sipho", "Theo", "Viktor", "Yusuf", "Emeka",
        "Luca", "Andrés", "Finn", "Hamza", "Jun", "Aarav", "Marco", "Ethan", "Tariq", "Bruno",
        "Dev",
    ),
    "X": (
        "Alex", "Sam", "Jordan", "Robin", "Charlie", "Kai", "River", "Noa", "Sasha", "Ari",
        "Quinn", "Rowan", "Eden", "Jules", "Remy", "Sky",
    ),
}  # fmt: skip
LAST_NAMES = (
    "Osei", "Castellanos", "Whitfield", "Mensah", "Raman", "Ferreira", "Kowalski", "Marchetti",
    "Herrera", "Nguyen", "Dahl", "Costa", "Dubois", "Okonkwo", "Haddad", "Tanaka", "Petrov",
    "Novak", "Silva", "Moreau", "Jensen", "Murphy", "Kaur", "Singh", "Patel", "Chen", "Wang",
    "Kim", "Park", "Ali", "Hassan", "Rahman", "Adeyemi", "Nakamura", "Schmidt", "Fischer",
    "Rossi", "Bianchi", "García", "López", "Martínez", "Santos", "Oliveira", "Andersson",
    "Nilsson", "Virtanen", "Horvat", "Popescu", "Ivanova", "Kelly", "Byrne", "Walsh", "Evans",
    "Hughes", "Price", "Turner", "Bennett", "Clarke", "Ward", "Foster", "Brooks", "Reid",
    "Grant", "Fraser", "Ahmed", "Iqbal", "Yilmaz", "Demir", "Kaya", "Cohen", "Levi", "Abebe",
    "Tesfaye", "Mwangi", "Otieno", "Banda", "Phiri", "Zulu", "Mbatha", "Sato",
)  # fmt: skip
STREETS = (
    "Elm Row", "Harbour Lane", "Mill Street", "Orchard Close", "Station Road", "Quarry Hill",
    "Willow Walk", "Church Street", "Kiln Lane", "Bridge End", "Market Place", "Linden Avenue",
)  # fmt: skip
TOWNS = ("Exampleton", "Demoford", "Sampleby", "Testbridge", "Mockhampton")

FACE_SITES = ("left_cheek", "right_cheek", "forehead", "temples", "chin", "jawline", "nose")
FACE_WEIGHTS = (30, 30, 12, 8, 8, 8, 4)
TRUNK_SITES = ("upper_back", "chest", "shoulders", "lower_back", "arms", "neck")
TRUNK_WEIGHTS = (35, 25, 20, 12, 5, 3)
ATROPHIC = ("icepick", "boxcar", "rolling")

OTHER_ALLERGIES = ("Penicillin (rash)", "Latex", "Nickel", "Lidocaine (local reaction)")
OTHER_MEDICATIONS = (
    "Combined oral contraceptive",
    "Spironolactone 50 mg daily",
    "Lymecycline 408 mg daily",
    "Levothyroxine 75 micrograms daily",
    "Sertraline 50 mg daily",
)
ANTICOAGULANTS = ("Apixaban 5 mg twice daily", "Rivaroxaban 20 mg daily", "Warfarin (INR 2-3)")


@dataclass
class PatientSpec:
    """One demo patient as plain data; dates are absolute."""

    first_name: str
    last_name: str
    sex: str
    date_of_birth: date
    fitzpatrick: int | None  # None: not yet assessed
    registered_on: date
    # (body_site, scar type codes, description)
    sites: list[tuple[str, tuple[str, ...], str]]
    # (kind, started_on, ended_on, detail)
    flags: list[tuple[str, date | None, date | None, str]] = field(default_factory=list)
    # (recorded_on, level, note)
    acne: list[tuple[date, str, str]] = field(default_factory=list)
    photography: bool = True
    marketing: bool = False
    photography_withdrawn: date | None = None
    marketing_withdrawn: date | None = None
    phone: bool = True
    email: bool = True
    # E-mail appointment reminders: None lets the demo decide, True/False fixes it.
    reminders: bool | None = None
    address: bool = True
    medications: str = ""
    allergies: str = ""
    # The treatment consent is signed at registration; withdrawn on this day, if ever.
    treatment_withdrawn: date | None = None


def record_number(n: int) -> str:
    return f"{DEMO_PREFIX}{n:0{DEMO_DIGITS}d}"


def _born(today: date, age: int, days_past_birthday: int = 100) -> date:
    """A date of birth giving `age` whole years today."""
    try:
        birthday = today.replace(year=today.year - age)
    except ValueError:  # 29 February
        birthday = today.replace(year=today.year - age, day=28)
    return birthday - timedelta(days=days_past_birthday)


def stories(today: date) -> list[PatientSpec]:
    """The hand-made patients DEMO-00001... (plans/demo.py STORY_PLANS gives their plans)."""

    def ago(days):
        return today - timedelta(days=days)

    clear = [(ago(400), "none", "Clear at consultation.")]
    return [
        # 1: back hypertrophic + face rolling; Rana 2017 peel today, back cryotherapy this week.
        PatientSpec(
            "Maya", "Castellanos", "F", _born(today, 29, 40), 3, ago(120),
            [
                ("upper_back", ("hypertrophic",), "Raised, firm scars across the upper back "
                 "after truncal acne; about 12, 5-10 mm across."),
                ("left_cheek", ("rolling", "boxcar"), "Rolling and a few boxcar scars, "
                 "about 18, widest 4 mm."),
                ("right_cheek", ("rolling",), "Rolling scars, about 10, sloping edges."),
            ],
            acne=[(ago(120), "none", "Clear at consultation.")],
            marketing=True,
        ),
        # 2: active breakout recorded today; microneedling booked today (blocked).
        PatientSpec(
            "Daniel", "Whitfield", "M", _born(today, 22, 200), 2, ago(110),
            [
                ("left_cheek", ("boxcar", "icepick"), "Boxcar and icepick scars, about 20."),
                ("right_cheek", ("boxcar",), "Boxcar scars, about 12, 2-4 mm."),
                ("temples", ("icepick",), "A few deep icepick scars at both temples."),
            ],
            acne=[
                (ago(110), "none", "Clear at consultation."),
                (today, "moderate", "Papulopustular flare on both cheeks and chin, seen at "
                 "check-in."),
            ],
        ),
        # 3: keloid former, skin type V: completed cryotherapy x 4; glycolic peels now.
        PatientSpec(
            "Kwame", "Mensah", "M", _born(today, 34, 10), 5, ago(400),
            [
                ("chest", ("keloid",), "Two firm keloids over the sternum, 2 and 3 cm."),
                ("shoulders", ("hypertrophic",), "Raised scars on both shoulders, 4-8 mm."),
                ("forehead", ("boxcar",), "Shallow boxcar scars, about 8."),
            ],
            flags=[("keloid_history", None, None, "Sternal keloids since age 17.")],
            acne=clear,
            marketing=True,
        ),
        # 4: anticoagulant; same-day peel + microneedling today.
        PatientSpec(
            "Priya", "Raman", "F", _born(today, 41, 150), 4, ago(200),
            [
                ("left_cheek", ("rolling",), "Broad rolling scars, about 10."),
                ("right_cheek", ("rolling", "boxcar"), "Rolling and boxcar scars, about 14."),
            ],
            flags=[("anticoagulant", ago(900), None, "Apixaban 5 mg twice daily (AF).")],
            acne=[(ago(200), "none", "Clear at consultation.")],
            medications="Apixaban 5 mg twice daily",
        ),
        # 5: isotretinoin ended 2 months ago; microneedling starts this week (warns).
        PatientSpec(
            "Lucas", "Ferreira", "M", _born(today, 19, 60), 3, ago(70),
            [
                ("left_cheek", ("icepick",), "Icepick scars, about 15, under 2 mm."),
                ("right_cheek", ("icepick", "rolling"), "Icepick and rolling scars, about 20."),
            ],
            flags=[("isotretinoin", ago(300), ago(60), "Isotretinoin 20 mg daily.")],
            acne=[
                (ago(300), "severe", "Nodulocystic acne; started isotretinoin."),
                (ago(70), "none", "Clear after isotretinoin."),
            ],
            photography_withdrawn=ago(20),
        ),
        # 6: pregnant now; microneedling plan on hold.
        PatientSpec(
            "Hannah", "Kowalski", "F", _born(today, 31, 250), 1, ago(260),
            [
                ("jawline", ("rolling", "macular"), "Rolling scars with red marks along both "
                 "jawlines."),
                ("chin", ("boxcar",), "Boxcar scars, about 6."),
            ],
            flags=[("pregnancy", ago(120), None, "Expected delivery in about 5 months.")],
            acne=[(ago(260), "none", "Clear at consultation.")],
        ),
        # 7: pregnancy ended, breastfeeding now; a salicylic acid course is booked (blocks).
        PatientSpec(
            "Sofia", "Marchetti", "F", _born(today, 35, 20), 2, ago(500),
            [
                ("chin", ("macular",), "Red and brown post-inflammatory marks, about 15."),
                ("left_cheek", ("boxcar",), "Boxcar scars, about 6."),
            ],
            flags=[
                ("pregnancy", ago(420), ago(150), "Delivered at term."),
                ("breastfeeding", ago(150), None, ""),
            ],
            acne=[(ago(500), "none", "Clear at consultation.")],
            marketing=True,
            marketing_withdrawn=ago(200),
        ),
        # 8: salicylate allergy and herpes simplex; a Jessner peel is booked (blocks).
        PatientSpec(
            "Tomás", "Herrera", "M", _born(today, 27, 300), 4, ago(90),
            [
                ("forehead", ("boxcar",), "Boxcar scars, about 10."),
                ("right_cheek", ("rolling",), "Rolling scars, about 8."),
            ],
            flags=[
                ("salicylate_allergy", None, None, "Aspirin: urticaria and wheeze."),
                ("herpes_simplex", None, None, "Cold sores two or three times a year."),
            ],
            acne=[(ago(90), "none", "Clear at consultation.")],
            allergies="Aspirin and salicylates (urticaria, wheeze)",
        ),
        # 9: bleeding disorder; a microneedling session is overdue (not logged).
        PatientSpec(
            "Alex", "Nguyen", "X", _born(today, 38, 90), 6, ago(130),
            [
                ("left_cheek", ("rolling",), "Rolling scars, about 12."),
                ("right_cheek", ("rolling",), "Rolling scars, about 9."),
                ("forehead", ("macular",), "Dark post-inflammatory marks, about 20."),
            ],
            flags=[
                ("bleeding_disorder", None, None, "Von Willebrand disease, type 1."),
                ("other_allergy", None, None, "Latex (contact dermatitis)."),
            ],
            allergies="Latex",
            acne=[(ago(130), "none", "Clear at consultation.")],
        ),
        # 10: acne flared and isotretinoin began: microneedling cancelled, home plan drafted.
        PatientSpec(
            "Ingrid", "Dahl", "F", _born(today, 24, 180), 1, ago(90),
            [
                ("left_cheek", ("macular",), "Red marks, about 25."),
                ("right_cheek", ("macular", "rolling"), "Red marks and a few rolling scars."),
            ],
            flags=[("isotretinoin", ago(40), None, "Isotretinoin 30 mg daily.")],
            acne=[
                (ago(90), "none", "Clear at consultation."),
                (ago(40), "moderate", "Inflammatory flare on both cheeks; isotretinoin."),
                (ago(10), "mild", "Improving on isotretinoin."),
            ],
            photography=False,
            medications="Isotretinoin 30 mg daily",
        ),
        # 11: skin type IV, pulsed-dye laser brought forward (too soon after the last).
        PatientSpec(
            "Rafael", "Costa", "M", _born(today, 45, 30), 4, ago(100),
            [
                ("shoulders", ("hypertrophic",), "Red, raised scars on both shoulders."),
                ("lower_back", ("hypertrophic",), "Raised scars, about 6, 5-12 mm."),
            ],
            flags=[
                ("herpes_simplex", None, None, "Occasional cold sores."),
                ("isotretinoin", ago(420), ago(240), "Isotretinoin 40 mg daily."),
            ],
            acne=[(ago(100), "none", "Clear at consultation.")],
        ),
        # 12: acne cleared months ago (a past session overridden); a peel moved close to a
        #     microneedling session (warns).
        PatientSpec(
            "Chloé", "Dubois", "F", _born(today, 26, 120), 2, ago(240),
            [
                ("left_cheek", ("rolling", "boxcar"), "Rolling and boxcar scars, about 16."),
                ("right_cheek", ("rolling",), "Rolling scars, about 11."),
            ],
            acne=[
                (ago(240), "mild", "A few papules on the forehead."),
                (ago(150), "none", "Clear."),
            ],
            flags=[("medication", ago(700), None, "Combined oral contraceptive.")],
            medications="Combined oral contraceptive",
            marketing=True,
        ),
        # 13 (NO_CONSENT_STORY): two microneedling sessions done, then she withdrew her
        #     treatment consent: the next sessions are blocked, a peel plan stays in draft.
        PatientSpec(
            "Nadia", "Haddad", "F", _born(today, 33, 75), 3, ago(75),
            [
                ("left_cheek", ("rolling",), "Rolling scars, about 14, sloping edges."),
                ("right_cheek", ("rolling", "boxcar"), "Rolling and boxcar scars, about 12."),
            ],
            acne=[(ago(75), "none", "Clear at consultation.")],
            treatment_withdrawn=ago(4),
        ),
        # 14 (UNASSESSED_STORY): registered last week, skin type not yet assessed; back
        #     cryotherapy starts in a few days (warns until it is assessed).
        PatientSpec(
            "Omar", "Hassan", "M", _born(today, 27, 210), None, ago(8),
            [
                ("upper_back", ("hypertrophic",), "Raised, firm scars over both shoulder "
                 "blades, about 9, 4-9 mm."),
            ],
            acne=[(ago(8), "none", "Clear at consultation.")],
            email=False,
        ),
    ]  # fmt: skip


def _weighted(rng, values, weights):
    return rng.choices(values, weights=weights)[0]


def _pick_sites(rng, sites, weights, count, used):
    chosen = []
    while len(chosen) < count:
        site = _weighted(rng, sites, weights)
        if site not in used:
            used.add(site)
            chosen.append(site)
    return chosen


def _describe(rng, types):
    if "keloid" in types:
        return f"Keloid, {rng.randint(1, 5)} cm, shiny and itchy."
    if "hypertrophic" in types:
        low = rng.randint(3, 6)
        return f"About {rng.randint(3, 20)} raised, firm scars, {low}-{low + rng.randint(3, 8)} mm."
    atrophic = [t for t in types if t in ATROPHIC]
    if atrophic:
        return f"About {rng.randint(5, 30)} {' and '.join(atrophic)} scars."
    return f"Red and brown post-inflammatory marks, about {rng.randint(5, 40)}."


def _generic_sites(rng):
    used = set()
    pattern = _weighted(rng, ("face", "trunk", "mixed", "marks"), (55, 22, 15, 8))
    sites = []

    def face(count):
        for body_site in _pick_sites(rng, FACE_SITES, FACE_WEIGHTS, count, used):
            types = rng.sample(ATROPHIC, _weighted(rng, (1, 2), (55, 45)))
            if rng.random() < 0.3:
                types.append("macular")
            sites.append((body_site, tuple(types)))

    def trunk(count):
        for body_site in _pick_sites(rng, TRUNK_SITES, TRUNK_WEIGHTS, count, used):
            kind = _weighted(rng, ("hypertrophic", "keloid", "both"), (75, 15, 10))
            types = ("hypertrophic", "keloid") if kind == "both" else (kind,)
            sites.append((body_site, types))

    if pattern == "face":
        face(_weighted(rng, (1, 2, 3), (35, 45, 20)))
    elif pattern == "trunk":
        trunk(_weighted(rng, (1, 2), (60, 40)))
    elif pattern == "mixed":
        trunk(1)
        face(_weighted(rng, (1, 2), (60, 40)))
    else:
        all_sites = FACE_SITES + ("upper_back", "chest")
        for body_site in _pick_sites(
            rng, all_sites, (*FACE_WEIGHTS, 10, 6), _weighted(rng, (1, 2), (60, 40)), used
        ):
            sites.append((body_site, ("macular",)))
    return [(body_site, types, _describe(rng, types)) for body_site, types in sites]


def _generic_flags(rng, today, registered, sex, age, sites):
    flags, medications, allergies = [], [], []
    keloid_site = any("keloid" in types for _, types, _ in sites)
    if rng.random() < 0.12:  # a past isotretinoin course, taken at 13 or older
        end = today - timedelta(days=rng.randint(240, min(1500, (age - 13) * 365)))
        flags.append(
            ("isotretinoin", end - timedelta(days=rng.randint(120, 240)), end, "20 mg daily.")
        )
    roll = rng.random()
    if roll < 0.01:
        flags.append(
            ("isotretinoin", today - timedelta(days=rng.randint(10, 150)), None, "30 mg daily.")
        )
        medications.append("Isotretinoin 30 mg daily")
    elif roll < 0.03:
        end = today - timedelta(days=rng.randint(20, 170))
        flags.append(("isotretinoin", end - timedelta(days=rng.randint(120, 240)), end, ""))
    if sex == "F" and 20 <= age <= 42:
        roll = rng.random()
        if roll < 0.02:
            flags.append(("pregnancy", today - timedelta(days=rng.randint(30, 240)), None, ""))
        elif roll < 0.05:
            end = today - timedelta(days=rng.randint(30, 700))
            flags.append(("pregnancy", end - timedelta(days=270), end, "Delivered at term."))
            if rng.random() < 0.6:
                weaned = end + timedelta(days=rng.randint(60, 360))
                flags.append(("breastfeeding", end, weaned if weaned <= today else None, ""))
    if keloid_site and rng.random() < 0.7 or rng.random() < 0.03:
        flags.append(("keloid_history", None, None, "Keloids after minor skin injuries."))
    if rng.random() < (0.05 if age > 45 else 0.01):
        drug = rng.choice(ANTICOAGULANTS)
        since = registered - timedelta(days=rng.randint(30, 900))
        flags.append(("anticoagulant", since, None, drug))
        medications.append(drug)
    if rng.random() < 0.01:
        flags.append(("bleeding_disorder", None, None, "Von Willebrand disease, type 1."))
    if rng.random() < 0.07:
        flags.append(("herpes_simplex", None, None, "Recurrent cold sores."))
    if rng.random() < 0.02:
        flags.append(("salicylate_allergy", None, None, "Aspirin: urticaria."))
        allergies.append("Aspirin and salicylates")
    if rng.random() < 0.06:
        allergy = rng.choice(OTHER_ALLERGIES)
        flags.append(("other_allergy", None, None, allergy))
        allergies.append(allergy)
    if rng.random() < 0.08:
        drug = rng.choice(OTHER_MEDICATIONS)
        since = registered - timedelta(days=rng.randint(30, 600))
        flags.append(("medication", since, None, drug))
        medications.append(drug)
    return flags, "; ".join(medications), "; ".join(allergies)


def _generic_acne(rng, today, registered):
    roll = rng.random()
    clear = (registered, "none", "Clear at consultation.")
    since = (today - registered).days
    if roll < 0.78 or since < 3:
        return [clear]
    level = _weighted(rng, ("mild", "moderate", "severe"), (60, 32, 8))
    if roll < 0.88 and since > 40:  # active at registration, cleared since
        cleared = registered + timedelta(days=rng.randint(30, min(since, 150)))
        return [(registered, level, "Active acne at consultation."), (cleared, "none", "Clear.")]
    if roll < 0.96:  # clear at registration, breakout in the last two weeks
        flare = today - timedelta(days=rng.randint(0, min(14, since - 1)))
        return [clear, (flare, level, "Breakout.")]
    # active at registration and still active
    recent = today - timedelta(days=rng.randint(0, min(30, since)))
    return [(registered, level, "Active acne at consultation."), (recent, "mild", "Still active.")]


def generic(rng, today: date) -> PatientSpec:
    sex = _weighted(rng, ("F", "M", "X"), (55, 42, 3))
    age = rng.randint(16, 64)
    registered = today - timedelta(days=rng.randint(3, min(1460, (age - 15) * 365)))
    sites = _generic_sites(rng)
    flags, medications, allergies = _generic_flags(rng, today, registered, sex, age, sites)
    since = (today - registered).days
    photography = rng.random() < 0.85
    marketing = rng.random() < 0.2

    def withdrawn(p):
        if since > 2 and rng.random() < p:
            return registered + timedelta(days=rng.randint(1, since))
        return None

    return PatientSpec(
        first_name=rng.choice(FIRST_NAMES[sex]),
        last_name=rng.choice(LAST_NAMES),
        sex=sex,
        date_of_birth=_born(today, age, rng.randint(1, 360)),
        fitzpatrick=_weighted(rng, (1, 2, 3, 4, 5, 6), (8, 22, 28, 20, 13, 9)),
        registered_on=registered,
        sites=sites,
        flags=flags,
        acne=_generic_acne(rng, today, registered),
        photography=photography,
        marketing=marketing,
        photography_withdrawn=withdrawn(0.04) if photography else None,
        marketing_withdrawn=withdrawn(0.15) if marketing else None,
        phone=rng.random() < 0.92,
        email=rng.random() < 0.85,
        address=rng.random() < 0.6,
        medications=medications,
        allergies=allergies,
    )


def _ascii(text):
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


# --- bulk insertion with history ------------------------------------------------------------


def has_history(model):
    try:
        get_history_manager_for_model(model)
    except NotHistoricalModelError:
        return False
    return True


def bulk_insert(model, objs, *, user, counts, reason=None):
    """bulk_create, with one '+' history row per object (history_user `user`, change reason
    `reason`)."""
    if not objs:
        return objs
    if bulkload.available():
        bulkload.copy_insert(model, objs)
        if has_history(model):
            history = get_history_manager_for_model(model).model
            bulkload.copy_history(
                model, history, [obj.pk for obj in objs], user=user, reason=reason
            )
            counts[f"{model._meta.label} history"] += len(objs)
    elif has_history(model):
        bulk_create_with_history(
            objs, model, batch_size=BATCH_SIZE, default_user=user, default_change_reason=reason
        )
        counts[f"{model._meta.label} history"] += len(objs)
    else:
        model._default_manager.bulk_create(objs, batch_size=BATCH_SIZE)
    counts[model._meta.label] += len(objs)
    return objs


def bulk_insert_with_m2m(model, objs, m2m, links, *, user, counts, reason=""):
    """Objects with history, their M2M rows `links` [(obj, related pk)] and the M2M history.

    Not bulk_create_with_history: the historical M2M rows (HistoricalRecords(m2m_fields=...))
    point at the historical row of their object, which that helper does not hand back. This
    is the same two steps it takes on databases that return primary keys (SQLite 3.35+,
    PostgreSQL), keeping the historical rows so the M2M history can be attached to them.
    """
    if not objs:
        return objs
    if bulkload.available():
        return _copy_with_m2m(model, objs, m2m, links, user=user, counts=counts, reason=reason)
    model._default_manager.bulk_create(objs, batch_size=BATCH_SIZE)
    if objs[0].pk is None:
        raise RuntimeError("seed_demo needs a database that returns ids from bulk inserts.")
    manager = get_history_manager_for_model(model)
    historical = manager.bulk_history_create(
        objs, batch_size=BATCH_SIZE, default_user=user, default_change_reason=reason
    )
    history_of = {obj.pk: row.pk for obj, row in zip(objs, historical, strict=True)}
    field_ = model._meta.get_field(m2m)
    assert isinstance(field_, ManyToManyField)
    through = field_.remote_field.through
    source, target = f"{field_.m2m_field_name()}_id", f"{field_.m2m_reverse_field_name()}_id"
    rows = [through(**{source: obj.pk, target: pk}) for obj, pk in links]
    through._default_manager.bulk_create(rows, batch_size=BATCH_SIZE)
    m2m_history = getattr(manager.model, m2m).model
    m2m_history._default_manager.bulk_create(
        [
            m2m_history(
                id=row.pk,
                history_id=history_of[getattr(row, source)],
                **{source: getattr(row, source), target: getattr(row, target)},
            )
            for row in rows
        ],
        batch_size=BATCH_SIZE,
    )
    counts[model._meta.label] += len(objs)
    counts[f"{model._meta.label} history"] += len(objs)
    counts[f"{model._meta.label}.{m2m}"] += len(rows)
    counts[f"{model._meta.label}.{m2m} history"] += len(rows)
    return objs


def _copy_with_m2m(model, objs, m2m, links, *, user, counts, reason=""):
    """bulk_insert_with_m2m on PostgreSQL: the same rows, written with COPY and copied into
    the history tables by the database (clinic/bulkload.py)."""
    bulkload.copy_insert(model, objs)
    manager = get_history_manager_for_model(model)
    pks = [obj.pk for obj in objs]
    history_of = bulkload.copy_history(model, manager.model, pks, user=user, reason=reason)
    field_ = model._meta.get_field(m2m)
    through = field_.remote_field.through
    source, target = f"{field_.m2m_field_name()}_id", f"{field_.m2m_reverse_field_name()}_id"
    rows = bulkload.copy_insert(
        through, [through(**{source: obj.pk, target: pk}) for obj, pk in links]
    )
    m2m_history = getattr(manager.model, m2m).model
    bulkload.copy_m2m_history(m2m_history, through, source, pks, history_of)
    counts[model._meta.label] += len(objs)
    counts[f"{model._meta.label} history"] += len(objs)
    counts[f"{model._meta.label}.{m2m}"] += len(rows)
    counts[f"{model._meta.label}.{m2m} history"] += len(rows)
    return objs


@contextmanager
def large_cache(mebibytes=256):
    """On SQLite, a larger page cache for this connection while seeding, then the old one.

    The default cache (2 MiB) is far smaller than the indexes a 20,000-patient load updates,
    and the load then slows as the file grows.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{mebibytes * 1024}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def write_counts(stdout, counts):
    for label in sorted(counts):
        stdout.write(f"  {label}: {counts[label]}")


# --- seed -------------------------------------------------------------------------------------


def seed(*, patients, rng, users, stdout):
    if patients > 0:
        _record_number_format(users["Manager"], stdout)
    if Patient.objects.filter(record_number__startswith=DEMO_PREFIX).exists():
        stdout.write("Demo patients already exist: no patients added.")
        return
    if patients <= 0:
        return
    today = timezone.localdate()
    clinician, manager = users["Clinician"], users["Manager"]
    scar_types = dict(ScarType.objects.values_list("code", "pk"))
    story_list = stories(today)
    counts = Counter()
    started = time.monotonic()
    with large_cache(), transaction.atomic():
        for first in range(1, patients + 1, CHUNK):
            numbers = range(first, min(patients, first + CHUNK - 1) + 1)
            specs = [
                story_list[n - 1] if n <= len(story_list) else generic(rng, today) for n in numbers
            ]
            _insert(specs, numbers, rng, scar_types, clinician, manager, counts)
            stdout.write(
                f"Patients: {numbers[-1]} of {patients} ({time.monotonic() - started:.1f} s)"
            )
    stdout.write(f"Demo patients added in {time.monotonic() - started:.1f} s:")
    write_counts(stdout, counts)


def _record_number_format(manager, stdout):
    """Registration offers the demo's next number (DEMO-00061) unless the clinic has set
    its own format."""
    if RecordNumberFormat.objects.exists():
        return
    row = RecordNumberFormat(prefix=DEMO_PREFIX, digits=DEMO_DIGITS)
    row.full_clean()
    row._history_user = manager
    row.save()
    stdout.write(f"Record number format: {row} (the demo's own numbers).")


def _insert(specs, numbers, rng, scar_types, clinician, manager, counts):
    people, consents, acne, flags, sites, links = [], [], [], [], [], []
    for n, spec in zip(numbers, specs, strict=True):
        email = f"{_ascii(spec.first_name)}.{_ascii(spec.last_name)}.{n}@example.org"
        patient = Patient(
            record_number=record_number(n),
            first_name=spec.first_name,
            last_name=spec.last_name,
            date_of_birth=spec.date_of_birth,
            sex=spec.sex,
            phone=f"555-01{rng.randint(0, 99):02d}" if spec.phone else "",
            email=email if spec.email else "",
            address=(
                f"{rng.randint(1, 180)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}"
                if spec.address
                else ""
            ),
            fitzpatrick_type=spec.fitzpatrick,
            other_allergies=spec.allergies,
            medications=spec.medications,
            version=1,
        )
        people.append(patient)
        signed = spec.registered_on
        consents.append(
            Consent(
                patient=patient,
                kind="treatment",
                signed_on=signed,
                withdrawn_on=spec.treatment_withdrawn,
            )
        )
        if spec.photography:
            consents.append(
                Consent(
                    patient=patient,
                    kind="clinical_photography",
                    signed_on=signed,
                    withdrawn_on=spec.photography_withdrawn,
                )
            )
        if spec.email and spec.reminders is not False and (spec.reminders or n % 5):
            # Four in five patients with an e-mail address agreed to reminders (no draw from
            # the random stream, which the rest of the demo depends on).
            consents.append(Consent(patient=patient, kind="reminders", signed_on=signed))
        if spec.marketing:
            consents.append(
                Consent(
                    patient=patient,
                    kind="marketing_photography",
                    signed_on=signed,
                    withdrawn_on=spec.marketing_withdrawn,
                )
            )
        for recorded_on, level, note in spec.acne:
            acne.append(
                AcneActivity(
                    patient=patient,
                    recorded_on=recorded_on,
                    level=level,
                    note=note,
                    recorded_by=clinician,
                )
            )
        for kind, started_on, ended_on, detail in spec.flags:
            flags.append(
                MedicalFlag(
                    patient=patient,
                    kind=kind,
                    started_on=started_on,
                    ended_on=ended_on,
                    detail=detail,
                    recorded_by=clinician,
                )
            )
        for body_site, types, description in spec.sites:
            site = ScarSite(
                patient=patient,
                body_site=body_site,
                description=description,
                first_recorded_on=spec.registered_on,
            )
            sites.append(site)
            links += [(site, scar_types[code]) for code in types]
    bulk_insert(Patient, people, user=manager, counts=counts)
    for model, objs in ((Consent, consents), (AcneActivity, acne), (MedicalFlag, flags)):
        bulk_insert(model, objs, user=manager, counts=counts)
    bulk_insert_with_m2m(ScarSite, sites, "scar_types", links, user=manager, counts=counts)
