"""A clinic chain's demo on PostgreSQL: the clinic built once in Python, then copied in SQL.

`seed_demo --patients N` builds every visit of every patient in Python (plans/demo.py: the
diary, the courses' parameters, the scores). That is about 1,700 sessions a second, which
makes a 136,000-patient chain (a million sessions) take ten minutes. For a chain, the command
builds the first patients in Python as usual and then copies the first UNIT of them, with
everything they own, as further units of the chain: each copy has its own sites (the demo's
two, with their opening hours, rooms and devices), its own clinicians (with the same working
weeks), its own patients (new record numbers and names) and their consents, flags, scar
sites, plans, sessions, scores, adverse events, photos, amendments and history rows,
exactly as the originals but for those. So the chain has the demo's every story, plan state
and rule, once per unit, and no two of its
visits overlap for a clinician, room, device or patient (the exclusion constraints check
every copied row).

Copies are made by one INSERT ... SELECT per table for all units at once: a copied row's id
is the original's moved past the table's last id by one unit's span per copy, and so is each
id it points at. The ids of a unit's rows are contiguous because the loader writes each
patient's rows in record order (checked before copying).
"""

import time
from collections import Counter

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection
from simple_history.utils import get_history_manager_for_model

from clinic import bulkload
from clinic.models import Absence, Device, Location, OpeningHours, Room, WorkingPattern
from clinic.roles import CLINICIAN
from patients.demo import (
    DEMO_DIGITS,
    DEMO_PREFIX,
    FIRST_NAMES,
    LAST_NAMES,
    _ascii,
    bulk_insert,
    bulk_insert_with_m2m,
    has_history,
)
from patients.models import AcneActivity, Consent, MedicalFlag, Patient, ScarSite
from plans import outcome_summary
from plans.models import (
    AdverseEvent,
    Amendment,
    Assessment,
    Course,
    OutcomePatientDay,
    OutcomeSessionGroup,
    OutcomeSessionScore,
    Plan,
    SafetyOverride,
    Session,
    SessionPhoto,
    SessionTreatment,
)

UNIT = 1000  # patients per copied unit of the chain

# Each copied model and the field that ties its rows to a patient's (in loading order).
OWNERS = (
    (Patient, None),
    (Consent, "patient"),
    (MedicalFlag, "patient"),
    (AcneActivity, "patient"),
    (ScarSite, "patient"),
    (ScarSite.scar_types.through, "scarsite"),
    (Plan, "patient"),
    (Plan.target_sites.through, "plan"),
    (Course, "plan"),
    (Session, "patient"),
    (SessionTreatment, "session"),
    (Assessment, "patient"),
    (AdverseEvent, "patient"),
    (SafetyOverride, "session"),
    (Amendment, "session"),
    (SessionPhoto, "session"),
)


def units(patients):
    """(patients to build in Python, copies of the first UNIT of them) for a load of
    `patients` into a fresh PostgreSQL database; (patients, 0) otherwise."""
    if not bulkload.available() or patients < 2 * UNIT or Patient.objects.exists():
        return patients, 0
    copies = patients // UNIT - 1
    return patients - copies * UNIT, copies


class _Table:
    """A copied table: its id range, the part that belongs to the unit, and the shift."""

    def __init__(self, model, owner_column, owner, tracked=None):
        self.model, self.owner_column, self.owner = model, owner_column, owner
        self.tracked = tracked  # for a history table: the model whose ids its `id` holds
        opts = model._meta
        self.table, self.pk = opts.db_table, opts.pk.column

    def measure(self, cursor, first_patients):
        q = connection.ops.quote_name
        table, pk = q(self.table), q(self.pk)
        cursor.execute(f"SELECT min({pk}), max({pk}), count(*) FROM {table}")  # nosec B608: names from model meta, quoted; numbers are ints computed here
        self.low, self.high, total = cursor.fetchone()
        if self.owner is None:  # the patients: the first UNIT of them
            cursor.execute(
                f"SELECT max({pk}), count(*) FROM (SELECT {pk} FROM {table} "  # nosec B608: names from model meta, quoted; numbers are ints computed here
                f"ORDER BY {pk} LIMIT %s) first",
                [first_patients],
            )
        else:
            cursor.execute(
                f"SELECT max({pk}), count(*) FROM {table} "  # nosec B608: names from model meta, quoted; numbers are ints computed here
                f"WHERE {q(self.owner_column)} BETWEEN %s AND %s",
                [self.owner.low, self.owner.cutoff],
            )
        self.cutoff, self.rows = cursor.fetchone()
        if self.low is None or not self.rows:
            self.low = self.high = self.cutoff = 0
            self.span = self.base = 0
            return
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE {pk} BETWEEN %s AND %s",  # nosec B608: names from model meta, quoted; numbers are ints computed here
            [self.low, self.cutoff],
        )
        if cursor.fetchone()[0] != self.rows:
            raise RuntimeError(f"{self.table}: the unit's rows are not contiguous; cannot copy")
        self.span = self.cutoff - self.low + 1
        self.base = self.high + 1 - self.low

    def shift(self, expression):
        """`expression` (an id of this table) in copy g.k."""
        return f"({expression} + {int(self.base)} + (g.k - 1) * {int(self.span)})"


def replicate(*, copies, built, users, stdout, later=None):
    """Copy the first UNIT demo patients (and all they own) `copies` times (see above).

    `later(sql, table, params)` runs a table's copy (bulkload.Build.later: at once,
    or with the index builds on other connections); without it, each runs here."""
    if copies <= 0:
        return
    started = time.monotonic()
    manager = users["Manager"]
    tables, order = {}, []
    for model, owner in OWNERS:
        field = model._meta.get_field(owner) if owner else None
        parent = tables[field.related_model] if field else None
        table = _Table(model, field.column if field else None, parent)
        tables[model] = table
        order.append(table)
        history = _history(model)
        if history is not None:
            tables[history] = _Table(history, "id", table, tracked=model)
            order.append(tables[history])
    for model, _ in OWNERS:  # the history of M2M rows, tied to their object's history row
        history = _history(model)
        if history is None:
            continue
        for through, m2m in _history_m2m(model, history):
            tables[m2m] = _Table(m2m, "history_id", tables[history], tracked=through)
            order.append(tables[m2m])
    if later is None:

        def later(sql, table, params=None):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)

    counts = Counter()
    q = connection.ops.quote_name
    # The outcomes summary's rows of each session and patient, computed once for the built
    # patients and copied with them below: the chain's copies have the unit's days,
    # treatments, scar types, scores and events, so their rows are the unit's, renumbered.
    outcome_summary.write_loaded_rows()
    with connection.cursor() as cursor:
        for table in order:
            table.measure(cursor, UNIT)
        staff = _copy_staff(copies, manager, counts)
        for table in order:
            if not table.rows:
                continue
            # The ids the copies take, before they are written (so that nothing else
            # written meanwhile can take them): the last is the table's last id moved by
            # `copies` spans.
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                [q(table.table), table.pk, table.high + copies * table.span],
            )
            sql, params = _copy_rows(table, tables, copies, built, staff)
            later(sql, table.table, params)
            counts[table.table] += table.rows * copies
        for model, sql in _copy_summary_rows(tables, copies):
            later(sql, model._meta.db_table)
    stdout.write(
        f"Chain: {copies} more units of {UNIT} patients copied "
        f"({sum(counts.values())} rows; staff and statements ready in "
        f"{time.monotonic() - started:.1f} s)."
    )


# The outcomes summary's per-session and patient rows: each model, the columns holding ids of
# copied tables, and the one that ties a row to the unit.
SUMMARY_ROWS = (
    (OutcomeSessionGroup, {"session_id": Session, "patient_id": Patient}, "patient_id"),
    (OutcomeSessionScore, {"session_id": Session}, "session_id"),
    (OutcomePatientDay, {"patient_id": Patient}, "patient_id"),
)


def _copy_summary_rows(tables, copies):
    """[(model, INSERT ... SELECT)]: the unit's summary rows, once per copy, with the copy's
    session and patient ids (their own ids are new: nothing points at them)."""
    q = connection.ops.quote_name
    statements = []
    for model, ids, owner_column in SUMMARY_ROWS:
        owner = tables[ids[owner_column]]
        columns, values = [], []
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            source = f"t.{q(field.column)}"
            columns.append(q(field.column))
            copied = ids.get(field.column)
            values.append(tables[copied].shift(source) if copied else source)
        table = q(model._meta.db_table)
        statements.append(
            (
                model,
                f"INSERT INTO {table} ({', '.join(columns)}) "  # nosec B608: names from model meta, quoted; numbers are ints computed here
                f"SELECT {', '.join(values)} FROM {table} t "
                f"CROSS JOIN generate_series(1, {int(copies)}) AS g(k) "
                f"WHERE t.{q(owner_column)} BETWEEN {int(owner.low)} AND {int(owner.cutoff)}",
            )
        )
    return statements


def _history(model):
    """The history model of `model`, or None (an M2M through table has none of its own)."""
    return get_history_manager_for_model(model).model if has_history(model) else None


def _history_m2m(model, history):
    """[(through model, its history model)] for the M2M fields `model` keeps history of."""
    return [
        (field.remote_field.through, getattr(history, field.name).model)
        for field in model._meta.many_to_many
        if hasattr(history, field.name)
    ]


def _copy_staff(copies, manager, counts):
    """For each copy: a site per demo site (same opening hours, "Harbour Clinic 2"), and
    there a room per room, a device per device, and a clinician per demo clinician (same
    week, same leave). Returns {related model: (copy numbers, old ids, new ids)}."""
    User = get_user_model()
    group = Group.objects.get(name=CLINICIAN)
    clinicians = list(
        User.objects.filter(pk__in=WorkingPattern.objects.values("clinician")).order_by("pk")
    )
    patterns = list(WorkingPattern.objects.order_by("pk"))
    absences = list(Absence.objects.order_by("pk"))
    sites = list(Location.objects.order_by("pk"))
    hours = list(OpeningHours.objects.order_by("pk"))
    rooms = list(Room.objects.order_by("pk"))
    devices = list(Device.objects.order_by("pk"))
    users, user_map = [], []
    for k in range(1, copies + 1):
        for person in clinicians:
            user = User(
                username=f"{person.username}_u{k + 1}",
                first_name=person.first_name,
                last_name=f"{person.last_name} ({k + 1})",
                professional_title=person.professional_title,
                password=make_password(None),  # unusable: a colleague, not a login
            )
            users.append(user)
            user_map.append((k, person, user))
    bulk_insert_with_m2m(
        User, users, "groups", [(user, group.pk) for user in users], user=manager, counts=counts
    )
    new_sites = [
        (k, site, Location(name=f"{site.name} {k + 1}", address=site.address, phone=site.phone))
        for k in range(1, copies + 1)
        for site in sites
    ]
    bulk_insert(Location, [s for _, _, s in new_sites], user=manager, counts=counts)
    site_of = {(k, old.pk): new.pk for k, old, new in new_sites}
    bulk_insert(
        OpeningHours,
        [
            OpeningHours(
                location_id=site_of[k, h.location_id],
                weekday=h.weekday,
                starts=h.starts,
                ends=h.ends,
            )
            for k in range(1, copies + 1)
            for h in hours
        ],
        user=manager,
        counts=counts,
    )
    new_rooms = [
        (k, room, Room(location_id=site_of[k, room.location_id], name=room.name))
        for k in range(1, copies + 1)
        for room in rooms
    ]
    new_devices = [
        (
            k,
            device,
            Device(
                location_id=site_of[k, device.location_id], kind_id=device.kind_id, name=device.name
            ),
        )
        for k in range(1, copies + 1)
        for device in devices
    ]
    bulk_insert(Room, [r for _, _, r in new_rooms], user=manager, counts=counts)
    bulk_insert(Device, [d for _, _, d in new_devices], user=manager, counts=counts)
    twin = {(k, old.pk): new for k, old, new in user_map}
    bulk_insert(
        WorkingPattern,
        [
            WorkingPattern(
                clinician_id=twin[k, p.clinician_id].pk,
                location_id=site_of[k, p.location_id],
                weekday=p.weekday,
                starts=p.starts,
                ends=p.ends,
            )
            for k in range(1, copies + 1)
            for p in patterns
        ],
        user=manager,
        counts=counts,
    )
    bulk_insert(
        Absence,
        [
            Absence(
                clinician_id=twin[k, a.clinician_id].pk,
                first_day=a.first_day,
                last_day=a.last_day,
                reason=a.reason,
            )
            for k in range(1, copies + 1)
            for a in absences
            if (k, a.clinician_id) in twin
        ],
        user=manager,
        counts=counts,
    )
    maps = {}
    for model, triples in (
        (User, [(k, old.pk, new.pk) for k, old, new in user_map]),
        (Location, [(k, old.pk, new.pk) for k, old, new in new_sites]),
        (Room, [(k, old.pk, new.pk) for k, old, new in new_rooms]),
        (Device, [(k, old.pk, new.pk) for k, old, new in new_devices]),
    ):
        maps[model] = tuple(list(column) for column in zip(*triples, strict=True)) or ([], [], [])
    return maps


def _names():
    """SQL array literals of the demo's names (and their ASCII e-mail forms), by sex."""

    def array(values):  # the demo's own constant names: quoted as SQL string literals
        return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"

    return {
        sex: (array(names), array([_ascii(n) for n in names]), len(names))
        for sex, names in FIRST_NAMES.items()
    }, (array(LAST_NAMES), array([_ascii(n) for n in LAST_NAMES]), len(LAST_NAMES))


def _copy_rows(table, tables, copies, built, staff):
    """All copies of the unit's rows of `table`: one INSERT ... SELECT and its parameters
    (the staff maps, as arrays)."""
    q = connection.ops.quote_name
    params = []
    model = table.model
    joins, columns, values = [], [], []
    is_patient = Patient in (model, table.tracked)
    for field in model._meta.concrete_fields:
        column = field.column
        source = f"t.{q(column)}"
        if field.primary_key:
            value = table.shift(source)
        elif table.tracked is not None and field.name == "id":
            value = tables[table.tracked].shift(source)
        elif field.is_relation and field.related_model in tables:
            value = tables[field.related_model].shift(source)
        elif field.is_relation and field.related_model in staff:
            alias = f"m{len(joins)}"
            joins.append(
                f"LEFT JOIN unnest(%s::int[], %s::bigint[], %s::bigint[]) "
                f"AS {alias}(k, old, new) ON {alias}.k = g.k AND {alias}.old = {source}"
            )
            params.extend(staff[field.related_model])
            value = f"COALESCE({alias}.new, {source})"
        elif is_patient and column in ("record_number", "first_name", "last_name", "email"):
            value = _patient_column(column, tables[Patient], built)
        else:
            value = source
        columns.append(q(column))
        values.append(value)
    sql = (
        f"INSERT INTO {q(table.table)} ({', '.join(columns)}) "  # nosec B608: names from model meta, quoted; numbers are ints computed here
        f"SELECT {', '.join(values)} FROM {q(table.table)} t "
        f"CROSS JOIN generate_series(1, {int(copies)}) AS g(k) {' '.join(joins)} "
        f"WHERE t.{q(table.pk if table.owner is None else table.owner_column)} "
        f"BETWEEN {int(table.low if table.owner is None else table.owner.low)} "
        f"AND {int(table.cutoff if table.owner is None else table.owner.cutoff)}"
    )
    return sql, params or None


def _patient_column(column, patients, built):
    """A copied patient's record number (the next after the built ones and the copies
    before), and names picked from the demo's lists by the new id, so that copies are
    different people on every screen."""
    number = (
        f"(substring(t.record_number from {len(DEMO_PREFIX) + 1})::int "
        f"+ {int(built)} + (g.k - 1) * {UNIT})"
    )
    if column == "record_number":
        return (
            f"'{DEMO_PREFIX}' || CASE WHEN length({number}::text) >= {DEMO_DIGITS} "
            f"THEN {number}::text ELSE lpad({number}::text, {DEMO_DIGITS}, '0') END"
        )
    new_id = patients.shift("t.id")
    first, last = _names()
    pick_last = f"(1 + mod({new_id} * 7919, {last[2]}))"
    first_by_sex = {
        sex: (names, ascii_names, f"(1 + mod({new_id} * 104729, {size}))")
        for sex, (names, ascii_names, size) in first.items()
    }

    def by_sex(index):
        cases = " ".join(
            f"WHEN '{sex}' THEN ({arrays[index]})[{pick}]"
            for sex, (*arrays, pick) in first_by_sex.items()
        )
        return f"CASE t.sex {cases} ELSE t.first_name END"

    if column == "first_name":
        return by_sex(0)
    if column == "last_name":
        return f"({last[0]})[{pick_last}]"
    # email: first.last.<number>@example.org, as patients/demo.py writes it
    return (
        f"CASE WHEN t.email = '' THEN '' ELSE "
        f"{by_sex(1)} || '.' || ({last[1]})[{pick_last}] || '.' || {number}::text "
        f"|| '@example.org' END"
    )
