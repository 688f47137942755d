"""The manager imports patients from a CSV file in Chromium: upload, map, dry run, leave out the
refused row, import; and axe finds no WCAG A/AA violation on the import pages at desk and
tablet widths."""

import pytest

from patients.models import Patient
from tests.e2e.test_accessibility import SIZES, demo, report, violations_on  # noqa: F401
from tests.test_patient_import_parsing import csv_bytes, row

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("size", SIZES)
def test_a_manager_imports_a_file_leaving_out_its_refused_row(
    demo,  # noqa: F811
    login,
    live_server,
    tmp_path,
    size,
):
    path = tmp_path / "clinic.csv"
    path.write_bytes(
        csv_bytes(
            [
                row(),
                row(record_number="CX-500002", first_name="Ana", sex="Q"),
                row(record_number="", first_name="Aled", last_name="Pritchard"),
            ],
            delimiter=";",
            encoding="cp1252",
        )
    )
    page = login("manager", "cicatrix-demo")
    page.set_viewport_size(SIZES[size])
    found = {}

    page.goto(f"{live_server.url}/patients/")
    page.get_by_role("link", name="Import from a CSV file").click()
    found["upload"] = violations_on(page)
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and map the columns").click()
    page.wait_for_load_state()
    assert page.get_by_text("read as Windows-1252 separated by ;").is_visible()
    assert page.get_by_label("sex").input_value() == "sex"
    found["map"] = violations_on(page)

    page.get_by_role("button", name="Run the dry run").click()
    page.wait_for_load_state()
    assert page.get_by_text('Column "sex": "Q" is not allowed.').is_visible()
    found["dry run"] = violations_on(page)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("leave out the 1 refused row").check()
    page.get_by_role("button", name="Import 2 patients").click()
    page.wait_for_load_state()
    assert page.get_by_text(
        "Imported 2 patients (0 duplicates skipped, 1 row excluded)."
    ).is_visible()
    found["imported"] = violations_on(page)

    assert not {k: v for k, v in found.items() if v}, report(found)
    assert set(
        Patient.objects.filter(last_name__in=["Muñoz", "Pritchard"]).values_list(
            "first_name", flat=True
        )
    ) == {"Zoë", "Aled"}
