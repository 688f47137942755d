"""A patient's full record (subject access request): one zip file with everything held.

The archive holds, under one folder: README.txt (what this is, who exported it and when),
the FHIR bundle, the staff copy of the progress report (PDF), every clinical photo and
scanned consent with its date in the file name, a CSV per kind of record, and MANIFEST.csv,
which lists every other file of the archive with its size and SHA-256.

It is written straight into a file object (a temporary file: photos can be large), one
member at a time; stored files are copied in chunks, never read whole into memory. CSV cells
are neutralised as in every other export (clinic.csv_export.safe_cell). Nothing here reads
the database: the caller passes the record (plans.exports.load_records(..., full=True)).
"""

import csv
import hashlib
import io
import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

from django.utils import timezone

from clinic.csv_export import safe_cell
from clinic.uploads import EXTENSIONS, sniff
from plans import scales
from plans.fhir import ordered_parameters

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MANIFEST = "MANIFEST.csv"


def file_safe(text):
    """Text usable in a file name on any system: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "record"


@dataclass
class Member:
    """One file of the archive, as MANIFEST.csv lists it."""

    path: str
    what: str
    dated: str
    size: int
    sha256: str


class _Counting(io.RawIOBase):
    """Passes bytes on to a zip member while counting and hashing them."""

    def __init__(self, target):
        self.target = target
        self.size = 0
        self.digest = hashlib.sha256()

    def writable(self):
        return True

    def write(self, data):
        self.size += len(data)
        self.digest.update(data)
        return self.target.write(data)


class _Archive:
    def __init__(self, target, folder, stamp):
        self.zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED)
        self.folder = folder
        self.stamp = stamp  # every member's date and time: the export's
        self.members = []

    def _member(self, path, what, dated, write, *, compress=True):
        info = zipfile.ZipInfo(f"{self.folder}/{path}", date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16  # patient data: the owner's only, once unpacked
        with self.zip.open(info, "w") as raw:
            counting = _Counting(raw)
            write(counting)
        self.members.append(Member(path, what, dated, counting.size, counting.digest.hexdigest()))

    def bytes(self, path, what, data, *, dated="", compress=True):
        self._member(path, what, dated, lambda out: out.write(data), compress=compress)

    def text(self, path, what, text, *, dated=""):
        self.bytes(path, what, text.encode("utf-8"), dated=dated)

    def csv(self, path, what, header, rows):
        def write(out):
            text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
            writer = csv.writer(text)
            writer.writerow([safe_cell(cell) for cell in header])
            for row in rows:
                writer.writerow([safe_cell(cell) for cell in row])
            text.flush()
            text.detach()

        self._member(path, what, "", write)

    def stored_file(self, field_file, path_without_suffix, what, dated):
        """Copy a stored photo or scan in chunks; its format (and so its suffix) from its
        first bytes. Returns the path in the archive, or '' if the file cannot be read."""
        try:
            handle = field_file.open("rb")
        except OSError:
            logger.warning("Stored file %s is missing; left out of a full record", field_file.name)
            return ""
        with handle:
            head = handle.read(16)
            handle.seek(0)
            kind = sniff(head)
            suffix = EXTENSIONS.get(kind) or PurePath(field_file.name).suffix.lower() or ".bin"
            path = f"{path_without_suffix}{suffix}"

            def write(out):
                while chunk := handle.read(CHUNK):
                    out.write(chunk)

            # JPEG, PNG, WebP and PDF are compressed already.
            self._member(path, what, dated, write, compress=False)
        return path

    def close(self):
        self.zip.close()


def write_full_record(record, target, *, bundle, report_pdf, exported_by, exported_at):
    """Write the archive of `record` into the binary file object `target`; returns the
    members in the order written (MANIFEST.csv itself last, not among them)."""
    patient = record.patient
    local = timezone.localtime(exported_at)
    folder = f"{file_safe(patient.record_number)}-full-record-{local:%Y-%m-%d}"
    archive = _Archive(target, folder, local.timetuple()[:6])
    archive.text(
        "README.txt",
        "What this archive is",
        _readme(record, exported_by, local),
        dated=local.date().isoformat(),
    )
    archive.bytes(
        "record.fhir.json",
        "The record as a FHIR R4 bundle (JSON)",
        json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8"),
        dated=local.date().isoformat(),
    )
    archive.bytes(
        "progress-report-staff.pdf",
        "Progress report, staff copy (PDF)",
        report_pdf,
        dated=local.date().isoformat(),
        compress=False,
    )
    photo_paths = {}
    for photo in record.photos:
        site = photo.scar_site.get_body_site_display()
        name = f"photos/{photo.taken_on:%Y-%m-%d}_{file_safe(site)}_{photo.view}_photo-{photo.pk}"
        photo_paths[photo.pk] = archive.stored_file(
            photo.image, name, f"Clinical photo, {site}", photo.taken_on.isoformat()
        )
    consent_paths = {}
    for consent in record.consents:
        if consent.scanned_file:
            name = f"consents/{consent.signed_on:%Y-%m-%d}_{consent.kind}_consent-{consent.pk}"
            consent_paths[consent.pk] = archive.stored_file(
                consent.scanned_file,
                name,
                f"Scanned consent: {consent.get_kind_display()}",
                consent.signed_on.isoformat(),
            )
    for path, what, header, rows in _tables(record, photo_paths, consent_paths):
        archive.csv(f"csv/{path}", what, header, rows)
    members = list(archive.members)
    archive.csv(
        MANIFEST,
        "",
        ["file", "what", "dated", "bytes", "sha256"],
        [[m.path, m.what, m.dated, m.size, m.sha256] for m in members],
    )
    archive.close()
    return members


def _readme(record, exported_by, local):
    patient = record.patient
    return "\n".join(
        [
            f"Full record of {patient.full_name} (record number {patient.record_number})",
            f"Exported on {local:%Y-%m-%d at %H:%M} ({local.tzname()}) by {exported_by}.",
            "",
            "Everything the clinic holds about this patient in Cicatrix, archived records",
            "included. MANIFEST.csv lists every file with its size and SHA-256 checksum.",
            "",
            "record.fhir.json            the record in FHIR R4 (a Bundle), for other systems",
            "progress-report-staff.pdf   the progress report, staff copy",
            "photos/                     every clinical photo, named by the date it was taken",
            "consents/                   every scanned consent form, named by the date signed",
            "csv/                        one table per kind of record (UTF-8, opens in a",
            "                            spreadsheet); ids link the tables to one another",
            "",
            "Times are the clinic's local time. A cell that begins with an apostrophe began",
            "with =, +, - or @: the apostrophe stops a spreadsheet running it as a formula.",
            "",
        ]
    )


def _moment(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _day(value):
    return value.isoformat() if value else ""


def _person(user):
    return str(user) if user else ""


def _tables(record, photo_paths, consent_paths):
    """(file, what, header, rows) for each kind of record."""
    p = record.patient
    sites = {s.pk: s.get_body_site_display() for s in record.sites}
    yield (
        "patient.csv",
        "The patient's details",
        [
            "record number",
            "first name",
            "last name",
            "date of birth",
            "sex",
            "phone",
            "e-mail",
            "address",
            "Fitzpatrick skin type",
            "other allergies",
            "current medications",
            "registered",
            "last changed",
            "archived",
        ],
        [
            [
                p.record_number,
                p.first_name,
                p.last_name,
                _day(p.date_of_birth),
                p.get_sex_display(),
                p.phone,
                p.email,
                p.address,
                p.get_fitzpatrick_type_display() if p.fitzpatrick_type else "not assessed",
                p.other_allergies,
                p.medications,
                _moment(p.created_at),
                _moment(p.updated_at),
                _moment(p.archived_at),
            ]
        ],
    )
    yield (
        "medical_flags.csv",
        "Medical flags (dated)",
        ["id", "flag", "from", "to", "detail", "recorded by", "recorded"],
        [
            [
                f.pk,
                f.get_kind_display(),
                _day(f.started_on),
                _day(f.ended_on),
                f.detail,
                _person(f.recorded_by),
                _moment(f.created_at),
            ]
            for f in record.flags
        ],
    )
    yield (
        "acne_activity.csv",
        "Acne activity records",
        ["id", "recorded on", "level", "note", "recorded by"],
        [
            [a.pk, _day(a.recorded_on), a.get_level_display(), a.note, _person(a.recorded_by)]
            for a in record.acne
        ],
    )
    yield (
        "scar_sites.csv",
        "Scar sites",
        ["id", "body site", "scar types", "description", "first recorded", "archived"],
        [
            [
                s.pk,
                s.get_body_site_display(),
                "; ".join(t.name for t in s.scar_types.all()),
                s.description,
                _day(s.first_recorded_on),
                _moment(s.archived_at),
            ]
            for s in record.sites
        ],
    )
    yield (
        "consents.csv",
        "Consents",
        ["id", "consent", "signed", "withdrawn", "valid to", "scan in this archive"],
        [
            [
                c.pk,
                c.get_kind_display(),
                _day(c.signed_on),
                _day(c.withdrawn_on),
                _day(c.expires_on),
                consent_paths.get(c.pk, ""),
            ]
            for c in record.consents
        ],
    )
    yield (
        "plans.csv",
        "Treatment plans",
        [
            "id",
            "title",
            "status",
            "start date",
            "clinician",
            "location",
            "goal",
            "internal notes",
            "scar sites treated",
            "created",
        ],
        [
            [
                plan.pk,
                plan.title,
                plan.get_status_display(),
                _day(plan.start_date),
                _person(plan.clinician),
                plan.location.name if plan.location_id else "",
                plan.goal,
                plan.internal_notes,
                "; ".join(sites.get(s.pk, str(s)) for s in plan.target_sites.all()),
                _moment(plan.created_at),
            ]
            for plan in record.plans
        ],
    )
    yield (
        "plan_courses.csv",
        "Courses of each plan",
        [
            "plan id",
            "course id",
            "treatment",
            "label",
            "sessions",
            "every (days)",
            "from day",
            "planned values",
        ],
        [
            [
                plan.pk,
                c.pk,
                c.treatment.name,
                c.label,
                c.sessions_count,
                c.interval_days,
                c.offset_days,
                json.dumps(c.default_parameters, ensure_ascii=False)
                if c.default_parameters
                else "",
            ]
            for plan in record.plans
            for c in plan.courses.all()
        ],
    )
    yield (
        "sessions.csv",
        "Appointments and sessions",
        [
            "id",
            "plan id",
            "kind",
            "status",
            "starts",
            "ends",
            "clinician",
            "location",
            "room",
            "completed",
            "booked for",
            "clinical notes",
        ],
        [
            [
                s.pk,
                s.plan_id or "",
                s.get_kind_display(),
                s.get_status_display(),
                _moment(s.scheduled_at),
                _moment(s.ends_at),
                _person(s.clinician),
                s.location.name if s.location_id else "",
                s.room.name if s.room_id else "",
                _moment(s.completed_at),
                _moment(s.booked_for),
                s.notes,
            ]
            for s in record.sessions
        ],
    )
    yield (
        "session_treatments.csv",
        "Treatments of each session",
        ["session id", "id", "treatment", "session n of m", "amended"],
        [
            [s.pk, row.pk, row.treatment.name, row.numbering, _moment(row.amended_at)]
            for s in record.sessions
            for row in s.treatments.all()
        ],
    )
    yield (
        "session_parameters.csv",
        "Parameters logged for each treatment",
        ["session id", "session date", "treatment", "parameter", "value", "unit"],
        _parameter_rows(record),
    )
    yield (
        "assessments.csv",
        "Scores",
        [
            "id",
            "scar site",
            "score",
            "assessed on",
            "session id",
            "assessor",
            "total",
            "scale",
            "notes",
            "amended",
        ],
        [
            [
                a.pk,
                sites.get(a.scar_site_id, ""),
                scales.get(a.instrument).name,
                _day(a.assessed_on),
                a.session_id or "baseline",
                _person(a.assessor),
                a.total,
                f"{scales.get(a.instrument).min_total}-{scales.get(a.instrument).max_total}",
                a.notes,
                _moment(a.amended_at),
            ]
            for a in record.assessments
        ],
    )
    yield (
        "assessment_items.csv",
        "The items of each score",
        ["assessment id", "item", "value", "range"],
        [
            [a.pk, item.label, a.items[item.code], f"{item.minimum}-{item.maximum}"]
            for a in record.assessments
            for item in scales.get(a.instrument).items
            if item.code in a.items
        ],
    )
    yield (
        "adverse_events.csv",
        "Adverse events",
        [
            "id",
            "session id",
            "scar site",
            "event",
            "severity",
            "onset",
            "resolved",
            "notes",
            "recorded by",
        ],
        [
            [
                e.pk,
                e.session_id,
                sites.get(e.scar_site_id, ""),
                e.get_kind_display(),
                e.get_severity_display(),
                _day(e.onset_on),
                _day(e.resolved_on),
                e.notes,
                _person(e.recorded_by),
            ]
            for e in record.adverse_events
        ],
    )
    yield (
        "photos.csv",
        "Clinical photos",
        [
            "id",
            "file in this archive",
            "taken on",
            "scar site",
            "view",
            "caption",
            "session id",
            "taken by",
            "withdrawn",
        ],
        [
            [
                ph.pk,
                photo_paths.get(ph.pk) or "missing from storage",
                _day(ph.taken_on),
                sites.get(ph.scar_site_id, ""),
                ph.get_view_display(),
                ph.caption,
                ph.session_id,
                _person(ph.taken_by),
                _moment(ph.withdrawn_at),
            ]
            for ph in record.photos
        ],
    )
    yield (
        "safety_overrides.csv",
        "Safety rules overridden, with the reason",
        ["session id", "treatment", "rule", "finding", "reason", "by", "at"],
        [
            [
                o.session_id,
                o.treatment.name,
                o.rule,
                o.finding,
                o.reason,
                _person(o.overridden_by),
                _moment(o.overridden_at),
            ]
            for o in record.overrides
        ],
    )
    yield (
        "amendments.csv",
        "Corrections of logged sessions, with the reason and the values before",
        ["session id", "reason", "changes", "by", "at"],
        [
            [
                a.session_id,
                a.reason,
                json.dumps(a.changes, ensure_ascii=False),
                _person(a.amended_by),
                _moment(a.amended_at),
            ]
            for a in record.amendments
        ],
    )
    yield (
        "reports_sent.csv",
        "Reports sent to the patient (e-mail or link)",
        ["how", "sent to", "sent by", "sent", "link valid to", "revoked", "revoked by"],
        [
            [
                d.get_how_display(),
                d.to_address,
                _person(d.sent_by),
                _moment(d.sent_at),
                _moment(d.expires_at),
                _moment(d.revoked_at),
                _person(d.revoked_by),
            ]
            for d in record.deliveries
        ],
    )
    yield (
        "access_log.csv",
        # Who saw the record and when; the address of the clinic's computer is left out.
        "Who opened this record and when",
        ["at", "staff member", "opened", "object id", "page"],
        [
            [_moment(a.at), _person(a.user), a.get_what_display(), a.object_id or "", a.path]
            for a in record.accesses
        ],
    )


def _parameter_rows(record):
    rows = []
    for session in record.sessions:
        day = _day(timezone.localtime(session.scheduled_at).date())
        for row in session.treatments.all():
            for code, definition, value in ordered_parameters(row):
                label, unit = (definition.label, definition.unit) if definition else (code, "")
                rows.append([session.pk, day, row.treatment.name, label, value, unit])
    return rows
