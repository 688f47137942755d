"""The CSV import's reading and checking (patients/importing.py), without HTTP: encodings,
delimiters, files that are not CSV, column mapping, every kind of refused row (each message
names the column and the allowed values), what is accepted, duplicates, record numbers."""

import codecs
import re
from datetime import date

import pytest

from patients import importing
from patients.importing import DUPLICATE, NEW, REFUSED, FileProblem, read_csv
from patients.models import Patient
from tests.factories import TODAY, PatientFactory, frozen

HEADER = importing.TEMPLATE_HEADER


def csv_bytes(rows, *, header=HEADER, delimiter=",", encoding="utf-8", bom=False):
    """A CSV file as a spreadsheet saves it: values quoted when they hold the delimiter."""

    def cell(value):
        value = str(value)
        if any(c in value for c in (delimiter, '"', "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delimiter.join(cell(c) for c in row) for row in [header, *rows]]
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    return codecs.BOM_UTF8 + data if bom else data


def row(**values):
    """A good row of the template's columns, with `values` changed."""
    base = {
        "record_number": "CX-500001",
        "first_name": "Zoë",
        "last_name": "Muñoz",
        "date_of_birth": "1994-03-17",
        "sex": "F",
        "fitzpatrick_type": "III",
        "phone": "07700 900123",
        "email": "zoe@example.org",
        "address": "12 Harbour Street, Exampleton",
        "other_allergies": "",
        "medications": "",
        "flags": "isotretinoin: 2025-06-01 to 2025-12-01 (20 mg daily); keloid_history",
        "scar_sites": "left_cheek: rolling + boxcar; upper_back: hypertrophic",
    }
    base.update(values)
    return [base[key] for key in HEADER]


# --- reading the file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom", "named"),
    [
        ("utf-8", False, "UTF-8"),
        ("utf-8", True, "UTF-8 (with byte-order mark)"),
        ("cp1252", False, "Windows-1252"),
    ],
)
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_both_encodings_and_both_delimiters_read_the_same_names(encoding, bom, named, delimiter):
    parsed = read_csv(csv_bytes([row()], delimiter=delimiter, encoding=encoding, bom=bom))
    assert parsed.encoding == named
    assert parsed.delimiter == delimiter
    assert parsed.header == HEADER
    number, cells = parsed.rows[0]
    assert number == 2  # the row a spreadsheet shows: the header is row 1
    assert cells[1:3] == ["Zoë", "Muñoz"]
    assert cells[8] == "12 Harbour Street, Exampleton"


def test_a_semicolon_file_may_hold_unquoted_commas_in_its_values():
    data = b"first_name;last_name;address\nAled;Pritchard;1, Mill Lane, Exampleton\n"
    parsed = read_csv(data)
    assert parsed.delimiter == ";"
    assert parsed.rows == [(2, ["Aled", "Pritchard", "1, Mill Lane, Exampleton"])]


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers():
    data = b"first_name,last_name\r\nA,B\r\n\r\n,\r\nC,D\r\n"
    assert read_csv(data).rows == [(2, ["A", "B"]), (5, ["C", "D"])]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "The file is empty"),
        (b" \r\n\r\n", "The file is empty"),
        (b",,\r\nfirst_name,last_name\r\n", "Row 1 of the file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Excel workbook"),
        (b"%PDF-1.7\n", "a PDF document"),
        (codecs.BOM_UTF16_LE + "first_name,last_name".encode("utf-16-le"), "UTF-16"),
        (b"first_name,last_name\nA\x00,B\n", "binary data"),
        (b"first_name,last_name\nAled,Pr\x81tchard\n", "Line 2 has a byte (0x81)"),
        (
            "first_name,last_name\nZoë,Muñoz\n".encode() + b"Ren\xe9e,Smith\n",
            "looks like UTF-8 (line 2)",
        ),
        (codecs.BOM_UTF8 + b"first_name,last_name\nRen\xe9e,Smith\n", "as its first bytes say"),
        (b"first_name\nAled\n", "a single column"),
        (b"first_name\tlast_name\nAled\tPritchard\n", "separated by tabs"),
    ],
)
def test_what_is_not_a_csv_file_of_patients_is_refused_with_what_to_do(data, says):
    with pytest.raises(FileProblem, match=re.escape(says)) as refused:
        read_csv(data)
    assert "\n" not in str(refused.value)


def test_a_file_past_the_row_limit_is_refused_naming_the_limit():
    data = b"first_name,last_name\n" + b"A,B\n" * 11
    assert len(read_csv(data, max_rows=11).rows) == 11
    with pytest.raises(FileProblem, match="more than 10 rows: split it"):
        read_csv(data, max_rows=10)


def test_too_many_columns_and_a_giant_value_are_refused():
    with pytest.raises(FileProblem, match="101 columns; at most 100"):
        read_csv((",".join(f"c{i}" for i in range(101)) + "\n").encode())
    with pytest.raises(FileProblem, match="Row 2 cannot be read as CSV"):
        read_csv(b"first_name,last_name\n" + b"A" * 200_000 + b",B\n")


# --- mapping -------------------------------------------------------------------------------


def test_columns_are_mapped_by_name_in_any_case_and_by_their_usual_names():
    header = ["Surname", "Given name", "DOB", "Gender", "Skin type", "E-mail", "Notes", "DOB"]
    assert importing.auto_mapping(header) == [
        "last_name",
        "first_name",
        "date_of_birth",
        "sex",
        "fitzpatrick_type",
        "email",
        "",  # nobody's name for a field: left out
        "",  # a second column for a field already taken
    ]
    assert importing.auto_mapping(HEADER) == HEADER


def test_a_mapping_needs_each_required_field_once():
    header = ["Name", "Surname", "DOB", "Born"]
    problems = importing.mapping_problems(
        header, ["first_name", "last_name", "date_of_birth", "date_of_birth"]
    )
    assert '"DOB" and "Born" are both mapped to date of birth: choose one of them.' in problems
    assert "No column is mapped to Sex: required: F (Female), M (Male), X (Other / not " in (
        " ".join(problems)
    )
    assert any("Fitzpatrick skin type: required: I, II, III" in p for p in problems)


# --- checking rows -------------------------------------------------------------------------


def check_rows(*rows, header=HEADER):
    parsed = read_csv(csv_bytes(rows, header=header))
    return importing.check(parsed, importing.auto_mapping(parsed.header)).results


BAD = [
    ("date_of_birth", "31/02/1990", ['"31/02/1990" is not a date: use YYYY-MM-DD or DD/MM/YYYY']),
    ("date_of_birth", "1850-01-01", ["Enter a date from 01/01/1900 to 31/12/2100"]),
    ("date_of_birth", "2026-01-06", ["Date of birth cannot be in the future"]),
    ("date_of_birth", "", ["empty, but required: YYYY-MM-DD or DD/MM/YYYY"]),
    ("sex", "Q", ['"Q" is not allowed. Allowed: F (Female), M (Male), X (Other / not stated)']),
    ("sex", "", ["empty, but required: F (Female), M (Male), X (Other / not stated)"]),
    ("fitzpatrick_type", "VII", ["Allowed: I, II, III, IV, V or VI (or 1 to 6), or 'unassessed'"]),
    ("fitzpatrick_type", "", ["empty, but required: I, II, III, IV, V or VI"]),
    ("first_name", "", ["empty, but a first name is required"]),
    ("last_name", "x" * 81, ["Ensure this value has at most 80 characters (it has 81)"]),
    ("record_number", "CX-" + "9" * 18, ["at most 20 characters (it has 21)"]),
    ("email", "zoe(at)example", ["Enter a valid email address"]),
    ("flags", "pregnant: 2026-05-01", ['"pregnant" is not a kind of flag. Allowed: isotretinoin']),
    ("flags", "isotretinoin: someday", ["the start date is not a date; use YYYY-MM-DD"]),
    ("flags", "pregnancy: 1800-01-01", ["the start date is out of range. Enter a date from"]),
    (
        "flags",
        "isotretinoin: 2026-05-01 to 2026-01-01",
        ["The end date must be on or after the start date"],
    ),
    ("flags", "medication: (" + "x" * 201 + ")", ["at most 200 characters"]),
    ("scar_sites", "elbow: rolling", ['"elbow" is not a body site. Allowed: forehead (Forehead)']),
    ("scar_sites", "nose: pitted", ['"pitted" (at "nose") is not a scar type. Allowed: hyper']),
    ("scar_sites", "nose", ['"nose" has no scar type']),
    ("scar_sites", "nose: icepick; Nose: boxcar", ['"Nose" is named twice']),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "value", "says"), BAD, ids=[f"{c}={v[:20]}" for c, v, _ in BAD])
def test_each_kind_of_bad_value_refuses_the_row_naming_the_column_and_what_is_allowed(
    column, value, says
):
    with frozen(TODAY):
        (result,) = check_rows(row(**{column: value}))
    assert result.status == REFUSED
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].startswith(f'Column "{column}": ')
    for words in says:
        assert words in result.errors[0]


@pytest.mark.django_db
def test_a_renamed_column_is_named_as_the_file_names_it_with_the_field():
    header = ["Surname", "First name", "DOB", "Gender", "Skin type"]
    with frozen(TODAY):
        (result,) = check_rows(["Muñoz", "Zoë", "1994-03-17", "Q", "II"], header=header)
    assert result.errors == [
        'Column "Gender" (Sex): "Q" is not allowed. Allowed: F (Female), M (Male), '
        "X (Other / not stated)."
    ]


@pytest.mark.django_db
def test_a_row_with_too_many_or_too_few_values_is_refused():
    parsed = read_csv(
        b"first_name,last_name,date_of_birth,sex,fitzpatrick_type\n"
        b"A,B,1990-01-01,F,I,extra\nA,B,1990-01-01\n"
    )
    results = importing.check(parsed, importing.auto_mapping(parsed.header)).results
    assert [r.status for r in results] == [REFUSED, REFUSED]
    assert results[0].errors[0].startswith("The row has 6 values but the header has 5 columns")
    assert results[1].errors[0].startswith("The row has 3 values but the header has 5 columns")


@pytest.mark.django_db
def test_every_problem_of_a_row_is_listed_not_only_the_first():
    with frozen(TODAY):
        (result,) = check_rows(row(sex="Q", date_of_birth="yesterday", scar_sites="elbow: x"))
    columns = [e.split(":")[0] for e in result.errors]
    assert columns == ['Column "date_of_birth"', 'Column "sex"', 'Column "scar_sites"']


@pytest.mark.django_db
def test_what_people_write_is_accepted_as_registration_stores_it():
    with frozen(TODAY):
        results = check_rows(
            row(record_number=" cx-77 ", sex="female", fitzpatrick_type="Type IV"),
            row(
                record_number="CX-78",
                first_name="Aled",
                date_of_birth="02/11/1988",
                sex="Other / not stated",
                fitzpatrick_type="Not yet assessed",
                phone="'+44 7700 900123",  # as a safe CSV export wrote it
                flags="Salicylate / aspirin allergy; pregnancy: 2025-12-01 to ongoing",
                scar_sites="Upper back: Atrophic: rolling + Keloid",
            ),
            row(record_number="CX-79", first_name="Ana", sex="m", fitzpatrick_type="6"),
        )
    assert [r.status for r in results] == [NEW, NEW, NEW]
    first, second, third = (r.patient for r in results)
    assert results[0].record_number == "CX-77"
    assert (first.sex, first.fitzpatrick_type) == ("F", 4)
    assert (second.sex, second.fitzpatrick_type) == ("X", None)
    assert second.date_of_birth == date(1988, 11, 2)
    assert second.phone == "+44 7700 900123"
    assert (third.sex, third.fitzpatrick_type) == ("M", 6)
    flags = [(f.kind, f.started_on, f.ended_on, f.detail) for f in results[0].flags]
    assert flags == [
        ("isotretinoin", date(2025, 6, 1), date(2025, 12, 1), "20 mg daily"),
        ("keloid_history", None, None, ""),
    ]
    assert [(f.kind, f.started_on, f.ended_on) for f in results[1].flags] == [
        ("salicylate_allergy", None, None),
        ("pregnancy", date(2025, 12, 1), None),
    ]
    (site, types) = results[1].sites[0]
    assert site.body_site == "upper_back"
    from patients.models import ScarType

    assert sorted(ScarType.objects.filter(pk__in=types).values_list("code", flat=True)) == [
        "keloid",
        "rolling",
    ]


@pytest.mark.django_db
def test_duplicates_of_patients_on_file_and_of_earlier_rows_are_found():
    PatientFactory(record_number="CX-500001", first_name="Other", last_name="Person")
    PatientFactory(
        record_number="CX-100",
        first_name="Aled",
        last_name="Pritchard",
        date_of_birth=date(1988, 11, 2),
    )
    archived = PatientFactory(
        record_number="CX-101", first_name="Siân", last_name="Evans", date_of_birth=date(1970, 1, 1)
    )
    archived.archive()
    with frozen(TODAY):
        results = check_rows(
            row(record_number="cx-500001"),  # on file, any case
            row(
                record_number="CX-2",
                first_name="ALED",
                last_name="pritchard",
                date_of_birth="1988-11-02",
            ),
            row(
                record_number="CX-3",
                first_name="Siân",
                last_name="Evans",
                date_of_birth="1970-01-01",
            ),
            row(record_number="CX-101", first_name="New", last_name="Person"),  # archived's number
            row(record_number="CX-3", first_name="Someone", last_name="Else"),  # row 5's number
            row(
                record_number="CX-9",
                first_name="siân",
                last_name="EVANS",
                date_of_birth="01/01/1970",
            ),
        )
    assert [r.status for r in results] == [
        DUPLICATE,
        DUPLICATE,
        NEW,
        DUPLICATE,
        DUPLICATE,
        DUPLICATE,
    ]
    assert results[0].note.startswith("Record number already on file: CX-500001 (Other Person")
    assert results[1].note == "Same name and date of birth as CX-100 on file. Not imported."
    assert results[3].note.startswith("Record number already on file: CX-101")
    assert results[4].note == "Same record number as row 4 of this file. Not imported."
    assert results[5].note == "Same name and date of birth as row 4 of this file. Not imported."


@pytest.mark.django_db
def test_a_refused_row_is_not_the_original_a_later_row_duplicates():
    with frozen(TODAY):
        results = check_rows(row(sex="Q"), row())
    assert [r.status for r in results] == [REFUSED, NEW]


@pytest.mark.django_db
def test_rows_without_a_record_number_get_the_next_free_ones_after_the_file_and_the_clinic():
    PatientFactory(record_number="CX-000041")
    with frozen(TODAY):
        results = check_rows(
            row(record_number="", first_name="A"),
            row(record_number="CX-000050", first_name="B"),
            row(record_number="", first_name="C"),
        )
    assert [r.record_number for r in results] == ["CX-000051", "CX-000050", "CX-000052"]
    assert results[0].note == "Record number given: the next free one."


@pytest.mark.django_db
def test_the_template_rows_import_as_they_are():
    parsed = read_csv(csv_bytes(importing.TEMPLATE_ROWS))
    with frozen(TODAY):
        checked = importing.check(parsed, importing.auto_mapping(parsed.header))
    assert [r.status for r in checked.results] == [NEW, NEW], [r.errors for r in checked.results]
    assert Patient.objects.count() == 0
