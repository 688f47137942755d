"""Downloads of a patient's whole record: the FHIR bundle (clinician, manager) and the full
record for a subject access request (manager). Each download is recorded in the access log."""

import json
import tempfile

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import FileResponse, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import cache_control

from patients.audit import record_access
from patients.models import RecordAccess
from patients.views import get_patient
from plans import exports, fhir
from plans.full_record import file_safe, write_full_record
from plans.report_views import staff_report_pdf

private = cache_control(private=True, no_store=True)

FHIR_JSON = "application/fhir+json"
ZIP = "application/zip"


def patient_bundle(patient, *, generated_at=None):
    """The FHIR bundle of one patient, as a dict (8 queries, whatever the record's size)."""
    record = exports.load_records([patient])[0]
    return fhir.build_bundle(
        record,
        system=settings.FHIR_RECORD_NUMBER_SYSTEM,
        generated_at=generated_at or timezone.now(),
    )


def _attachment(response, filename):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@private
@permission_required("patients.export_fhir", raise_exception=True)
def patient_fhir(request, pk):
    patient = get_patient(pk)
    now = timezone.now()
    body = json.dumps(patient_bundle(patient, generated_at=now), ensure_ascii=False, indent=1)
    record_access(request, patient, RecordAccess.What.FHIR)
    name = f"cicatrix-{file_safe(patient.record_number)}-fhir-{timezone.localdate(now)}.json"
    return _attachment(HttpResponse(body.encode("utf-8"), content_type=FHIR_JSON), name)


@private
@permission_required("patients.export_full_record", raise_exception=True)
def patient_full_record(request, pk):
    """The subject access request: written to a temporary file (photos can be large), which
    is streamed out and removed when the response is closed."""
    patient = get_patient(pk)
    now = timezone.now()
    record = exports.load_records([patient], full=True)[0]
    bundle = fhir.build_bundle(record, system=settings.FHIR_RECORD_NUMBER_SYSTEM, generated_at=now)
    _, pdf = staff_report_pdf(patient, request=request)
    # Not a `with` block: FileResponse closes (and so removes) it after the last byte.
    target = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        write_full_record(
            record, target, bundle=bundle, report_pdf=pdf, exported_by=request.user, exported_at=now
        )
    except BaseException:
        target.close()
        raise
    target.seek(0)
    record_access(request, patient, RecordAccess.What.FULL_RECORD)
    name = f"cicatrix-{file_safe(patient.record_number)}-full-record-{timezone.localdate(now)}.zip"
    response = FileResponse(target, content_type=ZIP)
    return _attachment(response, name)
