"""The appointment book's pages: the day grid, a week, booking a visit, free-slot search and
the front desk's arrival steps."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from clinic.models import Location, OpeningHours, Room, WorkingPattern
from clinic.roles import CLINICIAN
from clinic.timeutils import day_bounds
from clinic.validators import validate_clinic_date
from clinic.views_helpers import date_param, safe_next
from patients.models import Patient
from plans import diary, services
from plans.models import Reminder, Session, SessionTreatment
from plans.views import _once
from plans.views._common import _int
from plans.views.sessions import OUT_OF_DATE, posted_version

STEP = 15  # minutes per row of the grid
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time", "step": STEP * 60}, format="%H:%M")


# --- the grid ------------------------------------------------------------------------------


@dataclass
class Cell:
    """One block of a column: an appointment, a bookable free slot or time nobody can book."""

    row: int  # first grid row (1 is the header)
    end: int  # grid row the block ends before
    kind: str  # "appointment" | "free" | "off"
    start: datetime | None = None
    session: Session | None = None
    href: str = ""  # a free cell's booking link, built here: a {% url %} per cell is slow


def _book_links(columns, location):
    """Each free cell's link to booking with its clinician or room, place and time filled in."""
    base = reverse("appointment_new")
    for column in columns:
        fixed = {"location": location.pk} if location is not None else {}
        if column.clinician is not None:
            fixed["clinician"] = column.clinician.pk
        if column.room is not None:
            fixed["room"] = column.room.pk
        for cell in column.cells:
            if cell.kind == "free":
                local = timezone.localtime(cell.start)
                query = {"date": f"{local:%Y-%m-%d}", "time": f"{local:%H:%M}", **fixed}
                cell.href = f"{base}?{urlencode(query)}"


@dataclass
class Column:
    key: str  # "clinician-3", "room-2" or a date
    title: str
    index: int  # grid column (1 is the time axis)
    clinician: object = None
    room: object = None
    day: date | None = None
    cells: list[Cell] = field(default_factory=list)


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _rows_for(day, spans, sessions):
    """First and last minute of the grid: the opening hours, widened to every appointment."""
    first = [_minutes(a) for a, _ in spans]
    last = [_minutes(b) for _, b in spans]
    for session in sessions:
        first.append(_minutes(timezone.localtime(session.scheduled_at).time()))
        end = timezone.localtime(session.ends_at)
        last.append(24 * 60 if end.date() > day else _minutes(end.time()))
    start = min(first, default=8 * 60) // STEP * STEP
    stop = -(-max(last, default=18 * 60) // STEP) * STEP
    return start, max(stop, start + STEP)


def _lay_out(column, sessions, day, start, stop, bookable):
    """Fill a column with appointment blocks and 15-minute free or unavailable cells.

    `bookable(minute)` says whether a free cell at that minute may be booked (open, working).
    Returns the appointments that overlap one already laid out (double bookings from before
    the appointment book), so that the page can list them instead of hiding them.
    """
    tz = timezone.get_current_timezone()
    by_row, overlapping, taken = {}, [], set()
    for session in sorted(sessions, key=lambda s: s.scheduled_at):
        local = timezone.localtime(session.scheduled_at)
        first = (max(_minutes(local.time()), start) - start) // STEP
        end_local = timezone.localtime(session.ends_at)
        end_minute = 24 * 60 if end_local.date() > day else _minutes(end_local.time())
        last = max(first + 1, -(-(min(end_minute, stop) - start) // STEP))
        rows = set(range(first, last))
        if rows & taken:
            overlapping.append(session)
            continue
        taken |= rows
        by_row[first] = Cell(first + 2, last + 2, "appointment", session=session)
    index = 0
    total = (stop - start) // STEP
    while index < total:
        if index in by_row:
            cell = by_row[index]
            column.cells.append(cell)
            index = cell.end - 2
            continue
        minute = start + index * STEP
        moment = datetime.combine(day, time(minute // 60, minute % 60)).replace(tzinfo=tz)
        kind = "free" if bookable(minute) else "off"
        column.cells.append(Cell(index + 2, index + 3, kind, start=moment))
        index += 1
    return overlapping


def _within(spans, minute):
    return any(_minutes(a) <= minute and minute + STEP <= _minutes(b) for a, b in spans)


def _diary_sessions(location, first_day, days=1):
    start, end = day_bounds(first_day, days)
    rows = Session.objects.filter(
        scheduled_at__lt=end,
        ends_at__gt=start,
        status__in=(*Session.HOLDS_TIME, Session.Status.MISSED),
    )
    if location is not None:
        rows = rows.filter(location=location)
    return list(
        rows.select_related("patient", "clinician", "room", "plan__clinician").prefetch_related(
            Prefetch(
                "treatments",
                queryset=SessionTreatment.objects.select_related("treatment", "course"),
            )
        )
    )


def _mark_reminded(sessions):
    """Set `reminded_at` on each session reminded of its current start time (one query)."""
    sent = {
        (session_id, start): sent_at
        for session_id, start, sent_at in Reminder.objects.filter(
            session__in=[s.pk for s in sessions], sent_at__isnull=False
        ).values_list("session_id", "scheduled_at", "sent_at")
    }
    for session in sessions:
        session.reminded_at = sent.get((session.pk, session.scheduled_at))


def _pick_location(request):
    locations = list(Location.objects.active())
    chosen = request.GET.get("location", "")
    location = next((loc for loc in locations if str(loc.pk) == chosen), None)
    return (location or (locations[0] if locations else None)), locations


def _safety(request, sessions):
    """Findings per open appointment; texts only for clinical staff (front desk: a count)."""
    open_ones = [s for s in sessions if s.status in Session.OPEN]
    findings = services.findings_for_sessions(open_ones)
    for session in sessions:
        session.findings = findings.get(session.pk, [])
        session.neutral = services.neutral_badge(session.findings)
    return request.user.has_perm("plans.view_assessment")


@permission_required("plans.view_session", raise_exception=True)
def diary_day(request):
    """A day of one location: a column per clinician (or room), rows of 15 minutes."""
    day = date_param(request.GET.get("day")) or timezone.localdate()
    location, locations = _pick_location(request)
    by = "room" if request.GET.get("by") == "room" else "clinician"
    weekday = day.weekday()
    spans = []
    if location is not None:
        spans = [
            (row.starts, row.ends)
            for row in OpeningHours.objects.filter(location=location, weekday=weekday)
        ]
    av = diary.load(location, day, day, with_busy=False) if location is not None else None
    closed = [reason for first, last, reason in (av.closures if av else ()) if first <= day <= last]
    sessions = _diary_sessions(location, day)
    _mark_reminded(sessions)
    held = [s for s in sessions if s.status in Session.HOLDS_TIME]
    missed = [s for s in sessions if s.status == Session.Status.MISSED]
    start, stop = _rows_for(day, spans, held)
    columns = _columns(by, location, day, weekday, held)
    overlapping = []
    for column in columns:
        mine = [s for s in held if _in_column(s, column)]
        working = (
            av.working.get(column.clinician.pk, {}).get(weekday, ())
            if column.clinician is not None and av is not None
            else spans
        )
        absent = column.clinician is not None and any(
            first <= day <= last
            for first, last, _ in (av.absences.get(column.clinician.pk, ()) if av else ())
        )

        def bookable(minute, working=working, absent=absent):
            return not closed and not absent and _within(spans, minute) and _within(working, minute)

        overlapping += _lay_out(column, mine, day, start, stop, bookable)
    _book_links(columns, location)
    clinical = _safety(request, sessions)
    return render(
        request,
        "plans/diary_day.html",
        {
            "day": day,
            "is_today": day == timezone.localdate(),
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "location": location,
            "locations": locations,
            "by": by,
            "columns": columns,
            "times": _time_axis(start, stop),
            "closed": closed,
            "missed": missed,
            "overlapping": overlapping,
            "clinical": clinical,
            "grid_columns": len(columns) + 1,
        },
    )


def _time_axis(start, stop):
    return [
        (index + 2, f"{minute // 60:02d}:{minute % 60:02d}", minute % 60 == 0)
        for index, minute in enumerate(range(start, stop, STEP))
    ]


def _columns(by, location, day, weekday, sessions):
    if by == "room":
        rooms = list(Room.objects.filter(location=location, is_active=True)) if location else []
        known = {r.pk for r in rooms}
        rooms += sorted({s.room for s in sessions if s.room and s.room_id not in known}, key=str)
        columns = [Column(f"room-{r.pk}", r.name, i + 2, room=r) for i, r in enumerate(rooms)]
        if any(s.room_id is None for s in sessions):
            columns.append(Column("room-none", "No room", len(columns) + 2))
        return columns
    User = get_user_model()
    working = set()
    if location is not None:
        working = set(
            WorkingPattern.objects.filter(location=location, weekday=weekday).values_list(
                "clinician", flat=True
            )
        )
    ids = working | {_clinician_id(s) for s in sessions}
    people = list(User.objects.filter(pk__in=ids).order_by("last_name", "first_name"))
    return [Column(f"clinician-{u.pk}", str(u), i + 2, clinician=u) for i, u in enumerate(people)]


def _clinician_id(session):
    return session.clinician_id or (session.plan.clinician_id if session.plan_id else None)


def _in_column(session, column):
    if column.clinician is not None:
        return _clinician_id(session) == column.clinician.pk
    if column.room is not None:
        return session.room_id == column.room.pk
    if column.key == "room-none":
        return session.room_id is None
    return column.day == timezone.localtime(session.scheduled_at).date()


@permission_required("plans.view_session", raise_exception=True)
def diary_week(request):
    """Seven days of one clinician or one room, side by side."""
    day = date_param(request.GET.get("day")) or timezone.localdate()
    monday = day - timedelta(days=day.weekday())
    location, locations = _pick_location(request)
    User = get_user_model()
    clinician = room = None
    if request.GET.get("room"):
        room = Room.objects.filter(pk=_int(request.GET["room"])).select_related("location").first()
        if room is not None:
            location = room.location
    if room is None:
        clinician = User.objects.filter(pk=_int(request.GET.get("clinician"))).first()
        if clinician is None and request.user.has_role(CLINICIAN):
            clinician = request.user
    sessions = [
        s
        for s in _diary_sessions(location, monday, 7)
        if s.status in Session.HOLDS_TIME
        and (
            (room is not None and s.room_id == room.pk)
            or (clinician is not None and _clinician_id(s) == clinician.pk)
        )
    ]
    av = (
        diary.load(location, monday, monday + timedelta(days=6), with_busy=False)
        if location
        else None
    )
    opening = av.opening if av else {}
    all_spans = [span for spans in opening.values() for span in spans]
    start, stop = _rows_for(monday, all_spans, [])
    for session in sessions:
        local = timezone.localtime(session.scheduled_at)
        start = min(start, _minutes(local.time()) // STEP * STEP)
        stop = max(stop, -(-_minutes(timezone.localtime(session.ends_at).time()) // STEP) * STEP)
    columns = []
    for offset in range(7):
        current = monday + timedelta(days=offset)
        column = Column(current.isoformat(), f"{current:%a %-d %b}", offset + 2, day=current)
        column.clinician, column.room = clinician, room
        spans = opening.get(current.weekday(), ())
        working = spans
        if clinician is not None and av is not None:
            working = av.working.get(clinician.pk, {}).get(current.weekday(), ())
        closed = av is not None and any(a <= current <= b for a, b, _ in av.closures)
        mine = [s for s in sessions if timezone.localtime(s.scheduled_at).date() == current]

        def bookable(minute, spans=spans, working=working, closed=closed):
            return not closed and _within(spans, minute) and _within(working, minute)

        _lay_out(column, mine, current, start, stop, bookable)
        columns.append(column)
    _book_links(columns, location)
    clinical = _safety(request, sessions)
    return render(
        request,
        "plans/diary_week.html",
        {
            "monday": monday,
            "previous_week": monday - timedelta(days=7),
            "next_week": monday + timedelta(days=7),
            "location": location,
            "locations": locations,
            "clinician": clinician,
            "room": room,
            "clinicians": User.objects.filter(groups__name=CLINICIAN, is_active=True).order_by(
                "last_name", "first_name"
            ),
            "rooms": Room.objects.filter(location=location, is_active=True) if location else [],
            "columns": columns,
            "times": _time_axis(start, stop),
            "clinical": clinical,
            "grid_columns": 8,
        },
    )


# --- booking a visit outside a plan --------------------------------------------------------


class AppointmentForm(forms.Form):
    patient = forms.CharField(
        label="Patient record number",
        max_length=20,
        help_text="e.g. CX-000123; find it on the Patients page.",
    )
    kind = forms.ChoiceField(
        label="Appointment",
        choices=[(k, label) for k, label in Session.Kind.choices if k != Session.Kind.TREATMENT],
    )
    date = forms.DateField(widget=DATE, validators=[validate_clinic_date])
    time = forms.TimeField(widget=TIME)
    minutes = forms.IntegerField(
        min_value=5,
        max_value=480,
        required=False,
        help_text="Leave empty for the usual length.",
        error_messages={
            "min_value": "Length must be from 5 to 480 minutes.",
            "max_value": "Length must be from 5 to 480 minutes.",
        },
    )
    clinician = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    location = forms.ModelChoiceField(queryset=Location.objects.none())
    room = forms.ModelChoiceField(
        queryset=Room.objects.none(), required=False, help_text="Leave empty for any free room."
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    booking_override = forms.CharField(
        label="Reason to book outside hours",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Managers only: books outside opening or working hours. Never overrides a clash.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["clinician"].queryset = User.objects.filter(
            groups__name=CLINICIAN, is_active=True
        ).order_by("last_name", "first_name")
        self.fields["location"].queryset = Location.objects.active()
        self.fields["room"].queryset = Room.objects.filter(is_active=True).select_related(
            "location"
        )
        if not user.has_perm(services.BOOK_OUTSIDE_HOURS):
            del self.fields["booking_override"]

    def clean_patient(self):
        number = self.cleaned_data["patient"].strip()
        patient = Patient.objects.active().filter(record_number__iexact=number).first()
        if patient is None:
            raise ValidationError(f"No current patient has record number {number}.")
        return patient

    def clean(self):
        cleaned = super().clean()
        room, location = cleaned.get("room"), cleaned.get("location")
        if room and location and room.location_id != location.pk:
            self.add_error("room", f"{room.name} is at {room.location}, not {location}.")
        if cleaned.get("date") and cleaned.get("time"):
            cleaned["start"] = timezone.make_aware(
                datetime.combine(cleaned["date"], cleaned["time"])
            )
        return cleaned


@permission_required("plans.add_session", raise_exception=True)
def appointment_new(request):
    """Book a consultation, review, patch test or photo visit; a refused slot offers others."""
    initial = {
        key: request.GET[key] for key in ("date", "time", "kind", "minutes") if key in request.GET
    }
    for key in ("clinician", "location", "room"):
        if _int(request.GET.get(key)):
            initial[key] = _int(request.GET[key])
    if request.GET.get("patient"):
        patient = Patient.objects.filter(pk=_int(request.GET["patient"])).first()
        if patient:
            initial["patient"] = patient.record_number
    if "location" not in initial:
        only = diary.default_location()
        if only:
            initial["location"] = only.pk
    form = AppointmentForm(request.POST or None, initial=initial, user=request.user)
    refused = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            session, fresh = _once.book_once(
                request,
                lambda: services.appointment_book(
                    patient=data["patient"],
                    kind=data["kind"],
                    start=data["start"],
                    minutes=data["minutes"],
                    clinician=data["clinician"],
                    location=data["location"],
                    room=data["room"],
                    notes=data["notes"],
                    booking_override=data.get("booking_override", ""),
                    user=request.user,
                ),
            )
        except services.BookingRefused as error:
            refused = error
            form.add_error(None, "Not booked: " + " ".join(p.message for p in error.problems))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if not fresh:
                _once.say_already_booked(request, session)
                return redirect(_day_url(session))
            local = timezone.localtime(session.scheduled_at)
            messages.success(
                request,
                f"Booked: {session.get_kind_display()} for {session.patient.full_name} on "
                f"{local:%a %-d %b %Y at %H:%M} with {session.clinician}.",
            )
            return redirect(_day_url(session))
    alternatives = []
    if refused is not None:
        data = form.cleaned_data
        for slot in refused.alternatives:
            local = timezone.localtime(slot.start)
            query = {
                "patient": data["patient"].pk,
                "kind": data["kind"],
                "date": f"{local:%Y-%m-%d}",
                "time": f"{local:%H:%M}",
                "clinician": slot.clinician or "",
                "location": data["location"].pk,
                "room": slot.room or "",
            }
            if data.get("minutes"):
                query["minutes"] = data["minutes"]
            alternatives.append((slot, local, f"{reverse('appointment_new')}?{urlencode(query)}"))
    return render(
        request,
        "plans/appointment_form.html",
        {
            "form": form,
            "alternatives": alternatives,
            "refused": refused,
            "booking_token": _once.token_for(request),
        },
    )


def _day_url(session):
    local = timezone.localtime(session.scheduled_at)
    query = {"day": f"{local:%Y-%m-%d}"}
    if session.location_id:
        query["location"] = session.location_id
    return f"{reverse('diary_day')}?{urlencode(query)}"


# --- the front desk's steps on the day -----------------------------------------------------


@require_POST
@permission_required("plans.change_session", raise_exception=True)
def session_status(request, pk):
    """Arrived, in treatment, did not attend."""
    session = get_object_or_404(Session.objects.select_related("patient"), pk=pk)
    status = request.POST.get("status", "")
    if posted_version(request) is None:
        messages.error(request, OUT_OF_DATE)
        return redirect(safe_next(request, _day_url(session)))
    try:
        services.session_set_status(
            session=session,
            status=status,
            user=request.user,
            expected_version=posted_version(request),
        )
    except services.StaleEdit as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"{session.patient.full_name}: {session.get_status_display().lower()}."
        )
    return redirect(safe_next(request, _day_url(session)))


# --- free-slot search ----------------------------------------------------------------------


class FreeSlotForm(forms.Form):
    kind = forms.ChoiceField(label="For", choices=())
    minutes = forms.IntegerField(
        min_value=5, max_value=480, required=False, help_text="Empty: the usual length."
    )
    location = forms.ModelChoiceField(queryset=Location.objects.none())
    clinician = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, empty_label="Anyone"
    )
    weekdays = forms.MultipleChoiceField(
        choices=[
            (str(i), name)
            for i, name in enumerate(
                ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
            )
        ],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any day.",
    )
    part = forms.ChoiceField(
        label="Time of day",
        choices=[
            ("", "Any time"),
            ("morning", "Morning (before 12:00)"),
            ("afternoon", "Afternoon (from 12:00)"),
        ],
        required=False,
    )
    after = forms.DateField(
        label="From", widget=DATE, validators=[validate_clinic_date], required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from plans.models import Treatment

        treatments = Treatment.objects.active().filter(setting=Treatment.Setting.IN_OFFICE)
        self.treatments = {f"treatment-{t.pk}": t for t in treatments}
        self.fields["kind"].choices = [(key, t.name) for key, t in self.treatments.items()] + [
            (k, label) for k, label in Session.Kind.choices if k != Session.Kind.TREATMENT
        ]
        self.fields["location"].queryset = Location.objects.active()
        self.fields["clinician"].queryset = (
            get_user_model()
            .objects.filter(groups__name=CLINICIAN, is_active=True)
            .order_by("last_name", "first_name")
        )

    def needs(self):
        kind = self.cleaned_data["kind"]
        needs = (
            diary.Needs.of_treatments([self.treatments[kind]])
            if kind in self.treatments
            else diary.Needs.of_kind(kind)
        )
        minutes = self.cleaned_data.get("minutes")
        return diary.Needs(minutes, needs.room, needs.device_kind) if minutes else needs


@permission_required("plans.view_session", raise_exception=True)
def free_slots(request):
    """ "The next free 45-minute slot with the laser on a Tuesday afternoon"."""
    initial = {"location": getattr(diary.default_location(), "pk", None)}
    form = FreeSlotForm(request.GET or None, initial=initial)
    slots = []
    if request.GET and form.is_valid():
        data = form.cleaned_data
        location, needs = data["location"], form.needs()
        today = timezone.localdate()
        first = max(data.get("after") or today, today)
        last = first + timedelta(days=60)
        clinicians = (
            [data["clinician"].pk]
            if data.get("clinician")
            else list(form.fields["clinician"].queryset.values_list("pk", flat=True))
        )
        between = {"morning": (time(0), time(12)), "afternoon": (time(12), time(23, 59))}.get(
            data.get("part") or ""
        )
        # A week at a time: the first free slots are usually close, and a week's diary is
        # a small load where sixty days of a busy clinic are not.
        found, week_start, wanted = [], first, 10
        rooms, devices = diary.rooms_for(location, needs), diary.devices_for(location, needs)
        while len(found) < wanted and week_start <= last:
            week_end = min(week_start + timedelta(days=6), last)
            found += diary.booking.free_slots(
                diary.load(location, week_start, week_end),
                duration=timedelta(minutes=needs.minutes),
                clinicians=clinicians,
                rooms=rooms,
                devices=devices,
                patient=None,
                after=max(timezone.now(), diary.local_datetime(week_start - timedelta(days=1))),
                until=diary.local_datetime(week_end),
                limit=wanted - len(found),
                weekdays={int(d) for d in data["weekdays"]} or None,
                between=between,
            )
            week_start = week_end + timedelta(days=1)
        people = get_user_model().objects.in_bulk([s.clinician for s in found])
        rooms = Room.objects.in_bulk([s.room for s in found if s.room])
        kind = data["kind"] if data["kind"] in dict(Session.Kind.choices) else "consultation"
        for slot in found:
            local = timezone.localtime(slot.start)
            query = {
                "date": f"{local:%Y-%m-%d}",
                "time": f"{local:%H:%M}",
                "clinician": slot.clinician,
                "location": location.pk,
                "kind": kind,
                "minutes": needs.minutes,
            }
            if slot.room:
                query["room"] = slot.room
            slots.append(
                {
                    "start": local,
                    "end": timezone.localtime(slot.end),
                    "clinician": people.get(slot.clinician),
                    "room": rooms.get(slot.room),
                    "book": f"{reverse('appointment_new')}?{urlencode(query)}",
                }
            )
    return render(request, "plans/free_slots.html", {"form": form, "slots": slots})
