"""Synthetic demo plans, sessions and outcomes for `manage.py seed_demo`.

Runs after patients/demo.py and works on the demo patients (record numbers DEMO-...) found in
the database. The first patients get hand-made plans (STORY_PLANS) that show each screen and
each safety rule; the rest get generated plans over their time with the clinic.

Everything is built in Python and inserted with bulk_create per model in dependency order,
in chunks of patients, inside one transaction; no per-row save() or query and no service
calls. What the services would compute is computed here from the same pure modules:
plans.scheduling for calendars, plans.scales for totals, plans.safety for the overrides that
a blocking finding on a logged session needs.

Every visit is placed in the demo clinic's diary (clinic/demo.py sets it up first): at the
plan's location, inside its opening hours and the clinician's working pattern, off closures
and absences, with a free room and device, and never over another visit of the same
clinician, room, device or patient. The `Diary` below keeps who is busy when in memory, so
placing costs no query.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from io import BytesIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from clinic.demo import OTHER_CLINICIANS
from clinic.models import (
    Absence,
    Closure,
    Device,
    Location,
    OpeningHours,
    Room,
    WorkingPattern,
)
from clinic.roles import CLINICIAN
from patients.demo import (
    DEMO_PREFIX,
    NO_CONSENT_STORY,
    UNASSESSED_STORY,
    bulk_insert,
    bulk_insert_with_m2m,
    large_cache,
    record_number,
    write_counts,
)
from patients.demo import stories as patient_stories
from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite
from plans import safety, scales, scheduling
from plans.demo_scale import replicate, units  # noqa: F401 (seed_demo calls them)
from plans.models import (
    AdverseEvent,
    Amendment,
    Assessment,
    Course,
    Plan,
    PlanTemplate,
    PlanTemplateCourse,
    ReportPhotoChoice,
    SafetyOverride,
    SafetyRuleSetting,
    Session,
    SessionPhoto,
    SessionTreatment,
    Treatment,
)
from plans.parameters import clean_parameters

CHUNK = 1000  # patients per build-and-insert round
# Preferred start times of generated plans: 08:30 to 17:00. The diary places each visit at
# the nearest free time to it inside the location's opening hours.
SLOTS = tuple(clock(8 + (30 + 15 * n) // 60, (30 + 15 * n) % 60) for n in range(35))
# Plans per clinician: the demo login, Dr Okafor, Nurse Lindqvist. A big demo's generated
# colleagues (clinic/demo.py) get plans in proportion to their working hours instead.
CLINICIAN_WEIGHTS = (65, 20, 15)
GRID = 15  # minutes: the diary's rows
REACH = 7  # days a visit may move to find a free slot
RAISED = frozenset({"hypertrophic", "keloid"})
ATROPHIC = frozenset({"icepick", "boxcar", "rolling"})

# --- the catalogue as used in demo plans (validated against TreatmentParameter rows) --------

CRYO_SPRAY = {"method": "spray", "cycles": 2, "seconds": 15}
CRYO_CONTACT = {"method": "contact", "cycles": 2, "seconds": 20}
PDL = {
    "wavelength": 595,
    "fluence": 7.5,
    "spot_size": 7,
    "pulse_duration": 1.5,
    "passes": 1,
    "cooling": "dynamic",
}
NEEDLING = {"device": "Dermapen 4", "needle_depth": 1.5, "passes": 3, "serum": "Hyaluronic acid"}
GLYCOLIC_70 = {
    "agent": "glycolic",
    "concentration": 70,
    "ph": 0.6,
    "layers": 1,
    "contact_time": 3,
    "neutralised": True,
    "frost_level": "none",
}
GLYCOLIC_35 = {**GLYCOLIC_70, "concentration": 35, "ph": 1.3, "contact_time": 4}
TCA_15 = {
    "agent": "tca",
    "concentration": 15,
    "layers": 1,
    "neutralised": False,
    "frost_level": "1",
}
SALICYLIC_30 = {
    "agent": "salicylic",
    "concentration": 30,
    "layers": 2,
    "contact_time": 5,
    "neutralised": False,
    "frost_level": "none",
}
JESSNER = {"agent": "jessner", "concentration": 14, "layers": 2, "neutralised": False}
MANDELIC_40 = {**GLYCOLIC_70, "agent": "mandelic", "concentration": 40, "ph": 2, "contact_time": 5}
AHA = {"product": "Glycolic acid 10% night serum", "acid": "glycolic", "concentration": 10}
LACTIC = {"concentration": 10, "contact_time": 10}
SALICYLIC_HOME = {"concentration": 2, "area": "Chin and jawline"}

# Realistic working ranges inside the catalogue's own bounds, for values that drift.
WORKING_RANGE = {
    ("microneedling", "needle_depth"): (0.5, 2.5),
    ("microneedling", "passes"): (2, 5),
    ("pulsed_dye_laser", "fluence"): (5, 11),
    ("cryotherapy", "seconds"): (10, 30),
    ("chemical_peel", "contact_time"): (1, 10),
    ("chemical_peel", "layers"): (1, 4),
}


@dataclass(frozen=True)
class C:
    """A course: treatment code, sessions, every `interval` days, from day `offset`."""

    treatment: str
    sessions: int
    interval: int
    offset: int = 0
    label: str = ""
    params: dict = field(default_factory=dict, hash=False)

    @property
    def last_day(self):
        return self.offset + self.interval * (self.sessions - 1)


# The three DOMAIN example plans.
CRYO_4 = (C("cryotherapy", 4, 28, 0, "Cryotherapy", CRYO_SPRAY),)
RANA_2017 = (
    C("microneedling", 3, 42, 0, "Microneedling", NEEDLING),
    C("chemical_peel", 3, 42, 21, "70% glycolic peel", GLYCOLIC_70),
)
SAME_DAY = (
    C("chemical_peel", 3, 42, 0, "TCA 15% peel", TCA_15),
    C("microneedling", 3, 42, 0, "Microneedling", NEEDLING),
)


@dataclass(frozen=True)
class Template:
    title: str
    groups: frozenset
    weight: int
    courses: tuple
    goal: str
    vary: bool = True  # generated copies may have a session more or fewer

    @property
    def salicylate(self):
        return any(
            c.treatment == "salicylic_acid" or c.params.get("agent") in safety.SALICYLATE_AGENTS
            for c in self.courses
        )


def _t(title, groups, weight, courses, goal, vary=True):
    return Template(title, frozenset(groups.split()), weight, tuple(courses), goal, vary)


TEMPLATES = (
    _t("Cryotherapy x 4, every 28 days", "raised", 3, CRYO_4,
       "Flatten and soften the raised scars; less itch.", vary=False),
    _t("Pulsed-dye laser x 4, every 6 weeks", "raised macular", 3,
       [C("pulsed_dye_laser", 4, 42, 0, "Pulsed-dye laser", PDL)],
       "Less redness; flatter, softer scars."),
    _t("Cryotherapy and pulsed-dye laser, alternating", "raised", 2,
       [C("cryotherapy", 3, 56, 0, "Contact cryotherapy", CRYO_CONTACT),
        C("pulsed_dye_laser", 3, 56, 28, "Pulsed-dye laser", PDL)],
       "Flatten the thickest scars and fade their redness."),
    _t("Microneedling x 4, every 6 weeks", "atrophic", 4,
       [C("microneedling", 4, 42, 0, "Microneedling", NEEDLING)],
       "Shallower atrophic scars; smoother skin texture."),
    _t("Microneedling x 6, every 4 weeks", "atrophic", 1,
       [C("microneedling", 6, 28, 0, "Microneedling", NEEDLING)],
       "Shallower atrophic scars; smoother skin texture."),
    _t("Microneedling and 70% glycolic peel (Rana 2017)", "atrophic", 3, RANA_2017,
       "Combined protocol for atrophic scars, assessed at week 22.", vary=False),
    _t("Peel and microneedling on the same day, x 3 every 6 weeks", "atrophic", 2, SAME_DAY,
       "Combined same-day treatment for rolling and boxcar scars.", vary=False),
    _t("Glycolic peels x 4, every 3 weeks", "atrophic macular", 3,
       [C("chemical_peel", 4, 21, 0, "35% glycolic peel", GLYCOLIC_35)],
       "Even skin tone; softer scar edges."),
    _t("Mandelic peels x 4, every 3 weeks", "macular", 1,
       [C("chemical_peel", 4, 21, 0, "40% mandelic peel", MANDELIC_40)],
       "Fade post-inflammatory marks with a gentle peel."),
    _t("Salicylic acid peels x 4, every 3 weeks", "atrophic macular", 1,
       [C("chemical_peel", 4, 21, 0, "30% salicylic peel", SALICYLIC_30)],
       "Fewer breakouts and marks; smoother texture."),
    _t("Jessner peels x 3, every 4 weeks", "atrophic", 1,
       [C("chemical_peel", 3, 28, 0, "Jessner peel", JESSNER)],
       "Smoother texture for shallow scars."),
    _t("AHA at home, monthly reviews x 3", "atrophic macular", 2,
       [C("aha", 3, 28, 0, "Glycolic night serum", AHA)],
       "A gentle start for a few shallow scars and marks."),
    _t("Lactic acid at home, monthly reviews x 3", "atrophic macular", 1,
       [C("lactic_acid", 3, 28, 0, "Lactic acid 10%", LACTIC)],
       "Fade marks gently at home."),
    _t("Salicylic acid spot treatment, monthly reviews x 3", "atrophic macular", 1,
       [C("salicylic_acid", 3, 28, 0, "Salicylic acid 2%", SALICYLIC_HOME)],
       "Keep breakouts down while scars are treated."),
)  # fmt: skip
BY_TITLE = {t.title: t for t in TEMPLATES}

# Instruments per kind of site: the first every session, the rest at baseline and every third.
INSTRUMENTS = {
    "raised": ("vss", "posas_observer", "posas_patient"),
    "atrophic": ("gb_quantitative", "gb_qualitative", "ecca"),
    "macular": ("posas_observer", "gb_qualitative"),
}
# How much one session lowers a site's severity (fraction), by treatment and kind of site.
EFFECT = {
    "microneedling": {"atrophic": 0.13, "macular": 0.05, "raised": 0.02},
    "chemical_peel": {"atrophic": 0.08, "macular": 0.12, "raised": 0.03},
    "pulsed_dye_laser": {"raised": 0.12, "macular": 0.12, "atrophic": 0.02},
    "cryotherapy": {"raised": 0.15, "macular": 0.0, "atrophic": 0.0},
}
HOME_EFFECT = {"atrophic": 0.03, "macular": 0.06, "raised": 0.01}
PAIN = {
    "microneedling": (3, 6),
    "chemical_peel": (1, 4),
    "pulsed_dye_laser": (2, 5),
    "cryotherapy": (3, 7),
}
EVENT_RATE = {
    "microneedling": 0.06,
    "chemical_peel": 0.06,
    "pulsed_dye_laser": 0.07,
    "cryotherapy": 0.08,
}
EVENT_KINDS = {
    "microneedling": (("erythema", 50), ("swelling", 20), ("purpura", 15), ("acne_flare", 10),
                      ("infection", 5)),
    "chemical_peel": (("erythema", 35), ("crusting", 25), ("itching", 15),
                      ("hyperpigmentation", 15), ("blistering", 5), ("herpes_reactivation", 5)),
    "pulsed_dye_laser": (("purpura", 50), ("swelling", 20), ("erythema", 20),
                         ("hyperpigmentation", 10)),
    "cryotherapy": (("blistering", 35), ("hypopigmentation", 30), ("pain", 15),
                    ("swelling", 20)),
    "home": (("erythema", 60), ("itching", 40)),
}  # fmt: skip
EVENT_DAYS = {  # typical days to resolve
    "erythema": (1, 4),
    "swelling": (2, 5),
    "pain": (1, 3),
    "itching": (2, 7),
    "purpura": (5, 12),
    "blistering": (7, 14),
    "crusting": (5, 10),
    "hyperpigmentation": (60, 200),
    "hypopigmentation": (90, 300),
    "infection": (7, 14),
    "herpes_reactivation": (7, 12),
    "acne_flare": (14, 30),
}
EVENT_NOTES = {
    "erythema": "Redness over the treated area.",
    "swelling": "Swelling, worst the next morning.",
    "pain": "Sore for a few days; paracetamol.",
    "itching": "Itching; emollient advised.",
    "purpura": "Bruising over the treated area.",
    "blistering": "Blisters at the treated scars; dressed, kept clean.",
    "crusting": "Light crusting; advised not to pick.",
    "hyperpigmentation": "Darker patches at the treated area; strict sun protection.",
    "hypopigmentation": "Paler patch at the treated scar.",
    "infection": "Local infection; oral antibiotic given.",
    "herpes_reactivation": "Cold sore outbreak after treatment; aciclovir started.",
    "acne_flare": "Acne flare after treatment.",
}
SESSION_NOTES = (
    "Tolerated well.",
    "Tolerated well; aftercare reviewed.",
    "Expected redness; SPF 50 and gentle skincare advised.",
    "Patient pleased with progress so far.",
    "Photos taken; good light.",
    "Slight stinging, settled with cooling.",
)
OVERRIDE_REASONS = {
    "active_breakout": (
        "Mild papules away from the treated area; treated areas clear.",
        "A few comedones only; patient informed and chose to go ahead.",
        "Breakout limited to the forehead; treated the cheeks only.",
    ),
}
DEFAULT_REASON = "Discussed with the patient; benefit judged to outweigh the risk."


@dataclass
class PlanSpec:
    title: str
    courses: tuple
    sites: list  # scar site ids
    start: date
    status: str
    clinician: object
    at: clock
    location: int | None = None  # None: chosen from the clinician's week (the stories)
    goal: str = ""
    notes: str = ""
    stop_on: date | None = None  # on hold / cancelled from this day (None: before activation)
    moves: dict = field(default_factory=dict)  # visit index -> days moved
    visit_status: dict = field(default_factory=dict)  # visit index -> session status
    visit_notes: dict = field(default_factory=dict)
    # visit index -> [(kind, severity, days to resolve or None, notes)]
    events: dict = field(default_factory=dict)
    extras: bool = True  # random missed / overdue sessions and adverse events
    # visit index -> (parameter code, value it is corrected to, reason): a logged value the
    # clinician corrected afterwards (an Amendment)
    amend: dict = field(default_factory=dict)


@dataclass
class PatientFacts:
    pk: int
    record: str
    fitzpatrick: int | None
    sites: list = field(default_factory=list)  # (pk, body_site, types, group)
    flags: list = field(default_factory=list)  # safety.FlagPeriod
    acne: list = field(default_factory=list)  # (recorded_on, level), in order
    photo_consents: list = field(default_factory=list)  # (signed_on, withdrawn_on)

    @property
    def registered(self):
        """The day the first scar site was recorded (the consultation)."""
        return min((site[4] for site in self.sites), default=timezone.localdate())

    def site(self, body_site):
        return next(pk for pk, body, *_ in self.sites if body == body_site)

    def sites_in(self, group):
        return [pk for pk, _, _, g, _ in self.sites if g == group]

    def photos_allowed(self, day):
        return any(
            signed <= day and (withdrawn is None or day < withdrawn)
            for signed, withdrawn in self.photo_consents
        )

    def has_flag(self, *kinds):
        return any(flag.kind in kinds for flag in self.flags)

    def acne_on(self, day):
        level = ""
        for recorded_on, value in self.acne:
            if recorded_on > day:
                break
            level = value
        return level


@dataclass
class SiteState:
    """A scar site's severity (0 clear to 1 worst) and how its instruments read it."""

    group: str
    severity: float
    start: float
    weights: dict
    counts: dict  # Goodman & Baron kind -> scar count at `start` severity


def _group(types):
    if types & RAISED:
        return "raised"
    if types & ATROPHIC:
        return "atrophic"
    return "macular"


def _weighted(rng, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


# --- the demo clinic's diary ------------------------------------------------------------------


def _row(moment, *, up=False):
    """The 15-minute row a wall-clock time falls in (rounded up with `up`)."""
    minutes = moment.hour * 60 + moment.minute
    return -(-minutes // GRID) if up else minutes // GRID


def _rows(starts, ends):
    """The rows of [starts, ends) as the bits of an int (only whole rows inside it)."""
    first, last = _row(starts, up=True), _row(ends)
    return ((1 << (last - first)) - 1) << first if last > first else 0


def _runs(free, length):
    """The rows where `length` free rows in a row begin: where a visit can start."""
    starts = free
    for shift in range(1, length):
        starts &= free >> shift
    return starts


def _nearest(starts, preferred):
    """The first start at or after the preferred row, else the last one before it."""
    later = starts >> preferred
    if later:
        return preferred + (later & -later).bit_length() - 1
    return (starts & ((1 << preferred) - 1)).bit_length() - 1


def _each_day(first, last):
    return (first + timedelta(days=n) for n in range((last - first).days + 1))


@dataclass(frozen=True)
class Slot:
    day: date
    start: int  # row
    length: int  # rows
    clinician: int
    room: int | None
    device: int | None

    @property
    def rows(self):
        return ((1 << self.length) - 1) << self.start

    def bounds(self, tz, minutes):
        """(starts, ends): aware datetimes, `minutes` long (whole rows are only held)."""
        at = self.start * GRID
        starts = datetime.combine(self.day, clock(at // 60, at % 60), tzinfo=tz)
        return starts, starts + timedelta(minutes=minutes)


class Diary:
    """The demo clinic's appointment book in memory, to place visits without a query.

    Who is busy when: per resource a dict keyed by (id, day) whose value is an int with one
    bit per 15-minute row held, so a visit fits where a few ANDs and shifts come to zero.
    Opening hours and working patterns are kept the same way, per weekday.
    """

    def __init__(self, today):
        self.today = today
        self.locations = list(Location.objects.active().order_by("pk").values_list("pk", flat=True))
        if not self.locations:
            raise RuntimeError("The demo plans need the demo locations (clinic/demo.py).")
        opening = defaultdict(int)  # (location, weekday) -> rows open
        for location, weekday, starts, ends in OpeningHours.objects.values_list(
            "location", "weekday", "starts", "ends"
        ):
            opening[(location, weekday)] |= _rows(starts, ends)
        # (clinician, location, weekday) -> rows they work there, inside its opening hours
        self.working = defaultdict(int)
        for clinician, location, weekday, starts, ends in WorkingPattern.objects.values_list(
            "clinician", "location", "weekday", "starts", "ends"
        ):
            self.working[(clinician, location, weekday)] |= _rows(starts, ends)
        self.staff = defaultdict(list)  # (location, weekday) -> clinicians who work there
        self.hours = Counter()  # (clinician, location) -> rows a week
        for key in sorted(self.working):
            clinician, location, weekday = key
            self.working[key] &= opening[(location, weekday)]
            if self.working[key]:
                self.staff[(location, weekday)].append(clinician)
                self.hours[(clinician, location)] += self.working[key].bit_count()
        self.closed = defaultdict(set)  # location (None: every location) -> days
        for location, first, last in Closure.objects.values_list(
            "location", "first_day", "last_day"
        ):
            self.closed[location].update(_each_day(first, last))
        self.absent = defaultdict(set)  # clinician -> days
        for clinician, first, last in Absence.objects.values_list(
            "clinician", "first_day", "last_day"
        ):
            self.absent[clinician].update(_each_day(first, last))
        self.rooms = defaultdict(list)  # location -> active rooms
        for pk, location in (
            Room.objects.filter(is_active=True).order_by("pk").values_list("pk", "location")
        ):
            self.rooms[location].append(pk)
        self.devices = defaultdict(list)  # (location, device kind) -> active devices
        for pk, location, kind in (
            Device.objects.filter(is_active=True)
            .order_by("pk")
            .values_list("pk", "location", "kind")
        ):
            self.devices[(location, kind)].append(pk)
        # (id, day) -> rows held, per resource; a patient's own visits only while building them
        self.clinician_busy, self.room_busy, self.device_busy = {}, {}, {}
        self.patient_busy = {}

    def window(self, clinician, location, day):
        """The rows a clinician can see patients at a location on a day (0: not at all)."""
        rows = self.working.get((clinician, location, day.weekday()), 0)
        if (
            not rows
            or day in self.closed.get(location, ())
            or day in self.closed.get(None, ())
            or day in self.absent.get(clinician, ())
        ):
            return 0
        return rows

    def locations_for(self, clinician, kinds):
        """Where a clinician works that has a device of each of `kinds`."""
        return [
            location
            for location in self.locations
            if self.hours[(clinician, location)]
            and all(self.devices.get((location, kind)) for kind in kinds)
        ]

    def workday(self, clinician, location, day, *, backwards=False):
        """The first day from `day` on (or back) that the clinician works at the location."""
        step = -1 if backwards else 1
        for n in range(3 * REACH):
            candidate = day + timedelta(days=step * n)
            if self.window(clinician, location, candidate):
                return candidate
        return day

    def new_patient(self):
        self.patient_busy = {}

    def place(self, *, day, preferred, minutes, clinician, location, room, kind, fixed, after):
        """The nearest free slot to `preferred` on `day` for the clinician, else on the nearest
        day they work there (up to REACH days away, on the same side of today, not before
        `after`), else with a colleague working there; `fixed` keeps the day."""
        length = -(-minutes // GRID)
        preferred = _row(preferred)
        # Wider and wider: only a clinic far too small for its patients gets past the first.
        for reach, anyone, keep in (
            (REACH, False, True),
            (REACH, True, True),
            (4 * REACH, True, True),
            (4 * REACH, True, False),
        ):
            for candidate in self._days(day, fixed and keep, after if keep else None, reach):
                people = self.staff.get((location, candidate.weekday()), ())
                for person in people if anyone else (clinician,):
                    slot = self._fit(candidate, person, location, length, preferred, room, kind)
                    if slot is not None:
                        self._hold(slot)
                        return slot
        raise RuntimeError(
            f"The demo clinic has no free slot near {day} at location {location}: "
            "it needs more clinicians or rooms for this many patients (clinic/demo.py)."
        )

    def _days(self, day, fixed, after, reach):
        yield day
        if fixed:
            return
        past = day < self.today
        for n in range(1, reach + 1):
            for candidate in (day + timedelta(days=n), day - timedelta(days=n)):
                if (candidate < self.today) == past and (after is None or candidate >= after):
                    yield candidate

    def _fit(self, day, clinician, location, length, preferred, room, kind):
        free = self.window(clinician, location, day)
        if not free:
            return None
        free &= ~(self.clinician_busy.get((clinician, day), 0) | self.patient_busy.get(day, 0))
        starts = _runs(free, length)
        rooms = devices = ()
        if starts and room:
            starts, rooms = _free(self.room_busy, self.rooms.get(location, ()), day, length, starts)
        if starts and kind is not None:
            ids = self.devices.get((location, kind), ())
            starts, devices = _free(self.device_busy, ids, day, length, starts)
        if not starts:
            return None
        start = _nearest(starts, preferred)
        return Slot(
            day,
            start,
            length,
            clinician,
            next((pk for pk, own in rooms if own >> start & 1), None),
            next((pk for pk, own in devices if own >> start & 1), None),
        )

    def _hold(self, slot):
        rows, day = slot.rows, slot.day
        for busy, pk in (
            (self.clinician_busy, slot.clinician),
            (self.room_busy, slot.room),
            (self.device_busy, slot.device),
        ):
            if pk is not None:
                busy[(pk, day)] = busy.get((pk, day), 0) | rows
        self.patient_busy[day] = self.patient_busy.get(day, 0) | rows


def _free(busy, ids, day, length, starts):
    """`starts` narrowed to where one of the resources `ids` is free for the whole visit, and
    [(id, its own starts)] in order (it stops at the first ids that cover every start)."""
    fits, each = 0, []
    for pk in ids:
        own = _runs(~busy.get((pk, day), 0), length) & starts
        if own:
            each.append((pk, own))
            fits |= own
            if fits == starts:
                break
    return fits, each


# --- the story patients' plans ----------------------------------------------------------------


def story_plans(n, p, today, users):
    """Plans for story patient n (patients.demo.stories); [] for others."""
    me, okafor, lindqvist = users["Clinician"], users["dr_okafor"], users["nurse_lindqvist"]

    def ago(days):
        return today - timedelta(days=days)

    def plan(title, sites, start, status, at, **extra):
        template = BY_TITLE[title]
        extra.setdefault("goal", template.goal)
        return PlanSpec(
            title=title,
            courses=template.courses,
            sites=[p.site(s) for s in sites],
            start=start,
            status=status,
            clinician=extra.pop("clinician", me),
            at=clock(*at),
            extras=False,
            **extra,
        )

    rana = BY_TITLE["Microneedling and 70% glycolic peel (Rana 2017)"]
    cheeks = ("left_cheek", "right_cheek")
    if n == 1:  # Rana peel today; back cryotherapy later this week
        return [
            plan(
                rana.title,
                cheeks,
                ago(63),
                "active",
                (10, 0),
                events={0: [("erythema", "mild", 2, "Expected redness; settled in 2 days.")]},
            ),
            plan("Cryotherapy x 4, every 28 days", ("upper_back",), ago(50), "active", (15, 30)),
        ]
    if n == 2:  # breakout recorded today; microneedling booked today
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                (*cheeks, "temples"),
                ago(84),
                "active",
                (14, 30),
            ),
        ]
    if n == 3:  # keloids: cryotherapy done; glycolic peels now (keloid history warns)
        return [
            plan(
                "Cryotherapy x 4, every 28 days",
                ("chest", "shoulders"),
                ago(300),
                "completed",
                (9, 15),
                amend={
                    1: (
                        "cycles",
                        3,
                        "Logged as 2 freeze-thaw cycles; the treatment sheet shows 3 (a third "
                        "cycle on the thicker keloid).",
                    )
                },
                events={
                    1: [
                        (
                            "hypopigmentation",
                            "mild",
                            None,
                            "Paler patch at the edge of a treated keloid.",
                        )
                    ]
                },
            ),
            plan("Glycolic peels x 4, every 3 weeks", ("forehead",), ago(40), "active", (11, 45)),
        ]
    if n == 4:  # same-day peel and microneedling today (in the room now), on apixaban
        return [
            plan(
                BY_TITLE["Peel and microneedling on the same day, x 3 every 6 weeks"].title,
                cheeks,
                ago(42),
                "active",
                (11, 15),
                visit_status={1: "in_treatment"},
                events={
                    0: [
                        (
                            "purpura",
                            "moderate",
                            9,
                            "Pinpoint bruising on both cheeks (apixaban); settled in 9 days.",
                        )
                    ]
                },
            ),
        ]
    if n == 5:  # isotretinoin ended two months ago; microneedling starts this week
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                cheeks,
                today + timedelta(3),
                "active",
                (16, 0),
                notes="Isotretinoin stopped 2 months ago: discussed the ASDS "
                "guidance; patient wishes to proceed.",
            )
        ]
    if n == 6:  # pregnant: plan on hold
        return [
            plan(
                "Microneedling x 6, every 4 weeks",
                ("jawline", "chin"),
                ago(160),
                "on_hold",
                (13, 0),
                stop_on=ago(118),
                notes=f"On hold since {ago(118)}: pregnancy. Resume after delivery and "
                "breastfeeding.",
            )
        ]
    if n == 7:  # breastfeeding: a salicylic acid course is booked (blocks)
        return [
            plan(
                "Lactic acid at home, monthly reviews x 3",
                ("chin", "left_cheek"),
                ago(495),
                "completed",
                (12, 0),
                clinician=lindqvist,
            ),
            plan(
                "Salicylic acid spot treatment, monthly reviews x 3",
                ("chin",),
                today + timedelta(4),
                "active",
                (12, 30),
                clinician=lindqvist,
                notes="Booked by phone: check her flags before the visit.",
            ),
        ]
    if n == 8:  # salicylate allergy and herpes: a Jessner peel is booked (blocks)
        return [
            plan(
                "Jessner peels x 3, every 4 weeks",
                ("forehead", "right_cheek"),
                today + timedelta(1),
                "active",
                (9, 30),
                notes="Aspirin allergy recorded after booking: change the agent.",
            )
        ]
    if n == 9:  # bleeding disorder; the third session is overdue
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                cheeks,
                ago(87),
                "active",
                (10, 30),
                clinician=okafor,
                visit_status={2: "scheduled"},
            )
        ]
    if n == 10:  # flare and isotretinoin: microneedling cancelled, a home plan drafted
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                ("right_cheek",),
                ago(70),
                "cancelled",
                (9, 0),
                stop_on=ago(40),
                notes="Cancelled: acne flare, started isotretinoin. Revisit 6 months after "
                "the course ends.",
            ),
            plan(
                "AHA at home, monthly reviews x 3",
                cheeks,
                today + timedelta(150),
                "draft",
                (10, 0),
                clinician=lindqvist,
                notes="Start when isotretinoin has ended and the skin is clear.",
            ),
        ]
    if n == 11:  # pulsed-dye laser brought forward: too soon after the last one
        return [
            plan(
                "Pulsed-dye laser x 4, every 6 weeks",
                ("shoulders", "lower_back"),
                ago(65),
                "active",
                (8, 30),
                moves={2: -17},
                visit_notes={2: "Brought forward at the patient's request (travelling)."},
            )
        ]
    if n == 12:  # acne cleared (first session overridden); a peel moved close to needling
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                cheeks,
                ago(232),
                "completed",
                (9, 0),
                visit_status={2: "missed"},
            ),
            plan(
                rana.title,
                cheeks,
                ago(77),
                "active",
                (16, 0),
                moves={3: 14},
                visit_status={3: "arrived"},  # in the waiting room
                visit_notes={3: "Moved from week 9: patient away."},
                events={1: [("crusting", "mild", 6, "Light crusting; settled in 6 days.")]},
            ),
        ]
    if n == NO_CONSENT_STORY:  # consent withdrawn: booked sessions blocked, a plan in draft
        return [
            plan(
                "Microneedling x 4, every 6 weeks",
                cheeks,
                ago(60),
                "active",
                (15, 0),
                notes=f"Treatment consent withdrawn on {ago(4)}: she wants time to think about "
                "the downtime. No further sessions unless she signs again.",
            ),
            plan(
                "Glycolic peels x 4, every 3 weeks",
                cheeks,
                today + timedelta(30),
                "draft",
                (15, 0),
                notes="Drafted with her at the last visit. Cannot be activated until her "
                "treatment consent is signed again.",
            ),
        ]
    if n == UNASSESSED_STORY:  # skin type not yet assessed; cryotherapy starts in 3 days
        return [
            plan(
                "Cryotherapy x 4, every 28 days",
                ("upper_back",),
                today + timedelta(3),
                "active",
                (10, 30),
                notes="Skin type not yet assessed: assess it at the first visit, before the "
                "first freeze.",
            ),
        ]
    return []


# --- the builder ------------------------------------------------------------------------------


class Builder:
    """Builds one chunk of patients' plans as unsaved objects, then inserts them."""

    def __init__(self, *, rng, today, users, clinicians, diary, catalogue, settings):
        self.rng, self.today, self.users = rng, today, users
        self.treatments, self.facts, self.definitions = catalogue
        self.settings = settings
        self.tz = timezone.get_current_timezone()
        self.diary = diary
        self.clinicians = tuple(clinicians)
        self.by_pk = {user.pk: user for user in self.clinicians}
        if len(self.clinicians) == len(CLINICIAN_WEIGHTS):
            self.weights = CLINICIAN_WEIGHTS
        else:  # a big demo: plans in proportion to each clinician's week
            self.weights = tuple(
                sum(diary.hours[(user.pk, location)] for location in diary.locations) or 1
                for user in self.clinicians
            )
        self.home = None  # the current patient's location, kept for their next plans
        self.sites = {}  # site id -> SiteState, across plans
        self.checked = {}  # id(params preset) -> cleaned parameters
        # Blocks that need an override when a session is logged; the shortcut below looks
        # only at patients with breakouts or salicylate flags unless the clinic made other
        # rules block too.
        blocking = set()
        for code, rule in safety.RULES.items():
            setting = settings.get(code)
            action = rule.default_action if setting is None else setting.action
            if action == safety.Action.BLOCK and (setting is None or setting.enabled):
                blocking.add(code)
        # Consent is left out: every demo patient's consent is in force on every day they
        # are treated (the one story without it has nothing logged since it was withdrawn).
        self.blocks_anyone = bool(
            blocking
            - {"active_breakout", "pregnancy_salicylic", "salicylate_allergy", "treatment_consent"}
        )
        self.reset()

    def reset(self):
        self.plans, self.plan_sites, self.courses = [], [], []
        self.sessions, self.rows, self.assessments = [], [], []
        self.events, self.overrides, self.amendments = [], [], []
        self.photos = []  # (unsaved SessionPhoto, body site, JPEG bytes)

    # -- per patient --

    def patient(self, n, p):
        self.diary.new_patient()
        self.home = None
        plans = story_plans(n, p, self.today, self.users) if n else self.generic(p)
        logged = []  # (session, day, [(treatment code, parameters)]) of completed sessions
        live = []  # safety.OtherSession of scheduled and completed sessions
        for spec in plans:
            self.plan(p, spec, logged, live)
        self.override_blocks(p, logged, live)

    def generic(self, p):
        rng, today = self.rng, self.today
        groups = sorted({site[3] for site in p.sites})
        if not groups or rng.random() < 0.08:  # registered, awaiting a plan
            return []
        wanted = _weighted(rng, ((1, 28), (2, 34), (3, 24), (4, 14)))
        avoid_salicylate = p.has_flag("pregnancy", "breastfeeding", "salicylate_allergy")
        cursor = p.registered + timedelta(days=rng.randint(0, 28))
        # Treat active acne first (seed): in-office work waits until the skin has cleared,
        # and while it has not, only treatments that do not need clear skin are planned.
        needs_clear_skin_ok = True
        if p.acne and p.acne[0][1] != "none":
            cleared = next((day for day, level in p.acne if level == "none"), None)
            if cleared is None:
                needs_clear_skin_ok = False
            else:
                cursor = max(cursor, cleared + timedelta(days=rng.randint(0, 21)))
        specs = []
        for k in range(wanted):
            group = rng.choice(groups)
            choices = [
                (t, t.weight)
                for t in TEMPLATES
                if group in t.groups
                and not (avoid_salicylate and t.salicylate)
                and (needs_clear_skin_ok or not self.needs_clear_skin(t))
            ]
            if not choices:
                break
            template = _weighted(rng, choices)
            courses = template.courses
            if template.vary and rng.random() < 0.4:
                courses = tuple(
                    C(c.treatment, max(2, c.sessions + rng.choice((-1, 1))), c.interval,
                      c.offset, c.label, c.params)
                    for c in courses
                )  # fmt: skip
            length = max(c.last_day for c in courses)
            clinician = _weighted(rng, zip(self.clinicians, self.weights, strict=True))
            spec = PlanSpec(
                title=template.title,
                courses=courses,
                sites=p.sites_in(group),
                start=cursor,
                status="active",
                clinician=clinician,
                at=rng.choice(SLOTS),
                goal=template.goal,
            )
            spec.clinician, spec.location = self.where(clinician, courses)
            specs.append(spec)
            start = self.workday(spec, cursor)
            if k < wanted - 1 and start + timedelta(days=length + 30) < today:
                spec.start = start
                if rng.random() < 0.8:
                    spec.status, end = "completed", start + timedelta(days=length)
                else:
                    spec.status = "cancelled"
                    spec.stop_on = end = start + timedelta(days=rng.randint(1, length))
                    spec.notes = rng.choice(
                        ("Cancelled at the patient's request.", "Moved abroad for work.")
                    )
                cursor = end + timedelta(days=rng.randint(14, 120))
                continue
            self.current(spec, cursor, length)
            break
        return specs

    def needs_clear_skin(self, template):
        return any(self.facts[c.treatment].needs_clear_skin for c in template.courses)

    def device_kinds(self, courses):
        return {kind for c in courses if (kind := self.treatments[c.treatment].device_kind_id)}

    def where(self, clinician, courses):
        """(clinician, location) of a generated plan: where the clinician works and the plan's
        devices are, the patient's usual site when it is one of them."""
        kinds = self.device_kinds(courses)
        choices = self.diary.locations_for(clinician.pk, kinds)
        if not choices:  # nowhere with the equipment: the first colleague who has it
            clinician = next(
                (c for c in self.clinicians if self.diary.locations_for(c.pk, kinds)), None
            )
            if clinician is None:
                raise RuntimeError("No demo clinician works where the demo plans' devices are.")
            choices = self.diary.locations_for(clinician.pk, kinds)
        if self.home in choices:
            return clinician, self.home
        if len(choices) == 1:
            location = choices[0]
        else:
            hours = [self.diary.hours[(clinician.pk, location)] for location in choices]
            location = self.rng.choices(choices, weights=hours)[0]
        self.home = location
        return clinician, location

    def story_location(self, spec, days):
        """A story plan's location: where its clinician works on its day today (which must
        not move), then on most of its visit days."""
        kinds = self.device_kinds(spec.courses)
        choices = self.diary.locations_for(spec.clinician.pk, kinds) or [
            location
            for location in self.diary.locations
            if all(self.diary.devices.get((location, kind)) for kind in kinds)
        ]

        def fit(location):
            works = [bool(self.diary.window(spec.clinician.pk, location, d)) for d in days]
            today = [ok for ok, d in zip(works, days, strict=True) if d == self.today]
            return all(today), sum(works)

        return max(choices, key=fit)

    def workday(self, spec, day):
        return self.diary.workday(spec.clinician.pk, spec.location, day)

    def current(self, spec, cursor, length):
        """The patient's latest plan: any status, placed around today."""
        rng, today = self.rng, self.today
        status = _weighted(
            rng,
            (("active", 55), ("draft", 8), ("on_hold", 7), ("completed", 22), ("cancelled", 8)),
        )
        days_since = (today - cursor).days
        if status == "completed" and days_since > length + 3:
            start = cursor + timedelta(rng.randint(0, days_since - length - 3))
            spec.start = self.workday(spec, start)
            if spec.start + timedelta(days=length) >= today:  # it would not have ended yet
                spec.start = self.diary.workday(
                    spec.clinician.pk, spec.location, start, backwards=True
                )
        elif status == "on_hold" and days_since > 7:
            first = max(0, days_since - length)
            spec.start = cursor + timedelta(days=rng.randint(first, days_since - 7))
            spec.stop_on = spec.start + timedelta(rng.randint(1, (today - spec.start).days))
            spec.notes = rng.choice(
                (
                    f"On hold from {spec.stop_on}: patient travelling.",
                    f"On hold from {spec.stop_on}: exams; patient to call back.",
                    f"On hold from {spec.stop_on}: awaiting review of a reaction.",
                )
            )
        elif status == "cancelled" and days_since > 7:
            spec.start = cursor + timedelta(days=rng.randint(0, days_since - 7))
            if rng.random() < 0.7:
                spec.stop_on = spec.start + timedelta(
                    days=rng.randint(1, min(length, (today - spec.start).days))
                )
            spec.notes = "Cancelled: patient did not wish to continue."
        elif status == "draft" or days_since < -60:
            status = "draft"
            spec.start = self.workday(spec, max(cursor, today + timedelta(days=rng.randint(3, 30))))
        else:
            status = "active"
            back = timedelta(days=rng.randint(0, length))
            spec.start = self.workday(spec, max(cursor, today - back))
        spec.status = status

    # -- per plan --

    def plan(self, p, spec, logged, live):
        rng, today = self.rng, self.today
        activated = not (
            spec.status == "draft" or (spec.status == "cancelled" and spec.stop_on is None)
        )
        visits = days = []
        if activated:
            visits = scheduling.calendar(
                spec.start,
                [
                    scheduling.CourseSpec(key, c.sessions, c.interval, c.offset)
                    for key, c in enumerate(spec.courses)
                ],
            )
            days = [v.on + timedelta(days=spec.moves.get(i, 0)) for i, v in enumerate(visits)]
        if spec.location is None:
            spec.location = self.story_location(spec, days)
        plan = Plan(
            patient_id=p.pk,
            title=spec.title,
            goal=spec.goal,
            clinician=spec.clinician,
            location_id=spec.location,
            start_date=spec.start,
            preferred_time=spec.at,
            status=spec.status,
            internal_notes=spec.notes,
            version=1,
        )
        self.plans.append(plan)
        self.plan_sites += [(plan, site) for site in spec.sites]
        courses = []
        for order, c in enumerate(spec.courses):
            course = Course(
                plan=plan,
                treatment_id=self.treatments[c.treatment].pk,
                sessions_count=c.sessions,
                interval_days=c.interval,
                offset_days=c.offset,
                default_parameters=self.checked_params(c),
                label=c.label,
                order=order,
            )
            courses.append(course)
        self.courses += courses
        if not activated:
            return  # never activated: no sessions yet
        statuses = [self.visit_status(spec, i, day) for i, day in enumerate(days)]
        if spec.extras:
            self.random_extras(spec, days, statuses)
        baseline_on = spec.start
        if baseline_on > today:  # assessed at the consultation
            baseline_on = max(p.registered, today - timedelta(days=rng.randint(0, 7)))
        for site in spec.sites:
            state = self.state(site, p)
            for instrument in INSTRUMENTS[state.group]:
                self.assess(p, site, None, instrument, baseline_on, spec.clinician, state)
        plan_start = {site: self.state(site, p).severity for site in spec.sites}
        carried = {key: dict(courses[key].default_parameters) for key in range(len(courses))}
        done = 0
        for index, (visit, day, status) in enumerate(zip(visits, days, statuses, strict=True)):
            completed = status == "completed"
            clinician = spec.clinician
            if completed and spec.extras and rng.random() < 0.05:
                other = rng.choice(self.clinicians)  # a colleague saw the patient that day
                if self.diary.window(other.pk, spec.location, day):
                    clinician = other
            treatments = [self.treatments[spec.courses[key].treatment] for key, _ in visit.items]
            kinds = [t.device_kind_id for t in treatments if t.device_kind_id]
            minutes = max(t.duration_minutes for t in treatments)
            slot = self.diary.place(
                day=day,
                preferred=spec.at,
                minutes=minutes,
                clinician=clinician.pk,
                location=spec.location,
                room=any(t.needs_room for t in treatments),
                kind=kinds[0] if kinds else None,
                # The stories' visits today stay today; a visit keeps its side of today.
                fixed=not spec.extras and day == today,
                after=spec.start,
            )
            day, clinician = slot.day, self.by_pk[slot.clinician]
            scheduled_at, ends_at = slot.bounds(self.tz, minutes)
            notes = spec.visit_notes.get(index, "")
            if completed and not notes and rng.random() < 0.3:
                notes = rng.choice(SESSION_NOTES)
            session = Session(
                # A visit of home treatments only is their review in clinic (as in services).
                kind=(
                    Session.Kind.TREATMENT
                    if any(t.in_office for t in treatments)
                    else Session.Kind.REVIEW
                ),
                plan=plan,
                patient_id=p.pk,
                scheduled_at=scheduled_at,
                ends_at=ends_at,
                status=status,
                clinician=clinician,
                location_id=spec.location,
                room_id=slot.room,
                device_id=slot.device,
                completed_at=(
                    scheduled_at + timedelta(minutes=rng.randint(25, 70)) if completed else None
                ),
                notes=notes,
                version=1,
            )
            self.sessions.append(session)
            used = []
            for key, number in visit.items:
                code = spec.courses[key].treatment
                if completed:
                    carried[key] = self.evolve(code, carried[key])
                    parameters = carried[key]
                else:
                    parameters = dict(courses[key].default_parameters)
                row = SessionTreatment(
                    session=session,
                    course=courses[key],
                    treatment_id=self.treatments[code].pk,
                    number=number,
                    parameters=parameters,
                )
                self.rows.append(row)
                if completed and index in spec.amend:
                    parameters = self.amend(session, row, code, *spec.amend[index])
                used.append((code, parameters))
                if status in Session.HOLDS_TIME:
                    live.append(safety.OtherSession(day, self.facts[code]))
            if completed:
                done += 1
                last = index == len(visits) - 1
                self.log(p, spec, session, index, day, used, done, last, plan_start, clinician)
                logged.append((session, day, used))

    def amend(self, session, row, code, name, value, reason):
        """A logged value corrected by the demo clinician the next day, as the session page
        does it: the row holds the corrected value and says when; the Amendment says why."""
        before = row.parameters.get(name)
        row.parameters = {**row.parameters, name: value}
        row.amended_at = min(session.completed_at + timedelta(days=1), timezone.now())
        label = self.definitions[code].get(name).label
        self.amendments.append(
            Amendment(
                session=session,
                reason=reason,
                changes=[
                    {
                        "what": f"{self.treatments[code].name}: {label}",
                        "before": str(before),
                        "after": str(value),
                    }
                ],
                amended_by=self.users["Clinician"],
                amended_at=row.amended_at,
            )
        )
        return row.parameters

    def visit_status(self, spec, index, day):
        if index in spec.visit_status:
            return spec.visit_status[index]
        if spec.status == "completed":
            return "completed"
        if spec.status in ("on_hold", "cancelled") and day >= spec.stop_on:
            return spec.status
        return "completed" if day < self.today else "scheduled"

    def random_extras(self, spec, days, statuses):
        rng, today = self.rng, self.today
        for i, status in enumerate(statuses):
            if status == "completed" and i and rng.random() < 0.04:
                statuses[i] = "missed"
        if spec.status == "active":
            past = [i for i, day in enumerate(days) if day < today]
            if past and (today - days[past[-1]]).days <= 14 and rng.random() < 0.12:
                statuses[past[-1]] = "scheduled"  # overdue: never logged

    # -- parameters --

    def checked_params(self, course):
        """The course's planned values, validated once against the catalogue's definitions."""
        key = (course.treatment, id(course.params))
        if key not in self.checked:
            try:
                self.checked[key] = clean_parameters(
                    self.definitions[course.treatment], course.params
                )
            except ValidationError as exc:
                raise RuntimeError(
                    f"Demo parameters for {course.treatment} no longer fit the catalogue: "
                    f"{exc.messages}"
                ) from exc
        return dict(self.checked[key])

    def evolve(self, code, previous):
        """Last session's values carried forward with the small changes clinicians make."""
        rng = self.rng
        params = dict(previous)
        steps = {
            "microneedling": (("needle_depth", 0.25, (0, 0, 1)), ("passes", 1, (0, 0, 0, 1, -1))),
            "pulsed_dye_laser": (("fluence", 0.5, (0, 1, 1, -1)),),
            "cryotherapy": (("seconds", 5, (0, 0, 1, -1)),),
            "chemical_peel": (("contact_time", 1, (0, 0, 1, -1)), ("layers", 1, (0, 0, 0, 1))),
            "aha": (("concentration", 2, (0, 0, 1)),),
            "lactic_acid": (("contact_time", 2, (0, 1, -1)),),
        }.get(code, ())
        for name, step, choices in steps:
            value = params.get(name)
            if value is None or isinstance(value, bool):
                continue
            value = value + step * rng.choice(choices)
            low, high = WORKING_RANGE.get((code, name), (None, None))
            definition = self.definitions[code].get(name)
            for bound, pick in ((low, max), (high, min)):
                if bound is not None:
                    value = pick(value, bound)
            if definition is not None:
                if definition.min_value is not None:
                    value = max(value, float(definition.min_value))
                if definition.max_value is not None:
                    value = min(value, float(definition.max_value))
            value = round(value, 2)
            params[name] = int(value) if value == int(value) else value
        return params

    # -- outcomes --

    def state(self, site, p):
        if site not in self.sites:
            rng = self.rng
            types = next(t for pk, _, t, _, _ in p.sites if pk == site)
            group = _group(types)
            counts = {}
            if "icepick" in types:
                counts |= {
                    "punched_out_deep_normal": rng.randint(8, 30),
                    "punched_out_deep_abnormal": rng.randint(0, 8),
                }
            if "boxcar" in types:
                counts |= {
                    "punched_out_shallow": rng.randint(8, 28),
                    "moderate_atrophic": rng.randint(3, 14),
                }
            if "rolling" in types:
                counts |= {
                    "shallow_broad_atrophic": rng.randint(5, 22),
                    "mild_atrophic": rng.randint(6, 25),
                    "deep_broad_atrophic": rng.randint(0, 5),
                }
            if "macular" in types:
                counts["macular"] = rng.randint(8, 40)
            severity = rng.uniform(0.55, 0.95)
            weights = {
                name: rng.uniform(0.75, 1.0)
                for name in ("vascularity", "pigmentation", "pliability", "height", "thickness",
                             "relief", "surface_area", "pain", "itching", "colour", "stiffness",
                             "irregularity", "overall")
            }  # fmt: skip
            if "keloid" in types:
                weights |= {"height": 1.0, "thickness": 1.0, "itching": 1.0}
            self.sites[site] = SiteState(group, severity, severity, weights, counts)
        return self.sites[site]

    def items(self, instrument, state):
        rng, s = self.rng, state.severity

        def level(name, low, high, spread):
            value = low + (high - low) * s * state.weights.get(name, 1.0) + rng.gauss(0, spread)
            return min(high, max(low, round(value)))

        definition = scales.get(instrument)
        if instrument == "vss":
            return {item.code: level(item.code, 0, item.maximum, 0.35) for item in definition.items}
        if instrument.startswith("posas"):
            spread = 0.6 if instrument == "posas_observer" else 0.9
            return {item.code: level(item.code, 1, 10, spread) for item in definition.items}
        counts = {
            kind: max(0, round(base * s / state.start + rng.gauss(0, 0.8)))
            for kind, base in state.counts.items()
        }
        if instrument == "gb_quantitative":
            return {item.code: counts.get(item.code, 0) for item in definition.items}
        if instrument == "gb_qualitative":
            if state.group == "macular":
                return {"grade": 1}
            return {"grade": min(4, max(2, round(2 + 2 * s + rng.gauss(0, 0.3))))}
        # ECCA: the count score (0 none, 1 under 5, 2 5-20, 3 over 20) of each kind.
        kinds = {
            "v_atrophic": counts.get("punched_out_deep_normal", 0)
            + counts.get("punched_out_deep_abnormal", 0),
            "u_atrophic": counts.get("punched_out_shallow", 0) + counts.get("moderate_atrophic", 0),
            "m_atrophic": counts.get("shallow_broad_atrophic", 0)
            + counts.get("deep_broad_atrophic", 0),
            "elastolysis": counts.get("mild_atrophic", 0) // 2,
        }
        return {
            item.code: 0 if not kinds.get(item.code) else 1 if kinds[item.code] < 5
            else 2 if kinds[item.code] <= 20 else 3
            for item in definition.items
        }  # fmt: skip

    def assess(self, p, site, session, instrument, day, assessor, state=None, items=None):
        if items is None:
            items = self.items(instrument, state)
        # total() validates the items against the instrument's ranges before adding them up.
        total = scales.get(instrument).total(items)
        self.assessments.append(
            Assessment(
                patient_id=p.pk,
                scar_site_id=site,
                session=session,
                instrument=instrument,
                assessed_on=day,
                assessor=assessor,
                items=items,
                total=total,
            )
        )

    def log(self, p, spec, session, index, day, used, done, last, plan_start, clinician):
        """Scores, pain, GAIS and adverse events of a completed session; then its effect."""
        rng, first = self.rng, spec.sites[0]
        if done >= 2:  # the first session's scores are the baseline taken that day
            for site in spec.sites:
                state = self.sites[site]
                names = INSTRUMENTS[state.group]
                for instrument in names if done % 3 == 0 or last else names[:1]:
                    self.assess(p, site, session, instrument, day, clinician, state)
        if done >= 2 and (done % 2 == 0 or last):  # GAIS at every other visit and the last
            start, now = plan_start[first], self.sites[first].severity
            gained = 1 - now / start
            gais = 1 if gained > 0.45 else 2 if gained > 0.28 else 3 if gained > 0.12 else 4
            if rng.random() < 0.15:
                gais = min(5, max(1, gais + rng.choice((-1, 1))))
            patient_gais = min(5, max(1, gais + _weighted(rng, ((0, 70), (-1, 15), (1, 15)))))
            for code, value in (("gais_clinician", gais), ("gais_patient", patient_gais)):
                self.assess(p, first, session, code, day, clinician, items={"improvement": value})
        pain = 0
        for code, parameters in used:
            low, high = PAIN.get(code, (0, 1))
            if parameters.get("agent") == "tca":
                low, high = low + 1, high + 1
            pain = max(pain, rng.randint(low, high))
        self.assess(p, first, session, "pain", day, clinician, items={"pain": pain})
        events = list(spec.events.get(index, ()))
        if spec.extras:
            events += self.random_events(p, used)
        for kind, severity, days, notes in events:
            resolved = day + timedelta(days=days) if days is not None else None
            self.events.append(
                AdverseEvent(
                    patient_id=p.pk,
                    session=session,
                    scar_site_id=first,
                    kind=kind,
                    severity=severity,
                    onset_on=day,
                    resolved_on=resolved if resolved and resolved <= self.today else None,
                    notes=notes,
                    recorded_by=clinician,
                )
            )
        if not spec.extras and p.photos_allowed(day):
            self.take_photos(p, spec, session, day, clinician)
        for code, _ in used:
            for site in spec.sites:
                state = self.sites[site]
                gain = EFFECT.get(code, HOME_EFFECT)[state.group]
                state.severity = min(
                    1.0, max(0.06, state.severity * (1 - gain - rng.gauss(0, 0.02)))
                )

    def take_photos(self, p, spec, session, day, clinician):
        """Story patients' photos, one per site and visit: synthetic images, few and small."""
        for site in spec.sites:
            body_site = next(body for pk, body, *_ in p.sites if pk == site)
            label = ScarSite.BodySite(body_site).label
            photo = SessionPhoto(
                session=session,
                scar_site_id=site,
                taken_on=day,
                caption=f"{label}, before treatment",
                taken_by=clinician,
            )
            state = self.sites[site]
            image = _synthetic_photo(self.rng, p.fitzpatrick, state.group, state.severity)
            self.photos.append((photo, body_site, image))

    def random_events(self, p, used):
        rng, events = self.rng, []
        herpes = p.has_flag("herpes_simplex")
        for code, _ in used:
            if rng.random() >= EVENT_RATE.get(code, 0.02):
                continue
            kind = _weighted(rng, EVENT_KINDS.get(code, EVENT_KINDS["home"]))
            if kind == "herpes_reactivation" and not herpes:
                kind = "erythema"
            low, high = EVENT_DAYS[kind]
            days = rng.randint(low, high)
            if kind.endswith("pigmentation") and rng.random() < 0.2:
                days = None  # still there at the last review
            severity = _weighted(rng, (("mild", 75), ("moderate", 22), ("severe", 3)))
            events.append((kind, severity, days, EVENT_NOTES[kind]))
        return events

    # -- safety overrides --

    def override_blocks(self, p, logged, live):
        """A logged session with a blocking finding carries the clinician's written override."""
        if not logged:
            return
        if not self.blocks_anyone and not (
            any(level not in ("", "none") for _, level in p.acne)
            or p.has_flag("pregnancy", "breastfeeding", "salicylate_allergy")
        ):
            return  # no blocking rule can fire for this patient
        flags = tuple(p.flags)
        for session, day, used in logged:
            others = list(live)
            for code, _ in used:  # leave this visit's own rows out, as the services do
                others.remove(safety.OtherSession(day, self.facts[code]))
            for code, parameters in used:
                ctx = safety.SafetyContext(
                    on=day,
                    treatment=self.facts[code],
                    fitzpatrick=p.fitzpatrick,
                    acne_level=p.acne_on(day),
                    flags=flags,
                    parameters=parameters,
                    other_sessions=tuple(others),
                )
                for finding in safety.evaluate(ctx, self.settings):
                    if not finding.blocks:
                        continue
                    reasons = OVERRIDE_REASONS.get(finding.rule, (DEFAULT_REASON,))
                    self.overrides.append(
                        SafetyOverride(
                            session=session,
                            treatment_id=self.treatments[code].pk,
                            rule=finding.rule,
                            finding=finding.message,
                            reason=self.rng.choice(reasons),
                            overridden_by=session.clinician,
                            overridden_at=session.scheduled_at - timedelta(minutes=5),
                        )
                    )

    # -- insert --

    def insert(self, user, counts):
        bulk_insert_with_m2m(
            Plan,
            self.plans,
            "target_sites",
            self.plan_sites,
            user=user,
            counts=counts,
        )
        for model, objs in (
            (Course, self.courses),
            (Session, self.sessions),
            (SessionTreatment, self.rows),
            (Assessment, self.assessments),
            (AdverseEvent, self.events),
            (SafetyOverride, self.overrides),
            (Amendment, self.amendments),
        ):
            bulk_insert(model, objs, user=user, counts=counts)
        # Photo files are named after their session, so they are written once sessions have
        # ids. Files are outside the transaction: a failed run can leave a few behind.
        photos = []
        for photo, body_site, image in self.photos:
            session = photo.session
            name = f"photos/{session.patient_id}/{session.pk}/{body_site}.jpg"
            photo.image = default_storage.save(name, ContentFile(image))
            photos.append(photo)
        bulk_insert(SessionPhoto, photos, user=user, counts=counts)
        bulk_insert(ReportPhotoChoice, _report_choice(photos), user=user, counts=counts)
        self.reset()


def _report_choice(photos):
    """One story site's report pair as chosen on the comparison page: its first and latest
    photo of one view, so the report reads as it would without the choice."""
    by_site = {}
    for photo in sorted(photos, key=lambda p: (p.taken_on, p.pk)):
        by_site.setdefault((photo.scar_site_id, photo.view), []).append(photo)
    for (site_id, _), items in sorted(by_site.items()):
        if items[0].taken_on < items[-1].taken_on:
            before, after = items[0], items[-1]
            return [
                ReportPhotoChoice(
                    scar_site_id=site_id, before=before, after=after, chosen_by=after.taken_by
                )
            ]
    return []


# --- seed -------------------------------------------------------------------------------------


def _clinicians(users):
    """The demo clinician plus two more, so that Today can be filtered by clinician (made by
    clinic/demo.py with their working weeks; made here too if that has not run)."""
    User = get_user_model()
    group = Group.objects.get(name=CLINICIAN)
    users = dict(users)
    for username, first, last, title in OTHER_CLINICIANS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "professional_title": title},
        )
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(group)
        users[username] = user
    return users


def _catalogue():
    treatments = {t.code: t for t in Treatment.objects.prefetch_related("parameters")}
    facts = {code: t.facts() for code, t in treatments.items()}
    definitions = {code: list(t.parameters.all()) for code, t in treatments.items()}
    return treatments, facts, definitions


def _load_patients():
    demo = Patient.objects.filter(record_number__startswith=DEMO_PREFIX)
    patients = {
        pk: PatientFacts(pk, record, fitz)
        for pk, record, fitz in demo.order_by("record_number").values_list(
            "pk", "record_number", "fitzpatrick_type"
        )
    }
    types = defaultdict(set)
    for site, code in ScarSite.scar_types.through.objects.filter(
        scarsite__patient__in=demo
    ).values_list("scarsite_id", "scartype__code"):
        types[site].add(code)
    for pk, patient, body_site, first in (
        ScarSite.objects.filter(patient__in=demo, archived_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "patient_id", "body_site", "first_recorded_on")
    ):
        site_types = frozenset(types[pk])
        patients[patient].sites.append((pk, body_site, site_types, _group(site_types), first))
    for patient, kind, start, end in MedicalFlag.objects.filter(patient__in=demo).values_list(
        "patient_id", "kind", "started_on", "ended_on"
    ):
        patients[patient].flags.append(safety.FlagPeriod(kind, start, end))
    for patient, signed, withdrawn in Consent.objects.filter(
        patient__in=demo, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY
    ).values_list("patient_id", "signed_on", "withdrawn_on"):
        patients[patient].photo_consents.append((signed, withdrawn))
    for patient, day, level in (
        AcneActivity.objects.filter(patient__in=demo)
        .order_by("recorded_on", "pk")
        .values_list("patient_id", "recorded_on", "level")
    ):
        patients[patient].acne.append((day, level))
    return list(patients.values())


# The protocols a manager has saved for the plan builder (issue 14): name -> demo template.
PROTOCOLS = {
    "Combined microneedling + peel (Rana 2017)": "Microneedling and 70% glycolic peel (Rana 2017)",
    "Cryotherapy x 4, every 28 days": "Cryotherapy x 4, every 28 days",
    "Glycolic peels x 4, every 3 weeks": "Glycolic peels x 4, every 3 weeks",
}


def seed_plan_templates(manager):
    """The demo's protocols as plan templates, with the values decided when planning."""
    from plans.forms import is_planning_parameter

    for name, title in PROTOCOLS.items():
        template, made = PlanTemplate.objects.get_or_create(
            name=name, defaults={"description": BY_TITLE[title].goal, "created_by": manager}
        )
        if not made:
            continue
        for order, c in enumerate(BY_TITLE[title].courses):
            treatment = Treatment.objects.get(code=c.treatment)
            planned = {d.code for d in treatment.parameters.all() if is_planning_parameter(d)}
            PlanTemplateCourse.objects.create(
                template=template,
                treatment=treatment,
                sessions_count=c.sessions,
                interval_days=c.interval,
                offset_days=c.offset,
                label=c.label,
                default_parameters={k: v for k, v in c.params.items() if k in planned},
                order=order,
            )


def seed(*, patients, rng, users, stdout):
    """Plans for the demo patients in the database; nothing when they have plans already."""
    seed_plan_templates(users.get("Manager"))
    if Plan.objects.filter(patient__record_number__startswith=DEMO_PREFIX).exists():
        stdout.write("Demo plans already exist: no plans added.")
        return
    started = time.monotonic()
    counts = Counter()
    with large_cache(), transaction.atomic():
        people = _load_patients()
        if not people:
            return
        users = _clinicians(users)
        treatments, facts, rows = _catalogue()
        definitions = {code: _ByCode(params) for code, params in rows.items()}
        today = timezone.localdate()
        clinicians = [users["Clinician"], users["dr_okafor"], users["nurse_lindqvist"]]
        colleagues = (  # a big demo's generated clinicians (clinic/demo.py)
            get_user_model()
            .objects.filter(pk__in=WorkingPattern.objects.values("clinician"))
            .exclude(pk__in=[user.pk for user in clinicians])
            .order_by("username")
        )
        builder = Builder(
            rng=rng,
            today=today,
            users=users,
            clinicians=[*clinicians, *colleagues],
            diary=Diary(today),
            catalogue=(treatments, facts, definitions),
            settings=SafetyRuleSetting.current(),
        )
        count = len(patient_stories(builder.today))
        stories = {record_number(n): n for n in range(1, count + 1)}
        for first in range(0, len(people), CHUNK):
            for p in people[first : first + CHUNK]:
                builder.patient(stories.get(p.record, 0), p)
            builder.insert(users["Manager"], counts)
            done = min(len(people), first + CHUNK)
            stdout.write(
                f"Plans: {done} of {len(people)} patients ({time.monotonic() - started:.1f} s)"
            )
    stdout.write(f"Demo plans added in {time.monotonic() - started:.1f} s:")
    write_counts(stdout, counts)


SKIN = {
    1: (243, 216, 198),
    2: (232, 194, 168),
    3: (212, 166, 134),
    4: (180, 132, 97),
    5: (136, 93, 62),
    6: (90, 61, 43),
}


def _synthetic_photo(rng, fitzpatrick, group, severity):
    """A small JPEG: skin of the patient's type with scar-like marks, more when worse."""
    skin = SKIN.get(fitzpatrick, SKIN[3])
    image = Image.new("RGB", (320, 240), skin)
    draw = ImageDraw.Draw(image)
    for _ in range(4 + round(24 * severity)):
        x, y = rng.randint(10, 310), rng.randint(10, 200)
        size = rng.randint(2, 4 + round(8 * severity))
        if group == "raised":
            red = (196, 84, 84)
            colour = tuple(
                round(c * (1 - severity) + r * severity) for c, r in zip(skin, red, strict=True)
            )
            box = (x - 2 * size, y - size, x + 2 * size, y + size)
        elif group == "atrophic":
            colour = tuple(round(c * (0.9 - 0.2 * severity)) for c in skin)
            box = (x - size, y - size, x + size, y + size)
        else:
            brown = (skin[0], skin[1] * 0.9, skin[2] * 0.85)
            colour = tuple(round(c * (1 - 0.3 * severity)) for c in brown)
            box = (x - size, y - size, x + size, y + size)
        draw.ellipse(box, fill=colour)
    draw.text((8, 222), "Synthetic demo image", fill=(40, 40, 40))
    out = BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class _ByCode(list):
    """A treatment's parameter rows: iterable for clean_parameters, and .get(code)."""

    def __init__(self, rows):
        super().__init__(rows)
        self._by_code = {row.code: row for row in rows}

    def get(self, code):
        return self._by_code.get(code)
