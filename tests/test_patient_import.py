"""Importing patients from a CSV file (issue 14.3): the manager's pages (upload, map, dry run,
import), the import_patients command, and what must hold: only managers, a dry run before any
import, nothing half-imported, every new record's history naming the importer."""

import html
import io
import random
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.urls import reverse

from patients import importing
from patients.models import MedicalFlag, Patient, PatientImport, ScarSite
from tests.factories import TODAY, PatientFactory, browser_form, frozen
from tests.test_patient_import_parsing import HEADER, csv_bytes, row

pytestmark = pytest.mark.django_db

ROLES = ("front_desk", "clinician", "manager")
UNKNOWN = 999_999


@pytest.fixture(autouse=True)
def pinned_clock():
    with frozen():
        yield


def good_rows(n, *, start=0):
    rng = random.Random(n)
    return [
        row(
            record_number=f"IMP-{start + i:05d}",
            first_name=rng.choice(["Zoë", "Aled", "Siân", "Iñigo", "Kofi"]),
            last_name=f"Muñoz{start + i}",
            date_of_birth=str(
                date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
            ),
            sex=rng.choice("FMX"),
        )
        for i in range(n)
    ]


def upload(client, data, name="patients.csv"):
    return client.post(
        reverse("patient_import"), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def uploaded_and_checked(client, data):
    """Upload, accept the pre-mapped columns, run the dry run: the batch."""
    response = upload(client, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = PatientImport.objects.latest("pk")
    mapping_page = client.get(reverse("patient_import_map", args=[batch.pk]))
    response = client.post(mapping_page.wsgi_request.path, browser_form(mapping_page))
    assert response.status_code == 302, response.content.decode()[:2000]
    batch.refresh_from_db()
    return batch


def run(client, batch, **data):
    return client.post(
        reverse("patient_import_run", args=[batch.pk]),
        {"version": batch.version, **data},
        follow=True,
    )


def shown_messages(response):
    return [str(m) for m in response.context["messages"]]


def text(response):
    """The page as a person reads it: entities such as &quot; turned back into characters."""
    return html.unescape(response.content.decode())


# --- who may open what -----------------------------------------------------------------------


@pytest.fixture
def staff(front_desk, clinician, manager, outsider):
    return {
        "front_desk": front_desk,
        "clinician": clinician,
        "manager": manager,
        "outsider": outsider,
    }


class _World:
    """One checked import with a refused row, for the access table."""

    def __init__(self, manager):
        data = csv_bytes([row(), row(record_number="CX-2", sex="Q")])
        parsed = importing.read_csv(data)
        self.batch = importing.store_upload(data=data, file_name="p.csv", user=manager)
        importing.dry_run(self.batch, importing.auto_mapping(parsed.header))


# (url name, kwargs, method, POST data, expected for front desk / clinician / manager);
# a logged-in outsider (no role) always gets 403.
ACCESS = [
    ("patient_import", lambda w: {}, "get", None, (403, 403, 200)),
    ("patient_import_template", lambda w: {}, "get", None, (403, 403, 200)),
    ("patient_import_map", lambda w: {"pk": w.batch.pk}, "get", None, (403, 403, 200)),
    ("patient_import_check", lambda w: {"pk": w.batch.pk}, "get", None, (403, 403, 200)),
    ("patient_import_refused_csv", lambda w: {"pk": w.batch.pk}, "get", None, (403, 403, 200)),
    (
        "patient_import_run",
        lambda w: {"pk": w.batch.pk},
        "post",
        {"version": "1"},  # a stale version: refused with a message, nothing imported
        (403, 403, 302),
    ),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "data", "allowed"), ACCESS, ids=[r[0] for r in ACCESS]
)
def test_only_managers_may_import_patients(client, staff, name, kwargs, method, data, allowed):
    world = _World(staff["manager"])
    got = {}
    for role in ("outsider", *ROLES):
        client.force_login(staff[role])
        response = getattr(client, method)(reverse(name, kwargs=kwargs(world)), data or {})
        got[role] = response.status_code
    assert got == {"outsider": 403} | dict(zip(ROLES, allowed, strict=True))
    assert not Patient.objects.exists()


class _Unknown:
    pk = UNKNOWN
    batch = property(lambda self: self)


WITH_IDS = [r for r in ACCESS if r[1](_Unknown())]


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "data", "allowed"), WITH_IDS, ids=[r[0] for r in WITH_IDS]
)
def test_an_unknown_import_is_404(manager_client, name, kwargs, method, data, allowed):
    response = getattr(manager_client, method)(reverse(name, kwargs=kwargs(_Unknown())), data or {})
    assert response.status_code == 404


def test_front_desk_posting_an_import_changes_nothing(front_desk_client, manager):
    batch = _World(manager).batch
    response = front_desk_client.post(
        reverse("patient_import_run", args=[batch.pk]),
        {"version": batch.version, "exclude_refused": "on"},
    )
    assert response.status_code == 403
    assert not Patient.objects.exists()
    assert PatientImport.objects.get().status == PatientImport.Status.CHECKED


def test_managers_see_the_import_link_on_the_patient_list(client, manager, clinician):
    link = f'href="{reverse("patient_import")}"'
    client.force_login(manager)
    assert link in client.get(reverse("patient_list")).content.decode()
    client.force_login(clinician)
    assert link not in client.get(reverse("patient_list")).content.decode()


# --- the journey -----------------------------------------------------------------------------


def test_upload_map_dry_run_then_import_creates_the_patients_with_history(manager_client, manager):
    PatientFactory(record_number="CX-000900", first_name="Old", last_name="Patient")
    data = csv_bytes(
        [
            row(),
            row(record_number="cx-000900", first_name="Dup"),  # on file
            row(
                record_number="", first_name="Aled", last_name="Pritchard", flags="", scar_sites=""
            ),
        ],
        delimiter=";",
        encoding="cp1252",
    )
    response = upload(manager_client, data)
    batch = PatientImport.objects.get()
    assert response.url == reverse("patient_import_map", args=[batch.pk])
    mapping_page = manager_client.get(response.url)
    page = text(mapping_page)
    assert "read as Windows-1252 separated by <code>;</code>" in page
    assert "Zoë" in page and "Muñoz" in page  # the first rows, decoded
    form = browser_form(mapping_page)
    assert [form[f"column_{i}"] for i in range(len(HEADER))] == HEADER  # pre-mapped by name

    checked = manager_client.post(response.url, form, follow=True)
    assert not Patient.objects.filter(first_name="Zoë").exists()  # a dry run writes nothing
    page = text(checked)
    assert "<strong>2</strong> new patients, <strong>1</strong> duplicate" in page
    assert "Record number already on file: CX-000900 (Old Patient" in page
    assert "CX-500002" in page  # the next number after the file's CX-500001, for the row without

    done = run(manager_client, PatientImport.objects.get())
    assert shown_messages(done) == ["Imported 2 patients (1 duplicate skipped, 0 rows excluded)."]
    zoe = Patient.objects.get(record_number="CX-500001")
    assert (zoe.first_name, zoe.last_name, zoe.sex, zoe.fitzpatrick_type) == (
        "Zoë",
        "Muñoz",
        "F",
        3,
    )
    assert Patient.objects.get(first_name="Aled").record_number == "CX-500002"
    assert Patient.objects.count() == 3
    flags = {f.kind: f for f in zoe.flags.all()}
    assert flags["isotretinoin"].ended_on == date(2025, 12, 1)
    assert flags["isotretinoin"].recorded_by == manager
    sites = {s.body_site: sorted(t.code for t in s.scar_types.all()) for s in zoe.scar_sites.all()}
    assert sites == {"left_cheek": ["boxcar", "rolling"], "upper_back": ["hypertrophic"]}

    batch.refresh_from_db()
    reason = f"CSV import #{batch.pk}"
    for model, count in ((Patient, 2), (MedicalFlag, 2), (ScarSite, 2)):
        history = model.history.filter(history_change_reason=reason)
        assert history.count() == count
        assert set(history.values_list("history_user", "history_type")) == {(manager.pk, "+")}
    site_history = ScarSite.history.filter(
        history_change_reason=reason, body_site="left_cheek"
    ).get()
    assert sorted(t.scartype.code for t in site_history.scar_types.all()) == ["boxcar", "rolling"]
    assert (batch.status, batch.imported_by, batch.new_count) == ("imported", manager, 2)
    assert (batch.duplicate_count, batch.excluded_count) == (1, 0)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_both_encodings_and_both_delimiters_import_the_same_names(
    manager_client, encoding, delimiter
):
    data = csv_bytes(
        [row(), row(record_number="CX-2", first_name="Maëlle", last_name="Núñez-O'Brien")],
        delimiter=delimiter,
        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
        bom=encoding == "utf-8-sig",
    )
    batch = uploaded_and_checked(manager_client, data)
    assert (batch.new_count, batch.refused_count) == (2, 0)
    assert shown_messages(run(manager_client, batch))[-1].startswith("Imported 2 patients")
    names = set(Patient.objects.values_list("first_name", "last_name"))
    assert names == {("Zoë", "Muñoz"), ("Maëlle", "Núñez-O'Brien")}


def test_a_bad_row_imports_nothing_until_it_is_excluded(manager_client, manager):
    data = csv_bytes(
        [row(), row(record_number="CX-2", sex="Q"), row(record_number="CX-3", first_name="B")]
    )
    batch = uploaded_and_checked(manager_client, data)
    page = text(manager_client.get(reverse("patient_import_check", args=[batch.pk])))
    # Errors first, then the new rows.
    assert page.index("import-refused") < page.index("import-new")
    assert '"Q" is not allowed. Allowed: F (Female), M (Male), X (Other / not stated).' in page
    assert "leave out the 1 refused row listed below" in page

    refused = run(manager_client, batch)
    assert shown_messages(refused) == [
        "1 row is refused, so nothing was imported. Correct the file and upload it again, or "
        "tick the box to import the other rows without them."
    ]
    assert not Patient.objects.exists()

    done = run(manager_client, batch, exclude_refused="on")
    assert shown_messages(done) == ["Imported 2 patients (0 duplicates skipped, 1 row excluded)."]
    assert set(Patient.objects.values_list("record_number", flat=True)) == {"CX-500001", "CX-3"}
    assert "Excluded" in done.content.decode()


def test_a_bad_row_fixed_in_a_new_upload_imports_everything(manager_client):
    bad = uploaded_and_checked(
        manager_client, csv_bytes([row(), row(record_number="CX-2", first_name="Ana", sex="Q")])
    )
    assert bad.refused_count == 1
    run(manager_client, bad)
    assert not Patient.objects.exists()
    fixed = uploaded_and_checked(
        manager_client, csv_bytes([row(), row(record_number="CX-2", first_name="Ana", sex="M")])
    )
    assert (fixed.new_count, fixed.refused_count) == (2, 0)
    assert shown_messages(run(manager_client, fixed)) == [
        "Imported 2 patients (0 duplicates skipped, 0 rows excluded)."
    ]
    assert Patient.objects.count() == 2


def test_an_import_runs_once(manager_client):
    batch = uploaded_and_checked(manager_client, csv_bytes(good_rows(3)))
    run(manager_client, batch)
    again = run(manager_client, batch)
    assert shown_messages(again)[-1].startswith("This file was imported already, on 05/01/2026")
    assert Patient.objects.count() == 3


def test_an_import_confirms_the_dry_run_its_page_showed(manager_client):
    batch = uploaded_and_checked(manager_client, csv_bytes(good_rows(2)))
    shown_version = batch.version
    # Mapped again in another tab: the first tab's import button is out of date.
    mapping_page = manager_client.get(reverse("patient_import_map", args=[batch.pk]))
    manager_client.post(mapping_page.wsgi_request.path, browser_form(mapping_page))
    response = manager_client.post(
        reverse("patient_import_run", args=[batch.pk]), {"version": shown_version}, follow=True
    )
    assert (
        "The columns were mapped again since the dry run on your page"
        in shown_messages(response)[0]
    )
    assert not Patient.objects.exists()


def test_rows_refused_differently_at_import_time_are_shown_again_not_imported(
    manager_client, manager
):
    # Born "tomorrow": refused in today's dry run, acceptable two days later.
    data = csv_bytes([row(), row(record_number="CX-2", date_of_birth=str(TODAY + timedelta(1)))])
    batch = uploaded_and_checked(manager_client, data)
    assert batch.refused_count == 1
    with frozen(TODAY + timedelta(2)):
        manager_client.force_login(manager)  # two days on: logged out for being idle
        response = run(manager_client, batch, exclude_refused="on")
    assert shown_messages(response) == [
        "Nothing was imported: the rows refused are no longer those of the dry run you saw. "
        "Here is the dry run again."
    ]
    assert not Patient.objects.exists()
    batch.refresh_from_db()
    assert (batch.new_count, batch.refused_count, batch.status) == (2, 0, "checked")


def test_a_failure_mid_import_leaves_nothing_half_imported(manager_client, monkeypatch):
    batch = uploaded_and_checked(manager_client, csv_bytes(good_rows(5)))
    real_insert = importing.demo.bulk_insert
    calls = []

    def insert_then_fail_at_the_flags(model, objs, **kwargs):
        calls.append(model)
        if model is MedicalFlag:  # the patients are in by now
            assert Patient.objects.count() == 5
            raise RuntimeError("disk full")
        return real_insert(model, objs, **kwargs)

    monkeypatch.setattr(importing.demo, "bulk_insert", insert_then_fail_at_the_flags)
    with pytest.raises(RuntimeError, match="disk full"):
        importing.run(batch.pk, user=None, version=batch.version)
    assert calls == [Patient, MedicalFlag]
    assert not Patient.objects.exists()
    assert not Patient.history.exists()
    batch.refresh_from_db()
    assert batch.status == PatientImport.Status.CHECKED


def test_a_record_number_taken_during_the_import_rolls_it_back_with_a_message(
    manager_client, monkeypatch
):
    batch = uploaded_and_checked(manager_client, csv_bytes(good_rows(3)))

    def taken(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(importing.demo, "bulk_insert_with_m2m", taken)
    response = run(manager_client, batch)
    assert (
        "Nothing was imported: another patient was saved with one of these record numbers"
        in (shown_messages(response)[0])
    )
    assert not Patient.objects.exists()
    assert not MedicalFlag.objects.exists()


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "The submitted file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is a PNG image, not a CSV file."),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "spreadsheet workbook"),
        (b"Zo\xeb\x81,x\n", "has a byte (0x81) that cannot be read as UTF-8 or Windows-1252"),
        (b"just one column\nand another row\n", "The first row has a single column."),
        (b"first_name,last_name\n" + b"\x00" * 100, "binary data (NUL bytes)"),
    ],
)
def test_a_file_that_is_not_a_csv_of_patients_is_refused_with_a_message(manager_client, data, says):
    response = upload(manager_client, data)
    assert response.status_code == 200
    assert says in text(response)
    assert not PatientImport.objects.exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(manager_client, settings):
    settings.IMPORT_MAX_BYTES = 10_000_000
    data = b"first_name,last_name\n" + b"Zoe,Munoz\n" * 5_000_000  # 50 MB
    response = upload(manager_client, data)
    assert response.status_code == 200
    assert "The file is 50 MB; the limit is 10 MB." in response.content.decode()
    assert not PatientImport.objects.exists()


def test_no_file_at_all_is_refused_naming_the_field(manager_client):
    response = manager_client.post(reverse("patient_import"), {})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_a_mapping_without_a_required_field_is_refused_with_the_allowed_values(manager_client):
    upload(manager_client, csv_bytes([row()]))
    batch = PatientImport.objects.get()
    page = manager_client.get(reverse("patient_import_map", args=[batch.pk]))
    form = browser_form(page)
    form["column_4"] = ""  # sex left out
    form["column_3"] = "first_name"  # date of birth column as a second first name
    response = manager_client.post(page.wsgi_request.path, form)
    page = text(response)
    assert '"first_name" and "date_of_birth" are both mapped to first name' in page
    assert (
        "No column is mapped to Sex: required: F (Female), M (Male), X (Other / not stated)."
        in page
    )
    batch.refresh_from_db()
    assert batch.status == PatientImport.Status.UPLOADED


def test_the_dry_run_needs_the_same_queries_for_10_and_100_rows(
    manager_client, django_assert_max_num_queries
):
    budgets = []
    for n in (10, 100):
        upload(manager_client, csv_bytes(good_rows(n, start=n * 1000)))
        batch = PatientImport.objects.latest("pk")
        page = manager_client.get(reverse("patient_import_map", args=[batch.pk]))
        form = browser_form(page)
        with django_assert_max_num_queries(20) as captured:
            manager_client.post(page.wsgi_request.path, form)
        budgets.append(len(captured.captured_queries))
        with django_assert_max_num_queries(12) as shown:
            page = manager_client.get(reverse("patient_import_check", args=[batch.pk]))
        budgets.append(len(shown.captured_queries))
        assert f"<strong>{n}</strong> new patients" in page.content.decode()
    assert budgets[0] == budgets[2] and budgets[1] == budgets[3], budgets


def test_a_big_dry_run_is_shown_a_page_at_a_time_errors_first(manager_client):
    rows = good_rows(250)
    rows[200][4] = "?"  # row 202 refused
    batch = uploaded_and_checked(manager_client, csv_bytes(rows))
    page = manager_client.get(reverse("patient_import_check", args=[batch.pk]))
    shown = page.content.decode()
    assert shown.count('class="import-') == 100
    assert shown.index("<td>202</td>") < shown.index("<td>2</td>")
    assert "Page 1 of 3" in shown
    refused = manager_client.get(
        reverse("patient_import_check", args=[batch.pk]), {"show": "refused"}
    )
    assert refused.content.decode().count('class="import-refused"') == 1


# --- the template and the refused rows --------------------------------------------------------


def test_the_template_has_the_commands_headers_and_imports_cleanly(manager_client, tmp_path):
    response = manager_client.get(reverse("patient_import_template"))
    assert response["Content-Disposition"] == 'attachment; filename="patients-import-template.csv"'
    data = response.content
    assert data.decode("utf-8-sig").splitlines()[0] == ",".join(HEADER)
    path = tmp_path / "template.csv"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("import_patients", str(path), "--dry-run", stdout=out)
    assert "2 rows: 2 new, 0 duplicate, 0 refused." in out.getvalue()


def test_the_refused_rows_download_holds_them_with_their_problems_safe_for_a_spreadsheet(
    manager_client,
):
    data = csv_bytes([row(), row(record_number="CX-2", first_name='=HYPERLINK("x")', sex="Q")])
    batch = uploaded_and_checked(manager_client, data)
    response = manager_client.get(reverse("patient_import_refused_csv", args=[batch.pk]))
    lines = response.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(",row in the first file,problems")
    assert lines[1].startswith('CX-2,"\'=HYPERLINK(""x"")",')
    assert '""Q"" is not allowed' in lines[1]


# --- the command --------------------------------------------------------------------------------


def exit_status(*argv):
    """What `python manage.py import_patients ...` would exit with (manage.py exits with a
    CommandError's returncode), and what it printed."""
    out = io.StringIO()
    try:
        call_command("import_patients", *argv, stdout=out, stderr=out)
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}{error}"
    return 0, out.getvalue()


def test_the_command_imports_a_good_file_with_the_user_in_the_history(tmp_path, manager):
    path = tmp_path / "patients.csv"
    path.write_bytes(csv_bytes(good_rows(4), delimiter=";", encoding="cp1252"))
    status, printed = exit_status(str(path), "--user", manager.username)
    assert status == 0, printed
    batch = PatientImport.objects.get()
    assert (
        f"Imported 4 patients (0 duplicates skipped, 0 rows excluded). Import #{batch.pk}."
        in printed
    )
    assert Patient.objects.count() == 4
    assert set(Patient.history.values_list("history_user", flat=True)) == {manager.pk}
    assert (batch.source, batch.uploaded_by, batch.imported_by) == ("command", manager, manager)


def test_the_command_without_a_user_records_the_import_as_the_reason(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes(csv_bytes(good_rows(2)))
    assert exit_status(str(path))[0] == 0
    batch = PatientImport.objects.get()
    history = Patient.history.all()
    assert set(history.values_list("history_user", "history_change_reason")) == {
        (None, f"CSV import #{batch.pk}")
    }


def test_the_command_refuses_a_file_with_a_bad_row_and_imports_nothing(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes(csv_bytes([*good_rows(3), row(record_number="CX-9", fitzpatrick_type="7")]))
    for args in ((), ("--dry-run",)):
        status, printed = exit_status(str(path), *args)
        assert status == 1
        assert (
            'Row 5 refused: Column "fitzpatrick_type": "7" is not allowed. Allowed: I, II'
            in printed
        )
        assert "4 rows: 3 new, 0 duplicate, 1 refused." in printed
        assert "Nothing imported: 1 row refused." in printed
        assert not Patient.objects.exists()


def test_the_command_lists_duplicates_and_still_succeeds(tmp_path):
    PatientFactory(record_number="IMP-00000")
    path = tmp_path / "patients.csv"
    path.write_bytes(csv_bytes(good_rows(3)))
    status, printed = exit_status(str(path))
    assert status == 0
    assert "Row 2 duplicate: Record number already on file: IMP-00000" in printed
    assert "Imported 2 patients (1 duplicate skipped, 0 rows excluded)." in printed


@pytest.mark.parametrize(
    ("content", "args", "says"),
    [
        (None, (), "No such file or directory"),
        (b"\x00\x01binary", (), "binary data"),
        (
            b"first_name,last_name,dob,sex,skin,shoe size\n",
            (),
            'does not know (or a second column for one field): "shoe size"',
        ),
        (
            b"first_name,last_name,sex,fitzpatrick_type\n",
            (),
            "No column is mapped to Date of birth",
        ),
        (csv_bytes([row()]), ("--user", "nobody"), "No active login 'nobody'."),
    ],
)
def test_the_command_exits_2_when_the_file_or_its_columns_cannot_be_used(
    tmp_path, content, args, says
):
    path = tmp_path / "patients.csv"
    if content is not None:
        path.write_bytes(content)
    status, printed = exit_status(str(path), *args)
    assert status == 2
    assert says in printed
    assert not Patient.objects.exists()


def test_the_command_refuses_a_user_who_may_not_import(tmp_path, clinician):
    path = tmp_path / "patients.csv"
    path.write_bytes(csv_bytes([row()]))
    with pytest.raises(CommandError, match="may not import patients") as refused:
        call_command("import_patients", str(path), "--user", clinician.username)
    assert refused.value.returncode == 2


# --- hostile input -----------------------------------------------------------------------------


def test_hostile_files_and_form_values_never_answer_with_a_server_error(manager):
    from django.core.signals import got_request_exception
    from django.db import connection

    from tests import test_fuzz as fuzz

    recorder = fuzz.Recorder()
    got_request_exception.connect(recorder)
    rng = random.Random(fuzz.SEED)
    client = fuzz._client(manager)
    hostile = [v for v in fuzz.TEXT + fuzz.NUMBER + fuzz.DATE if "\x00" not in v]
    try:
        with connection.execute_wrapper(fuzz._refuse_what_a_database_refuses):
            for data in (
                bytes(rng.randrange(256) for _ in range(2000)),
                b'first_name,"last_name\n"unclosed,quote\n',
                b"\xef\xbb\xbf",
                b";;;\n;;;\n",
                "\u202e,\u200f\n".encode(),
            ):
                with recorder.sending():
                    recorder.check(upload(client, data), f"upload {data[:20]!r}")
            # A file whose every cell is hostile, through the mapping and the dry run.
            rows = [[rng.choice(hostile) for _ in HEADER] for _ in range(30)]
            response = upload(client, csv_bytes([*rows, *good_rows(2)]))
            recorder.check(response, "upload of hostile cells")
            batch = PatientImport.objects.latest("pk")
            map_path = reverse("patient_import_map", args=[batch.pk])
            page = client.get(map_path)
            recorder.check(page, f"GET {map_path}")
            offered = browser_form(page)
            for method, action, base in fuzz._forms(page, map_path):
                fuzz._fuzz_form(client, recorder, "manager", method, action, base, rng)
            recorder.check(client.post(map_path, offered), "mapping as offered")
            check_path = reverse("patient_import_check", args=[batch.pk])
            page = client.get(check_path)
            recorder.check(page, f"GET {check_path}")
            assert "<strong>2</strong> new patients" in page.content.decode()
            for method, action, base in fuzz._forms(page, check_path):
                fuzz._fuzz_form(client, recorder, "manager", method, action, base, rng)
            for query in ({"show": "refused", "page": "12345678901234567890"}, {"show": "<x>"}):
                path = reverse("patient_import_check", args=[batch.pk])
                recorder.check(client.get(path, query), f"GET {path} {query}")
            for data in ({"version": "-1"}, {"version": "x" * 10_000}, {"version": str(2**70)}):
                path = reverse("patient_import_run", args=[batch.pk])
                recorder.check(client.post(path, data), f"POST {path} {data}")
    finally:
        got_request_exception.disconnect(recorder)
    assert recorder.submissions > 30
    assert not recorder.problems, "\n".join(recorder.problems)
    assert not Patient.objects.exists()


# --- two imports at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_import_the_file_once(manager):
    from tests.test_concurrency import race

    data = csv_bytes(good_rows(20))
    parsed = importing.read_csv(data)
    batch = importing.store_upload(data=data, file_name="p.csv", user=manager)
    importing.dry_run(batch, importing.auto_mapping(parsed.header))

    def click():
        return importing.run(batch.pk, user=manager, version=batch.version)

    results = race(click, click)
    done = [r for r in results if isinstance(r, importing.Outcome)]
    refused = [r for r in results if isinstance(r, importing.ImportRefused)]
    assert (len(done), len(refused)) == (1, 1), results
    assert "imported already" in str(refused[0])
    assert Patient.objects.count() == 20
    assert Patient.history.count() == 20
