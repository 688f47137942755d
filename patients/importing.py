"""Importing patients from a CSV file: read it, map its columns, check every row, import.

The steps, each callable without a request (the upload pages and `manage.py import_patients`
share them):

- `read_csv(data)`: bytes to a header and rows. UTF-8 (with or without a byte-order mark),
  else Windows-1252; comma or semicolon, counted in the header row. Anything that is not such
  a file (empty, binary, a spreadsheet workbook, UTF-16, undecodable bytes, no header row) is
  a `FileProblem` whose message says what to do.
- `auto_mapping(header)` pre-maps columns to fields by name; `mapping_problems()` checks a
  mapping (each field once, the required ones present).
- `check(parsed, mapping)`: every row held to the registration form's own fields and rules
  (patients/forms.py), plus the flags and scar sites columns; duplicates of a patient on file
  or of an earlier row (same record number, or same name and date of birth) found with a few
  set-based queries, whatever the number of rows.
- `write(check, user=..., reason=...)`: the new patients, their flags and scar sites
  inserted in bulk, each with its history row naming the importing user.

The last part runs an import's steps on a PatientImport (the uploaded file kept as a
record): `store_upload`, `dry_run`, and `run`, which imports once, in one transaction, only
what the dry run showed.
"""

import codecs
import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Upper
from django.utils import timezone

from clinic.csv_export import FORMULA_STARTS
from clinic.validators import refuse_nul, validate_clinic_date
from patients import demo
from patients.forms import (
    PatientForm,
    next_record_number,
    normalise_record_number,
    record_number_format,
)
from patients.models import MedicalFlag, Patient, PatientImport, ScarSite, ScarType

# --- the columns -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A field a column of the file can fill: its template header, what people call it."""

    key: str
    label: str
    required: bool
    hint: str
    synonyms: tuple[str, ...] = ()


DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
DATE_HINT = "YYYY-MM-DD or DD/MM/YYYY"
SEX_WORDS = {  # compared as _words() leaves them: "Other / not stated" is "other not stated"
    "f": "F",
    "female": "F",
    "m": "M",
    "male": "M",
    "x": "X",
    "other": "X",
    "not stated": "X",
    "other not stated": "X",
}
UNASSESSED = "unassessed"
SKIN_WORDS = {
    UNASSESSED: UNASSESSED,
    "not yet assessed": UNASSESSED,
    "not assessed": UNASSESSED,
    **{
        roman.lower(): str(value)
        for value, roman in enumerate(("I", "II", "III", "IV", "V", "VI"), 1)
    },
    **{str(value): str(value) for value in range(1, 7)},
}
SEX_ALLOWED = ", ".join(f"{value} ({label})" for value, label in Patient.Sex.choices)
SKIN_ALLOWED = "I, II, III, IV, V or VI (or 1 to 6), or 'unassessed' (not yet assessed)"

COLUMNS = (
    Column(
        "record_number",
        "Record number",
        False,
        "The clinic's patient number, e.g. CX-000123. Empty: the next free number is given.",
        ("mrn", "patient number", "patient no", "patient id", "record no", "file number"),
    ),
    Column("first_name", "First name", True, "Required.", ("forename", "given name", "first")),
    Column("last_name", "Last name", True, "Required.", ("surname", "family name", "last")),
    Column(
        "date_of_birth",
        "Date of birth",
        True,
        f"Required: {DATE_HINT}.",
        ("dob", "birth date", "birthdate", "born", "d o b"),
    ),
    Column("sex", "Sex", True, f"Required: {SEX_ALLOWED}.", ("gender",)),
    Column(
        "fitzpatrick_type",
        "Fitzpatrick skin type",
        True,
        f"Required: {SKIN_ALLOWED}.",
        ("fitzpatrick", "skin type", "skin", "phototype"),
    ),
    Column("phone", "Phone", False, "", ("telephone", "tel", "mobile", "phone number")),
    Column("email", "E-mail", False, "", ("e mail", "email address", "mail")),
    Column("address", "Address", False, "", ("postal address", "home address")),
    Column("other_allergies", "Other allergies", False, "", ("allergies", "allergy")),
    Column(
        "medications",
        "Current medications",
        False,
        "",
        ("medication", "current medication", "drugs", "medicines"),
    ),
    Column(
        "flags",
        "Medical flags",
        False,
        "Each flag as kind: start to end (detail), flags separated by ';'. Dates "
        f"{DATE_HINT}; leave out the start if it applies since before records began and the "
        "end while it is ongoing. E.g. 'isotretinoin: 2025-06-01 to 2025-12-01 (20 mg daily); "
        "keloid_history'.",
        ("medical flags", "flag", "alerts", "contraindications"),
    ),
    Column(
        "scar_sites",
        "Scar sites",
        False,
        "Each site as body site: scar types joined by '+', sites separated by ';'. "
        "E.g. 'left_cheek: rolling + boxcar; upper_back: hypertrophic'.",
        ("scar sites", "scars", "sites", "scar site"),
    ),
)
BY_KEY = {c.key: c for c in COLUMNS}
TEMPLATE_HEADER = [c.key for c in COLUMNS]
TEMPLATE_ROWS = [
    [
        "CX-900001",
        "Zoë",
        "Muñoz",
        "1994-03-17",
        "F",
        "III",
        "07700 900123",
        "zoe.munoz@example.org",
        "12 Harbour Street, Exampleton",
        "Latex",
        "Combined pill",
        "isotretinoin: 2025-06-01 to 2025-12-01 (20 mg daily); herpes_simplex",
        "left_cheek: rolling + boxcar; right_cheek: icepick",
    ],
    [
        "",
        "Aled",
        "Pritchard",
        "02/11/1988",
        "M",
        "unassessed",
        "",
        "",
        "",
        "",
        "",
        "",
        "Upper back: Hypertrophic",
    ],
]


def _words(text):
    """A header or value compared loosely: lower case, punctuation and spaces as one space."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


_NAMES = {}
for _column in COLUMNS:
    for _name in (_column.key, _column.label, *_column.synonyms):
        _NAMES.setdefault(_words(_name), _column.key)


def auto_mapping(header):
    """The field each column fills, by its name (any case, spaces or underscores); "" for a
    column no field is called, or a second column for a field already taken."""
    taken, mapping = set(), []
    for name in header:
        key = _NAMES.get(_words(name), "")
        if key in taken:
            key = ""
        taken.add(key)
        mapping.append(key)
    return mapping


def column_name(header, index):
    """How a message names a column of the file: its header, or its position if it has none."""
    name = header[index] if index < len(header) else ""
    return f'"{name}"' if name else f"column {index + 1}"


def mapping_problems(header, mapping):
    """What is wrong with a mapping, in words: a field twice, a required field missing."""
    problems = []
    seen = {}
    for index, key in enumerate(mapping):
        if not key:
            continue
        if key not in BY_KEY:
            problems.append(f"{column_name(header, index)} is mapped to an unknown field.")
        elif key in seen:
            problems.append(
                f"{column_name(header, seen[key])} and {column_name(header, index)} are both "
                f"mapped to {BY_KEY[key].label.lower()}: choose one of them."
            )
        else:
            seen[key] = index
    for column in COLUMNS:
        if column.required and column.key not in seen:
            problems.append(f"No column is mapped to {column.label}: {_required(column.key)}")
    return problems


# --- reading the file ----------------------------------------------------------------------


class FileProblem(ValueError):
    """The upload cannot be read as a CSV file of patients; the message says what to do."""


SAVE_AS = "Save it from your spreadsheet as 'CSV UTF-8 (comma delimited)' and upload that file."
SIGNATURES = (
    (b"PK\x03\x04", "a spreadsheet workbook or another zip file (.xlsx, .ods, .zip)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
UTF8_BOM = codecs.BOM_UTF8


@dataclass
class ParsedFile:
    encoding: str
    delimiter: str
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of a CSV upload; refuses what is not text, with the reason."""
    if not data.strip():
        raise FileProblem("The file is empty: it needs a header row and a row per patient.")
    for signature, what in SIGNATURES:
        if data.startswith(signature):
            raise FileProblem(f"This file is {what}, not a CSV file. {SAVE_AS}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileProblem(f"This file is UTF-16 text ('Unicode text'), not CSV. {SAVE_AS}")
    if b"\x00" in data:
        raise FileProblem(
            "This file holds binary data (NUL bytes), not text: it is not a CSV file. " + SAVE_AS
        )
    if data.startswith(UTF8_BOM):
        try:
            return data[len(UTF8_BOM) :].decode("utf-8"), "UTF-8 (with byte-order mark)"
        except UnicodeDecodeError as error:
            raise FileProblem(_undecodable(data, error, "UTF-8, as its first bytes say")) from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as utf8_error:
        # A file that is mostly UTF-8 (Ã« is how UTF-8's ë reads in Windows-1252) with a few
        # other bytes would be read as Windows-1252 and every accent garbled: refuse it.
        mixed = re.search(rb"\xc3[\x80-\xbf]", data)
        if mixed:
            raise FileProblem(
                _undecodable(
                    data,
                    utf8_error,
                    "UTF-8",
                    f"The rest of the file looks like UTF-8 (line {_line_of(data, mixed.start())}),"
                    " so it cannot be read as Windows-1252 either.",
                )
            ) from None
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError as error:
        raise FileProblem(_undecodable(data, error, "UTF-8 or Windows-1252")) from None


def _line_of(data, position):
    return data.count(b"\n", 0, position) + 1


def _undecodable(data, error, expected, why=""):
    byte = data[error.start : error.start + 1]
    return (
        f"Line {_line_of(data, error.start)} has a byte (0x{byte.hex()}) that cannot be read as "
        f"{expected} text. {why + ' ' if why else ''}{SAVE_AS}"
    )


def _count_outside_quotes(line, char):
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def sniff_delimiter(text):
    """',' or ';': whichever separates the header row's names (a header names its columns
    plainly, unlike data rows that may hold either character inside a value)."""
    first = text.lstrip("\r\n").split("\n", 1)[0]
    commas, semicolons = _count_outside_quotes(first, ","), _count_outside_quotes(first, ";")
    if commas == semicolons == 0:
        if "\t" in first:
            raise FileProblem(
                f"This file is separated by tabs, not commas or semicolons. {SAVE_AS}"
            )
        raise FileProblem(
            "The first row has a single column. The file needs a header row naming its columns "
            "(first_name, last_name, date_of_birth ...), separated by commas or semicolons: "
            "download the template to see one."
        )
    if commas != semicolons:
        return "," if commas > semicolons else ";"
    try:  # as many of each in the header: let the rows decide
        return csv.Sniffer().sniff(text[:65536], delimiters=",;").delimiter
    except csv.Error:
        raise FileProblem(
            "Cannot tell whether this file is separated by commas or semicolons: its header row "
            "has as many of each. Rename the columns as in the template."
        ) from None


def read_csv(data: bytes, *, max_rows=None, max_columns=100) -> ParsedFile:
    """The header and non-blank rows of an uploaded CSV file, or a FileProblem."""
    max_rows = max_rows or settings.IMPORT_MAX_ROWS
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    header, rows = None, []
    try:
        for number, cells in enumerate(reader, 1):
            if header is None:
                if not any(c.strip() for c in cells):
                    raise FileProblem(
                        f"Row {number} of the file is empty: the first row must name the columns "
                        "(download the template to see one)."
                    )
                header = [c.strip() for c in cells]
                if len(header) > max_columns:
                    raise FileProblem(
                        f"The header row has {len(header)} columns; at most {max_columns} can be "
                        "imported. Remove the columns you do not import."
                    )
                continue
            cells = [c.strip() for c in cells]
            if not any(cells):
                continue  # a blank line or a row of empty cells: nothing to import
            if len(rows) == max_rows:
                raise FileProblem(
                    f"The file has more than {max_rows:,} rows: split it into files of at most "
                    f"{max_rows:,} rows and import them one after another."
                )
            rows.append((number, cells))
    except csv.Error as error:
        raise FileProblem(
            f"Row {reader.line_num} cannot be read as CSV ({error}). Check its quotes, or {SAVE_AS}"
        ) from None
    if header is None:
        raise FileProblem("The file is empty: it needs a header row and a row per patient.")
    return ParsedFile(encoding, delimiter, header, rows)


# --- checking rows -------------------------------------------------------------------------

NEW, DUPLICATE, REFUSED = "new", "duplicate", "refused"
STATUS_ORDER = {REFUSED: 0, DUPLICATE: 1, NEW: 2}


class _PatientRowForm(forms.ModelForm):
    """The registration form's fields (PatientForm), built once and used on every row."""

    fitzpatrick_type = PatientForm.declared_fields["fitzpatrick_type"]

    class Meta(PatientForm.Meta):
        pass


PATIENT_KEYS = list(PatientForm.Meta.fields)
FIELDS = _PatientRowForm.base_fields
MAX_ECHO = 40


def _echo(value):
    """A value quoted back in a message, cut short."""
    value = value.replace("\n", " ")
    return f'"{value[:MAX_ECHO]}…"' if len(value) > MAX_ECHO else f'"{value}"'


def parse_date(text):
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _strip_formula_guard(value):
    """Undo the apostrophe a safe CSV export puts before '=', '+', '-', '@' (clinic.csv_export),
    so that a downloaded and corrected file imports what was there."""
    if value[:1] == "'" and value[1:2] and value[1:2] in FORMULA_STARTS:
        return value[1:]
    return value


@dataclass
class Context:
    """What checking rows needs from the database, read once for the whole file."""

    scar_types: dict[str, ScarType]
    today: date

    @classmethod
    def load(cls):
        types = {}
        for scar_type in ScarType.objects.all():
            for name in (scar_type.code, scar_type.name, scar_type.name.split(":")[-1]):
                types.setdefault(_words(name), scar_type)
        return cls(scar_types=types, today=timezone.localdate())

    @property
    def scar_types_allowed(self):
        seen = {}
        for scar_type in self.scar_types.values():
            seen.setdefault(scar_type.code, scar_type.name)
        return ", ".join(f"{code} ({name})" for code, name in seen.items())


FLAG_KINDS = {}
for _value, _label in MedicalFlag.Kind.choices:
    FLAG_KINDS[_words(_value)] = _value
    FLAG_KINDS[_words(_label)] = _value
FLAGS_ALLOWED = ", ".join(f"{value} ({label})" for value, label in MedicalFlag.Kind.choices)
BODY_SITES = {}
for _value, _label in ScarSite.BodySite.choices:
    BODY_SITES[_words(_value)] = _value
    BODY_SITES[_words(_label)] = _value
SITES_ALLOWED = ", ".join(f"{value} ({label})" for value, label in ScarSite.BodySite.choices)
ENTRY_SPLIT = re.compile(r"[;|\n]")
FLAG_ENTRY = re.compile(
    r"^(?P<kind>[^:(]+?)\s*(?::\s*(?P<dates>[^()]*?))?\s*(?:\((?P<detail>.*)\))?$"
)
DATE_SPAN = re.compile(r"^(?P<start>.*?)\s*(?:\bto\b|\.\.)\s*(?P<end>.*)$", re.IGNORECASE)


@dataclass
class RowResult:
    row: int
    status: str = NEW
    errors: list[str] = field(default_factory=list)
    record_number: str = ""
    name: str = ""
    note: str = ""
    patient: Patient | None = None
    flags: list[MedicalFlag] = field(default_factory=list)
    sites: list[tuple[ScarSite, list[int]]] = field(default_factory=list)

    def as_json(self):
        """The row as the dry run keeps it: [row, status, record number, name, messages]."""
        messages = self.errors if self.status == REFUSED else [self.note] if self.note else []
        return [self.row, self.status, self.record_number, self.name, messages]


class _Row:
    """One row being checked: its cells by field, and the messages that refuse it."""

    def __init__(self, number, cells, header, mapping):
        self.result = RowResult(number)
        self.header = header
        self.where = {}  # field -> column index
        self.raw = {}
        for index, key in enumerate(mapping):
            if key:
                self.where[key] = index
                self.raw[key] = _strip_formula_guard(cells[index]) if index < len(cells) else ""

    def error(self, key, message):
        """A message that starts with the column, as the file names it, and the field."""
        index = self.where[key]
        column = BY_KEY[key]
        named = _words(self.header[index]) in (_words(column.key), _words(column.label))
        where = column_name(self.header, index) + ("" if named else f" ({column.label})")
        self.result.errors.append(f"Column {where}: {message}")


def _check_row(number, cells, header, mapping, ctx) -> RowResult:
    row = _Row(number, cells, header, mapping)
    result = row.result
    if len(cells) != len(header):
        result.errors.append(
            f"The row has {len(cells)} values but the header has {len(header)} columns: a value "
            "holding a comma or semicolon must be in double quotes, and a line break inside a "
            "value too."
        )
        result.status = REFUSED
        return result
    values, patient = _patient_values(row, ctx)
    flags = _flags(row, ctx) if "flags" in row.raw else []
    sites = _sites(row, ctx) if "scar_sites" in row.raw else []
    result.record_number = values.get("record_number") or ""
    result.name = f"{values.get('first_name') or ''} {values.get('last_name') or ''}".strip()
    if result.errors:
        result.status = REFUSED
        return result
    result.patient = patient  # every value good: the instance the model's checks passed
    result.flags = flags
    result.sites = sites
    return result


def _patient_values(row, ctx):
    """(values, unsaved patient): the fields through the registration form's fields and the
    model's checks."""
    values, failed = {}, set()
    for key in PATIENT_KEYS:
        text = row.raw.get(key, "")
        given = text
        if key == "date_of_birth" and text:
            given = parse_date(text)
            if given is None:
                row.error(key, f"{_echo(text)} is not a date: use {DATE_HINT}.")
                failed.add(key)
                continue
        elif key == "sex" and text:
            given = SEX_WORDS.get(_words(text))
            if given is None:
                row.error(key, f"{_echo(text)} is not allowed. Allowed: {SEX_ALLOWED}.")
                failed.add(key)
                continue
        elif key == "fitzpatrick_type" and text:
            word = _words(text.split(":")[0]).removeprefix("type ")
            given = SKIN_WORDS.get(word)
            if given is None:
                row.error(key, f"{_echo(text)} is not allowed. Allowed: {SKIN_ALLOWED}.")
                failed.add(key)
                continue
        elif key == "record_number":
            given = normalise_record_number(text)
            if not given:  # given the next free number if the row is imported
                values[key] = ""
                continue
        try:
            values[key] = FIELDS[key].clean(given)
        except ValidationError as error:
            failed.add(key)
            if not text and BY_KEY[key].required:
                row.error(key, f"empty, but {_required(key)}")
            else:  # the registration form's own words (lengths, e-mail address ...)
                for message in error.messages:
                    row.error(key, message)
    # The model's own checks: dates from 1900 to 2100, no birth in the future. A record
    # number left empty is given at import; one given was checked by the form's field.
    patient = Patient(**{k: v for k, v in values.items() if k not in failed})
    try:
        patient.full_clean(
            exclude=failed | {"record_number"}, validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        for key, messages in error.message_dict.items():
            for message in messages:
                if key in row.where:
                    row.error(key, message)
                else:
                    row.result.errors.append(message)
    return values, patient


def _required(key):
    """'a last name is required' / 'required: YYYY-MM-DD or DD/MM/YYYY'."""
    hint = BY_KEY[key].hint.removeprefix("Required").lstrip(":. ").rstrip(".")
    return f"required: {hint}." if hint else f"a {BY_KEY[key].label.lower()} is required."


def _date_or_error(row, key, text, what):
    day = parse_date(text)
    if day is None:
        row.error(key, f"{_echo(text)}: the {what} is not a date; use {DATE_HINT}.")
        return None, False
    try:
        validate_clinic_date(day)
    except ValidationError as error:
        row.error(key, f"{_echo(text)}: the {what} is out of range. {error.messages[0]}")
        return None, False
    return day, True


def _flags(row, ctx):
    text = row.raw["flags"]
    flags = []
    for entry in (e.strip() for e in ENTRY_SPLIT.split(text)):
        if not entry:
            continue
        match = FLAG_ENTRY.match(entry)
        kind = FLAG_KINDS.get(_words(match["kind"])) if match else None
        if kind is None:
            name = match["kind"] if match else entry
            row.error(
                "flags",
                f"{_echo(name)} is not a kind of flag. Allowed: {FLAGS_ALLOWED}; write each as "
                "kind: start to end (detail), separated by ';'.",
            )
            continue
        started = ended = None
        ok = True
        dates = (match["dates"] or "").strip()
        if dates:
            span = DATE_SPAN.match(dates)
            start_text, end_text = (span["start"], span["end"]) if span else (dates, "")
            if end_text.strip().casefold() == "ongoing":
                end_text = ""
            if start_text:
                started, good = _date_or_error(row, "flags", start_text, "start date")
                ok &= good
            if end_text:
                ended, good = _date_or_error(row, "flags", end_text, "end date")
                ok &= good
        detail = (match["detail"] or "").strip()
        flag = MedicalFlag(kind=kind, started_on=started, ended_on=ended, detail=detail)
        try:
            refuse_nul(detail, "The flag's detail")
            MedicalFlag._meta.get_field("detail").clean(detail, flag)
            flag.clean()
        except ValidationError as error:
            for message in error.messages:
                row.error("flags", f"{_echo(entry)}: {message}")
            ok = False
        if ok:
            flags.append(flag)
    return flags


def _sites(row, ctx):
    text = row.raw["scar_sites"]
    sites, seen = [], set()
    for entry in (e.strip() for e in ENTRY_SPLIT.split(text)):
        if not entry:
            continue
        place, _, kinds = entry.partition(":")
        body_site = BODY_SITES.get(_words(place))
        if body_site is None:
            row.error(
                "scar_sites",
                f"{_echo(place)} is not a body site. Allowed: {SITES_ALLOWED}; write each site "
                "as body site: scar types joined by '+', separated by ';'.",
            )
            continue
        if body_site in seen:
            row.error(
                "scar_sites",
                f"{_echo(place)} is named twice: give it once, with all its scar types.",
            )
            continue
        seen.add(body_site)
        types, ok = [], True
        for name in (n.strip() for n in re.split(r"[+,]", kinds)):
            if not name:
                continue
            scar_type = ctx.scar_types.get(_words(name))
            if scar_type is None:
                row.error(
                    "scar_sites",
                    f"{_echo(name)} (at {_echo(place)}) is not a scar type. Allowed: "
                    f"{ctx.scar_types_allowed}.",
                )
                ok = False
            elif scar_type.pk not in types:
                types.append(scar_type.pk)
        if ok and not types:
            row.error(
                "scar_sites",
                f"{_echo(place)} has no scar type: write it as '{place.strip()}: rolling' (allowed "
                f"types: {ctx.scar_types_allowed}).",
            )
            ok = False
        if ok:
            sites.append((ScarSite(body_site=body_site, first_recorded_on=ctx.today), types))
    return sites


@dataclass
class Check:
    """Every row's result, in the order of the file."""

    results: list[RowResult]
    counts: Counter

    @property
    def refused_rows(self):
        return [r.row for r in self.results if r.status == REFUSED]

    @property
    def new(self):
        return [r for r in self.results if r.status == NEW]


def check(parsed: ParsedFile, mapping, *, ctx=None) -> Check:
    """Every row checked as registration would, then duplicates and record numbers."""
    problems = mapping_problems(parsed.header, mapping)
    if problems:
        raise FileProblem(" ".join(problems))
    ctx = ctx or Context.load()
    results = [_check_row(n, cells, parsed.header, mapping, ctx) for n, cells in parsed.rows]
    _find_duplicates(results)
    _give_record_numbers(results)
    return Check(results, Counter(r.status for r in results))


def _name_key(first, last, born):
    return (first.casefold(), last.casefold(), born)


CHUNK = 500  # values per IN (...): well inside SQLite's limit on parameters


def _chunks(values):
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _find_duplicates(results):
    """Mark rows whose patient is on file, or earlier in the file: same record number (any
    letter case), or same first and last name (any case) and date of birth. Patients on file
    are looked up set-based, never with a query per row."""
    candidates = [r for r in results if r.status == NEW]
    numbers = {r.record_number.upper() for r in candidates if r.record_number}
    births = {r.patient.date_of_birth for r in candidates}
    on_file_numbers, on_file_names = {}, {}
    if numbers:
        # Every record number at once (one index-only read, ~20 ms at 40,000 patients), not
        # UPPER(record_number) IN (...): for long lists PostgreSQL picks the trigram index of
        # the admin's search and takes seconds per few hundred numbers.
        upper = Patient.objects.annotate(upper_number=Upper("record_number"))
        found = {
            pk: number
            for number, pk in upper.values_list("upper_number", "pk")
            if number in numbers
        }
        for chunk in _chunks(found):
            for pk, number, first, last, born in Patient.objects.filter(pk__in=chunk).values_list(
                "pk", "record_number", "first_name", "last_name", "date_of_birth"
            ):
                on_file_numbers[found[pk]] = f"{number} ({first} {last}, born {born:%d/%m/%Y})"
    for chunk in _chunks(births):
        # As registration warns: patients in the working lists, not the archived ones.
        query = Patient.objects.active().filter(date_of_birth__in=chunk)
        for number, first, last, born in query.values_list(
            "record_number", "first_name", "last_name", "date_of_birth"
        ):
            on_file_names.setdefault(_name_key(first, last, born), number)
    in_file_numbers, in_file_names = {}, {}
    for result in candidates:
        patient = result.patient
        number = result.record_number.upper()
        name_key = _name_key(patient.first_name, patient.last_name, patient.date_of_birth)
        note = None
        if number and number in on_file_numbers:
            note = f"Record number already on file: {on_file_numbers[number]}."
        elif name_key in on_file_names:
            note = f"Same name and date of birth as {on_file_names[name_key]} on file."
        elif number and number in in_file_numbers:
            note = f"Same record number as row {in_file_numbers[number]} of this file."
        elif name_key in in_file_names:
            note = f"Same name and date of birth as row {in_file_names[name_key]} of this file."
        if note:
            result.status, result.note = DUPLICATE, note + " Not imported."
            continue
        if number:
            in_file_numbers[number] = result.row
        in_file_names[name_key] = result.row


def _give_record_numbers(results):
    """Rows without a record number get the next free ones of the clinic's format, in order,
    after the highest on file and in the file."""
    wanting = [r for r in results if r.status == NEW and not r.record_number]
    if not wanting:
        return
    prefix, digits = record_number_format()
    following = int(next_record_number(prefix, digits)[len(prefix) :])
    pattern = re.compile(rf"^{re.escape(prefix)}([0-9]{{1,18}})$")
    for result in results:
        match = pattern.match(result.record_number.upper())
        if match:
            following = max(following, int(match[1]) + 1)
    for result in wanting:
        result.record_number = f"{prefix}{following:0{digits}d}"
        result.note = "Record number given: the next free one."
        following += 1


# --- writing -------------------------------------------------------------------------------


def write(checked: Check, *, user, reason) -> int:
    """Insert the new rows' patients, flags and scar sites in bulk, each with a history row
    by `user` and change reason `reason`. The caller holds the transaction."""
    counts = Counter()
    new = checked.new
    patients = []
    for result in new:
        result.patient.record_number = result.record_number
        patients.append(result.patient)
    demo.bulk_insert(Patient, patients, user=user, counts=counts, reason=reason)
    flags, sites, links = [], [], []
    for result in new:
        for flag in result.flags:
            flag.patient_id = result.patient.pk
            flag.recorded_by = user
            flags.append(flag)
        for site, types in result.sites:
            site.patient_id = result.patient.pk
            sites.append(site)
            links += [(site, pk) for pk in types]
    demo.bulk_insert(MedicalFlag, flags, user=user, counts=counts, reason=reason)
    demo.bulk_insert_with_m2m(
        ScarSite, sites, "scar_types", links, user=user, counts=counts, reason=reason
    )
    return len(patients)


# --- an import's steps: upload, dry run, import (pages and command alike) -----------------


class ImportRefused(Exception):
    """The import was not carried out; the message says why and what to do."""


def store_upload(*, data: bytes, file_name: str, user, source=PatientImport.Source.WEB):
    """Keep an upload that reads as a CSV file (else FileProblem), pre-mapped by its header."""
    parsed = read_csv(data)
    return PatientImport.objects.create(
        uploaded_by=user,
        source=source,
        file_name="".join(c for c in file_name if c.isprintable())[:200],
        content=data,
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        row_count=len(parsed.rows),
        mapping=auto_mapping(parsed.header),
    )


def parsed_file(batch) -> ParsedFile:
    return read_csv(bytes(batch.content))


def _keep(batch, checked):
    rows = sorted(checked.results, key=lambda r: (STATUS_ORDER[r.status], r.row))
    batch.results = [r.as_json() for r in rows]
    batch.new_count = checked.counts[NEW]
    batch.duplicate_count = checked.counts[DUPLICATE]
    batch.refused_count = checked.counts[REFUSED]


def dry_run(batch, mapping) -> Check:
    """Check every row with `mapping` and keep each row's result on the batch; the import
    button of the page that shows them carries the batch's new version."""
    checked = check(parsed_file(batch), mapping)
    batch.mapping = list(mapping)
    _keep(batch, checked)
    batch.status = PatientImport.Status.CHECKED
    batch.checked_at = timezone.now()
    batch.version += 1
    batch.save()
    return checked


@dataclass
class Outcome:
    batch: PatientImport
    created: int = 0
    changed: bool = False  # the rows refused are not those the dry run showed: look again

    @property
    def message(self):
        b = self.batch
        return (
            f"Imported {self.created:,} patient{'s' if self.created != 1 else ''} "
            f"({b.duplicate_count:,} duplicate{'s' if b.duplicate_count != 1 else ''} skipped, "
            f"{b.excluded_count:,} row{'s' if b.excluded_count != 1 else ''} excluded)."
        )


def run(pk, *, user, version, exclude_refused=False) -> Outcome:
    """Import the batch's new rows, once, in one transaction, as its last dry run showed them.

    Refused (ImportRefused, nothing written) when the batch was imported already, has no dry
    run, its mapping changed since the page that asked (`version`), or rows are refused and
    `exclude_refused` is not given. The rows are checked again first: if the refused ones
    are not those the dry run showed, the new dry run is kept and nothing is imported
    (Outcome.changed), so that nobody excludes rows they have not seen.
    """
    with transaction.atomic():
        batch = PatientImport.objects.select_for_update().get(pk=pk)
        if batch.status == PatientImport.Status.IMPORTED:
            when = timezone.localtime(batch.imported_at)
            raise ImportRefused(
                f"This file was imported already, on {when:%d/%m/%Y at %H:%M}: nothing was "
                "imported again."
            )
        if batch.status != PatientImport.Status.CHECKED:
            raise ImportRefused("Map the columns and look at the dry run first.")
        if version != batch.version:
            raise ImportRefused(
                "The columns were mapped again since the dry run on your page (in another tab or "
                "by someone else): look at the dry run below, then import."
            )
        data = bytes(batch.content)
        if hashlib.sha256(data).hexdigest() != batch.sha256:
            raise ImportRefused(
                "The stored file has changed since it was uploaded: upload it again."
            )
        checked = check(read_csv(data), batch.mapping)
        shown = {row for row, status, *_ in batch.results if status == REFUSED}
        refused = set(checked.refused_rows)
        if refused != shown:
            _keep(batch, checked)
            batch.version += 1
            batch.checked_at = timezone.now()
            batch.save()
            return Outcome(batch, changed=True)
        if refused and not exclude_refused:
            rows = f"{len(refused):,} row{'s are' if len(refused) != 1 else ' is'}"
            raise ImportRefused(
                f"{rows} refused, so nothing was imported. Correct the file and upload it "
                "again, or tick the box to import the other rows without them."
            )
        try:
            with transaction.atomic():
                created = write(checked, user=user, reason=f"CSV import #{batch.pk}")
        except IntegrityError:
            raise ImportRefused(
                "Nothing was imported: another patient was saved with one of these record numbers "
                "while the import ran. Look at the dry run again, then import."
            ) from None
        _keep(batch, checked)
        batch.excluded_count = len(refused)
        batch.status = PatientImport.Status.IMPORTED
        batch.imported_at = timezone.now()
        batch.imported_by = user
        batch.version += 1
        batch.save()
        return Outcome(batch, created=created)
