"""The manager's pages for importing patients from a CSV file: upload, map the columns,
dry run, import. The work is done by patients/importing.py; these pages only ask and show."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from clinic.csv_export import csv_response
from clinic.views_helpers import paginate
from patients import importing
from patients.import_forms import ImportUploadForm, MappingForm, RunForm
from patients.models import PatientImport

PERMISSION = "patients.import_patients"
PREVIEW_ROWS = 5
ROWS_PER_PAGE = 100
SHOW = {
    "all": "All rows",
    importing.REFUSED: "Refused",
    importing.DUPLICATE: "Duplicates",
    importing.NEW: "New patients",
}


def get_import(pk, *, with_file=True):
    """The one lookup for an import in a URL: unknown ids are a 404. Without the file's
    bytes where a page does not read them."""
    batches = PatientImport.objects.select_related("uploaded_by", "imported_by")
    if not with_file:
        batches = batches.defer("content")
    return get_object_or_404(batches, pk=pk)


def _file_or_problem(request, batch):
    """The batch's file read again, or None with a message (limits lowered since upload)."""
    try:
        return importing.parsed_file(batch)
    except importing.FileProblem as problem:
        messages.error(request, f"This file can no longer be read: {problem}")
        return None


@permission_required(PERMISSION, raise_exception=True)
def import_upload(request):
    posted = request.method == "POST"
    form = ImportUploadForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        batch = importing.store_upload(
            data=form.data_bytes, file_name=upload.name or "", user=request.user
        )
        messages.success(
            request,
            f"Read {batch.row_count:,} row{'s' if batch.row_count != 1 else ''} "
            f"({batch.encoding}, separated by '{batch.delimiter}'). Check how the columns map.",
        )
        return redirect("patient_import_map", pk=batch.pk)
    recent = (
        PatientImport.objects.defer("content", "results", "mapping")
        .select_related("uploaded_by", "imported_by")
        .order_by("-uploaded_at", "-pk")[:20]
    )
    return render(
        request,
        "patients/import_upload.html",
        {"form": form, "recent": recent, "columns": importing.COLUMNS},
    )


@permission_required(PERMISSION, raise_exception=True)
def import_template(request):
    """The CSV template: the headers the import and the command expect, two example rows."""
    return csv_response(
        "patients-import-template.csv", importing.TEMPLATE_HEADER, importing.TEMPLATE_ROWS
    )


@permission_required(PERMISSION, raise_exception=True)
def import_map(request, pk):
    batch = get_import(pk)
    if batch.status == PatientImport.Status.IMPORTED:
        messages.info(request, "This file has been imported: its columns can no longer change.")
        return redirect("patient_import_check", pk=batch.pk)
    parsed = _file_or_problem(request, batch)
    if parsed is None:
        return redirect("patient_import")
    posted = request.method == "POST"
    form = MappingForm(
        request.POST if posted else None, header=parsed.header, mapping=batch.mapping
    )
    if posted and form.is_valid():
        importing.dry_run(batch, form.mapping())
        return redirect("patient_import_check", pk=batch.pk)
    examples = [
        [cells[i] if i < len(cells) else "" for _, cells in parsed.rows[:3]]
        for i in range(len(parsed.header))
    ]
    return render(
        request,
        "patients/import_map.html",
        {
            "batch": batch,
            "form": form,
            "rows": [
                (number, [*cells, *[""] * (len(parsed.header) - len(cells))])
                for number, cells in parsed.rows[:PREVIEW_ROWS]
            ],
            "header": parsed.header,
            "columns_with_examples": [
                (bound, index, examples[index]) for bound, index in form.columns()
            ],
            "fields": importing.COLUMNS,
        },
    )


def _results_page(request, batch):
    show = request.GET.get("show")
    show = show if show in SHOW else "all"
    rows = batch.results if isinstance(batch.results, list) else []
    if show != "all":
        rows = [r for r in rows if r[1] == show]
    page = paginate(request, rows, per_page=ROWS_PER_PAGE)
    return show, page


@permission_required(PERMISSION, raise_exception=True)
def import_check(request, pk):
    batch = get_import(pk, with_file=False)
    if batch.status == PatientImport.Status.UPLOADED:
        return redirect("patient_import_map", pk=batch.pk)
    show, page = _results_page(request, batch)
    imported = batch.status == PatientImport.Status.IMPORTED
    labels = SHOW | ({importing.REFUSED: "Excluded", importing.NEW: "Created"} if imported else {})
    return render(
        request,
        "patients/import_check.html",
        {
            "batch": batch,
            "imported": imported,
            "page": page,
            "show": show,
            "filters": [
                (
                    key,
                    label,
                    {
                        "all": batch.new_count + batch.duplicate_count + batch.refused_count,
                        importing.REFUSED: batch.refused_count,
                        importing.DUPLICATE: batch.duplicate_count,
                        importing.NEW: batch.new_count,
                    }[key],
                )
                for key, label in labels.items()
            ],
            "run_form": RunForm(initial={"version": batch.version}),
        },
    )


@require_POST
@permission_required(PERMISSION, raise_exception=True)
def import_run(request, pk):
    batch = get_import(pk, with_file=False)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "This page is out of date: look at the dry run again, then import.")
        return redirect("patient_import_check", pk=batch.pk)
    try:
        outcome = importing.run(
            batch.pk,
            user=request.user,
            version=form.cleaned_data["version"],
            exclude_refused=form.cleaned_data["exclude_refused"],
        )
    except importing.ImportRefused as refused:
        messages.error(request, str(refused))
    except importing.FileProblem as problem:
        messages.error(request, f"Nothing was imported: {problem}")
    else:
        if outcome.changed:
            messages.warning(
                request,
                "Nothing was imported: the rows refused are no longer those of the dry run you "
                "saw. Here is the dry run again.",
            )
        else:
            messages.success(request, outcome.message)
    return redirect("patient_import_check", pk=batch.pk)


@permission_required(PERMISSION, raise_exception=True)
def import_refused_csv(request, pk):
    """The refused rows as they were in the file, each with its problems, to correct and
    upload again; every cell made safe to open in a spreadsheet."""
    batch = get_import(pk)
    parsed = _file_or_problem(request, batch)
    if parsed is None:
        return redirect("patient_import_check", pk=batch.pk)
    problems = {
        row: " | ".join(texts) for row, status, _, _, texts in batch.results if status == "refused"
    }
    return csv_response(
        f"patient-import-{batch.pk}-refused-rows.csv",
        [*parsed.header, "row in the first file", "problems"],
        [[*cells, number, problems[number]] for number, cells in parsed.rows if number in problems],
    )
