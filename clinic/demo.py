"""The demo clinic's sites, rooms, equipment and staff hours for `manage.py seed_demo`.

Runs before patients/demo.py and plans/demo.py (the app registry lists `clinic` first), so
that the demo plans can place every visit in a free slot of these sites. Everything is made
up: the sites, their addresses (example towns, the fictional 555-01xx phone range) and the
clinicians. Idempotent: each record is looked up by its name first, and a site's hours, a
clinician's pattern or leave are added only where there are none yet.

A bigger demo list needs a bigger clinic: up to 900 patients (the default is 60) it is the two
sites below with three clinicians; beyond that there is a clinician per SCALE_PATIENTS
patients, the generated ones each with a room of their own, and lasers and cryotherapy units
grow with the list too, so that `--patients 20000` still fits every visit into opening hours
without a clash.
"""

import math
from dataclasses import dataclass
from datetime import date, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from clinic.models import (
    Absence,
    Closure,
    Device,
    DeviceKind,
    Letterhead,
    Location,
    OpeningHours,
    Room,
    WorkingPattern,
)
from clinic.roles import CLINICIAN, MANAGER

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
DAY = ((time(8, 30), time(13, 0)), (time(13, 30), time(18, 0)))  # with a lunch break


@dataclass(frozen=True, eq=False)  # hashed by identity: a key of dicts below
class Site:
    name: str
    address: str
    phone: str
    hours: dict  # weekday -> ((opens, closes), ...)
    rooms: tuple
    devices: tuple  # (device kind code, name)


HARBOUR = Site(
    "Harbour Street Clinic",
    "14 Harbour Street, Exampleton EX1 4HS",
    "555-0140",
    {MON: DAY, TUE: DAY, WED: DAY, THU: DAY, FRI: DAY, SAT: ((time(9, 0), time(13, 0)),)},
    ("Room 1", "Room 2", "Room 3"),
    (("pulsed_dye_laser", "V-Beam Prima"), ("cryotherapy_unit", "CryoPro")),
)
NORTHGATE = Site(
    "Northgate Clinic",
    "3 Northgate Parade, Demoford DF2 7NG",
    "555-0170",
    {
        **dict.fromkeys((TUE, WED, THU, FRI, SAT), ((time(9, 0), time(17, 0)),)),
        SUN: ((time(10, 0), time(16, 0)),),  # a Sunday list for patients who work all week
    },
    ("Room A", "Room B"),
    (("cryotherapy_unit", "CryoPro 2"),),
)
SITES = (HARBOUR, NORTHGATE)
CLINIC_NAME = "Exampleton Skin & Scar Clinic"
CLINIC_EMAIL = "appointments@clinic.example.org"
LETTERHEAD_FOOTER = (
    "A synthetic demo clinic. Questions about your treatment? Call the site where you are "
    "treated; in an emergency call 999."
)
DEVICE_KIND_NAMES = {"pulsed_dye_laser": "Pulsed-dye laser", "cryotherapy_unit": "Cryotherapy unit"}

# The clinicians besides the demo login `clinician` (plans/demo.py gives them plans).
OTHER_CLINICIANS = (
    # username, first, last, title
    ("dr_okafor", "Chidi", "Okafor", "Consultant dermatologist"),
    ("nurse_lindqvist", "Sofia", "Lindqvist", "Aesthetic nurse practitioner"),
)
# Who works where on which weekday (the site's opening hours that day): someone at every site
# every day it opens.
WEEKS = {
    "clinician": dict.fromkeys((MON, TUE, WED, THU, FRI), HARBOUR),
    "dr_okafor": {TUE: NORTHGATE, WED: NORTHGATE, THU: HARBOUR, FRI: NORTHGATE, SAT: HARBOUR},
    "nurse_lindqvist": {MON: HARBOUR, WED: HARBOUR, THU: NORTHGATE, SAT: NORTHGATE, SUN: NORTHGATE},
}
# UK bank holidays on which every site closes (26 December 2026 is a Saturday: its
# substitute day is Monday 28 December).
CLOSURES = (
    (date(2025, 12, 25), date(2025, 12, 26), "Christmas Day and Boxing Day"),
    (date(2026, 12, 25), date(2026, 12, 28), "Christmas Day and Boxing Day (substitute day)"),
    (date(2027, 1, 1), date(2027, 1, 1), "New Year's Day"),
)
LEAVE = ("dr_okafor", "Annual leave")  # a week, the week after next

# Growth with the demo list (measured on the generated plans: the busiest week holds about
# 0.1 clinician-hours per patient, 0.01 of them with the laser, 0.0125 with a cryotherapy unit).
SCALE_PATIENTS = 300  # patients per clinician
LASER_PATIENTS = 3000  # patients per pulsed-dye laser
CRYO_PATIENTS = 2500  # patients per cryotherapy unit


def seed(*, patients, rng, users, stdout):
    """The two demo sites and their staff hours; extra staff and equipment for a big list."""
    today = timezone.localdate()
    manager = users[MANAGER]
    added = []
    locations = {}
    for site in SITES:
        location, created = _get_or_create(
            Location,
            {"name": site.name},
            {"address": site.address, "phone": site.phone},
            manager,
        )
        locations[site] = location
        if created:
            added.append(location)
        if not location.opening_hours.exists():
            added += _bulk(
                OpeningHours,
                [
                    OpeningHours(location=location, weekday=day, starts=starts, ends=ends)
                    for day, spans in sorted(site.hours.items())
                    for starts, ends in spans
                ],
                manager,
            )
        for name in site.rooms:
            added += _created(Room, {"location": location, "name": name}, {}, manager)
    # The clinic's letterhead (Harbour Street's contacts) and Northgate's own.
    for location in (None, locations[NORTHGATE]):
        site = NORTHGATE if location else HARBOUR
        added += _created(
            Letterhead,
            {"location": location},
            {
                "clinic_name": CLINIC_NAME if location is None else f"{CLINIC_NAME}, {site.name}",
                "address": site.address,
                "phone": site.phone,
                "email": CLINIC_EMAIL,
                "website": "clinic.example.org",
                "footer": LETTERHEAD_FOOTER,
            },
            manager,
        )
    kinds = {
        code: DeviceKind.objects.get_or_create(code=code, defaults={"name": name})[0]
        for code, name in DEVICE_KIND_NAMES.items()
    }
    for site in SITES:
        for code, name in site.devices:
            added += _created(
                Device, {"location": locations[site], "name": name}, {"kind": kinds[code]}, manager
            )
    for first, last, reason in CLOSURES:
        lookup = {"location": None, "first_day": first, "last_day": last}
        added += _created(Closure, lookup, {"reason": reason}, manager)

    staff = _clinicians(users, manager)
    weeks = {user: _week(username, today) for username, user in staff.items()}
    extra = max(0, math.ceil(patients / SCALE_PATIENTS) - len(staff))
    for k in range(extra):
        # Alternately at each site, all week (Sundays stay a short list of its own).
        site, nth = SITES[k % 2], len(SITES[k % 2].rooms) + k // 2 + 1
        user = _generated_clinician(len(staff) + k + 1, manager)
        room = f"Room {nth}" if site is HARBOUR else f"Room {_letters(nth)}"
        added += _created(Room, {"location": locations[site], "name": room}, {}, manager)
        weeks[user] = {day: site for day in site.hours if day != SUN}
    added += _equipment(
        locations, kinds, "pulsed_dye_laser", math.ceil(patients / LASER_PATIENTS), manager
    )
    added += _equipment(
        locations, kinds, "cryotherapy_unit", math.ceil(patients / CRYO_PATIENTS), manager
    )

    patterns = []
    for user, week in weeks.items():
        if WorkingPattern.objects.filter(clinician=user).exists():
            continue
        patterns += [
            WorkingPattern(
                clinician=user, location=locations[site], weekday=day, starts=starts, ends=ends
            )
            for day, site in sorted(week.items())
            for starts, ends in site.hours[day]
        ]
    added += _bulk(WorkingPattern, patterns, manager)
    on_leave, reason = staff[LEAVE[0]], LEAVE[1]
    if not Absence.objects.filter(clinician=on_leave).exists():
        monday = today + timedelta(days=14 - today.weekday())
        added += _bulk(
            Absence,
            [
                Absence(
                    clinician=on_leave,
                    first_day=monday,
                    last_day=monday + timedelta(days=6),
                    reason=reason,
                )
            ],
            manager,
        )
    if added:
        stdout.write(
            f"Demo clinic set up: {len(locations)} locations, "
            f"{Room.objects.count()} rooms, {Device.objects.count()} devices, "
            f"{len(weeks)} clinicians' working patterns ({len(added)} records added)."
        )
    else:
        stdout.write("Demo locations already exist: nothing added.")


def _week(username, today):
    """A demo clinician's week. The demo login also works the weekday the demo is loaded on
    (at Northgate, open at weekends), so that the story patients due today are in her list
    whatever the day."""
    week = dict(WEEKS[username])
    if username == "clinician" and today.weekday() not in week:
        week[today.weekday()] = NORTHGATE
    return week


def _clinicians(users, manager):
    """The demo login `clinician` and the other demo clinicians (created here)."""
    User = get_user_model()
    group = Group.objects.get(name=CLINICIAN)
    staff = {"clinician": users[CLINICIAN]}
    for username, first, last, title in OTHER_CLINICIANS:
        staff[username] = _clinician(User, group, username, first, last, title, manager)
    return staff


def _generated_clinician(n, manager):
    title = "Specialty doctor" if n % 2 else "Aesthetic nurse practitioner"
    return _clinician(
        get_user_model(),
        Group.objects.get(name=CLINICIAN),
        f"demo_clinician_{n:03d}",
        "Demo",
        f"Clinician {n}",
        title,
        manager,
    )


def _clinician(User, group, username, first, last, title, manager):
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, first_name=first, last_name=last, professional_title=title)
        user.set_unusable_password()  # a demo colleague, not a login
        user._history_user = manager
        user.save()
        user.groups.add(group)
    return user


def _equipment(locations, kinds, code, wanted, manager):
    """Extra devices of a kind until the clinic has `wanted`, alternating between sites."""
    kind = kinds[code]
    have = Device.objects.filter(kind=kind).count()
    added = []
    sites = list(locations.values())
    for n in range(have + 1, wanted + 1):
        location = sites[(n + 1) % len(sites)]  # the second one at Northgate
        name = f"{kind.name} {n}"
        added += _created(Device, {"location": location, "name": name}, {"kind": kind}, manager)
    return added


def _letters(n):
    """1 -> A, 26 -> Z, 27 -> AA: names for the rooms of a site that letters its rooms."""
    name = ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _get_or_create(model, lookup, defaults, user):
    """get_or_create, with the history row of a new record kept as `user`'s change."""
    found = model.objects.filter(**lookup).first()
    if found is not None:
        return found, False
    obj = model(**lookup, **defaults)
    obj._history_user = user
    obj.full_clean()
    obj.save()
    return obj, True


def _created(model, lookup, defaults, user):
    """[the new record], or [] when one with that lookup exists."""
    obj, created = _get_or_create(model, lookup, defaults, user)
    return [obj] if created else []


def _bulk(model, objs, user):
    for obj in objs:
        obj.full_clean()
    if objs:
        bulk_create_with_history(objs, model, default_user=user)
    return objs
