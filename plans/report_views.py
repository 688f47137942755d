"""Progress reports (screen, print, PDF), a plan's CSV and the clinic outcomes page."""

import hashlib
import time
from datetime import timedelta

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import cache_control

from clinic.csv_export import csv_response
from clinic.validators import validate_clinic_date
from patients.audit import record_access
from patients.forms import DATE
from patients.models import RecordAccess, ScarType
from patients.views import get_patient
from plans import charts, reports, scales
from plans.models import Assessment, Plan, Session, Treatment
from plans.patient_copy import build_aftercare_sheet, build_patient_copy

private = cache_control(private=True, no_store=True)

# A day: an unchanged report is downloaded again the same day, rarely later (the date moves).
PDF_CACHE_SECONDS = 24 * 3600


def _report_context(request, patient, plan=None, *, pdf=False, staff=None):
    if staff is None:
        staff = request.GET.get("copy") != "patient"
    report = reports.build_report(patient, plan=plan, staff=staff, embed_photos=pdf)
    return {
        "report": report,
        "pc": None if staff else build_patient_copy(report),
        "patient": patient,
        "plan": plan,
        "staff": staff,
        "copy": "staff" if staff else "patient",
        "pdf": pdf,
    }


def _pdf_response(request, context, filename):
    started = time.monotonic()
    html = render_to_string("reports/report_pdf.html", context, request=request)
    pdf = _cached_pdf(context["patient"].pk, html)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Render-Seconds"] = f"{time.monotonic() - started:.2f}"
    return response


def patient_copy_pdf(patient, plan=None, *, request=None):
    """(file name, PDF bytes) of the patient's own copy: what is handed over, e-mailed or
    opened by a patient's link. `request` is optional (a management command has none)."""
    context = _report_context(request, patient, plan, pdf=True, staff=False)
    html = render_to_string("reports/report_pdf.html", context, request=request)
    return _filename(patient, plan, "patient"), _cached_pdf(patient.pk, html)


def staff_report_pdf(patient, *, request=None):
    """(file name, PDF bytes) of the staff copy of the whole progress report, for the
    patient's full record. `request` is optional, as for patient_copy_pdf."""
    context = _report_context(request, patient, pdf=True, staff=True)
    html = render_to_string("reports/report_pdf.html", context, request=request)
    return _filename(patient, None, "staff"), _cached_pdf(patient.pk, html)


def _cached_pdf(patient_pk, html):
    """The PDF of this exact HTML, laid out once: WeasyPrint takes a second, the HTML 40 ms.

    Keyed by a digest of the HTML itself, so anything the report shows (a new score, an
    amendment, today's date, the copy, the language, a photo) makes a new key and an old PDF
    is never served for changed data; old entries age out of the cache.
    """
    key = f"report-pdf:{patient_pk}:{hashlib.sha256(html.encode()).hexdigest()}"
    pdf = cache.get(key)
    if pdf is None:
        pdf = render_pdf(html)
        cache.set(key, pdf, timeout=PDF_CACHE_SECONDS)
    return pdf


def render_pdf(html):
    """WeasyPrint layout of the report's HTML."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Photos are embedded as data: URLs; nothing else is ever fetched, from anywhere.
    fetcher = URLFetcher(allowed_protocols={"data"})
    # PDF/UA-1: tagged, so that a screen reader can follow headings, tables and reading
    # order; the document title and language come from <title> and <html lang>.
    return HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant="pdf/ua-1")


def _filename(patient, plan, copy):
    """Staff files carry the record number; the patient's own copy does not need it."""
    scope = f"plan-{plan.pk}" if plan else "all-plans"
    stamp = timezone.localdate().isoformat()
    if copy == "patient":
        return f"progress-report-{scope}-{stamp}.pdf"
    return f"cicatrix-{patient.record_number}-{scope}-staff-{stamp}.pdf"


def get_patient_plan(pk, plan_pk):
    """A plan only under its own patient's URL: another patient's plan id is a 404."""
    patient = get_patient(pk)
    return patient, get_object_or_404(Plan, pk=plan_pk, patient=patient)


@private
@permission_required("plans.view_report", raise_exception=True)
def patient_report(request, pk):
    patient = get_patient(pk)
    record_access(request, patient, RecordAccess.What.REPORT)
    return render(request, "reports/report.html", _report_context(request, patient))


@private
@permission_required("plans.view_report", raise_exception=True)
def patient_report_pdf(request, pk):
    patient = get_patient(pk)
    record_access(request, patient, RecordAccess.What.REPORT_PDF)
    context = _report_context(request, patient, pdf=True)
    return _pdf_response(request, context, _filename(patient, None, context["copy"]))


@private
@permission_required("plans.view_report", raise_exception=True)
def plan_report(request, pk, plan_pk):
    patient, plan = get_patient_plan(pk, plan_pk)
    record_access(request, patient, RecordAccess.What.REPORT, plan)
    return render(request, "reports/report.html", _report_context(request, patient, plan))


@private
@permission_required("plans.view_report", raise_exception=True)
def plan_report_pdf(request, pk, plan_pk):
    patient, plan = get_patient_plan(pk, plan_pk)
    record_access(request, patient, RecordAccess.What.REPORT_PDF, plan)
    context = _report_context(request, patient, plan, pdf=True)
    return _pdf_response(request, context, _filename(patient, plan, context["copy"]))


def _aftercare_context(pk):
    session = get_object_or_404(
        Session.objects.select_related("patient", "location").exclude(
            status=Session.Status.CANCELLED
        ),
        pk=pk,
    )
    return {"session": session, "sheet": build_aftercare_sheet(session)}


@private
@permission_required("plans.view_report", raise_exception=True)
def session_aftercare(request, pk):
    """One printable page for the patient after today's visit (issue 13.2)."""
    context = _aftercare_context(pk)
    record_access(request, context["session"].patient, RecordAccess.What.REPORT)
    return render(request, "reports/aftercare.html", context)


@private
@permission_required("plans.view_report", raise_exception=True)
def session_aftercare_pdf(request, pk):
    context = _aftercare_context(pk)
    session = context["session"]
    record_access(request, session.patient, RecordAccess.What.REPORT_PDF)
    html = render_to_string("reports/aftercare_pdf.html", context, request=request)
    response = HttpResponse(_cached_pdf(session.patient_id, html), content_type="application/pdf")
    name = f"aftercare-{session.scheduled_at:%Y-%m-%d}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@private
@permission_required("plans.view_report", raise_exception=True)
def plan_sessions_csv(request, pk, plan_pk):
    """Each treatment done in each session with its parameters and the session's scores."""
    patient, plan = get_patient_plan(pk, plan_pk)
    record_access(request, patient, RecordAccess.What.CSV, plan)
    sessions = list(
        Session.objects.filter(plan=plan)
        .select_related("clinician")
        .prefetch_related(
            "treatments__treatment__parameters", "treatments__course", "adverse_events"
        )
        .order_by("scheduled_at", "pk")
    )
    scores = {}
    for a in Assessment.objects.filter(session__plan=plan).select_related("scar_site"):
        scores.setdefault(a.session_id, []).append(
            f"{a.scar_site.get_body_site_display()} {scales.get(a.instrument).name}={a.total}"
        )
    header = [
        "date",
        "time",
        "status",
        "clinician",
        "treatment",
        "session n of m",
        "parameters",
        "scores",
        "adverse events",
    ]
    rows = []
    for session in sessions:
        local = timezone.localtime(session.scheduled_at)
        for row in session.treatments.all():
            rows.append(
                [
                    local.date().isoformat(),
                    local.strftime("%H:%M"),
                    session.get_status_display(),
                    str(session.clinician or ""),
                    row.treatment.name,
                    row.numbering,
                    "; ".join(f"{k}={v}" for k, v in _in_definition_order(row)),
                    "; ".join(scores.get(session.pk, [])),
                    "; ".join(e.get_kind_display() for e in session.adverse_events.all()),
                ]
            )
    name = f"cicatrix-{patient.record_number}-plan-{plan.pk}-sessions.csv"
    return csv_response(name, header, rows)


def _in_definition_order(row):
    """Parameters as the treatment lists them (PostgreSQL's jsonb does not keep key order)."""
    order = {p.code: i for i, p in enumerate(row.treatment.parameters.all())}
    return sorted(row.parameters.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


class OutcomesForm(forms.Form):
    start = forms.DateField(validators=[validate_clinic_date], widget=DATE, label="From")
    end = forms.DateField(validators=[validate_clinic_date], widget=DATE, label="To")
    treatment = forms.ModelChoiceField(Treatment.objects.all(), required=False)
    scar_type = forms.ModelChoiceField(ScarType.objects.all(), required=False)
    instrument = forms.ChoiceField(
        choices=[("", "All scores")]
        + [(c, n) for c, n in scales.CHOICES if c not in scales.PER_SESSION],
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            self.add_error("end", "To must be on or after From.")
        return cleaned


@private
@permission_required("plans.view_outcomes", raise_exception=True)
def clinic_outcomes(request):
    today = timezone.localdate()
    initial = {"start": today - timedelta(days=365), "end": today}
    form = OutcomesForm(request.GET or None, initial=initial)
    rows, chart = [], ""
    if not request.GET:
        form = OutcomesForm(initial, initial=initial)
    if form.is_valid():
        data = form.cleaned_data
        rows = reports.clinic_outcomes(
            start=data["start"],
            end=data["end"],
            treatment=data["treatment"],
            scar_type=data["scar_type"],
            instrument=data["instrument"] or None,
        )
        code = data["instrument"] or _most_common_instrument(rows)
        if code:
            bars = [
                (f"{r.treatment} · {r.scar_type}", r.mean_change[code][0])
                for r in rows
                if code in r.mean_change
            ]
            chart = charts.bar_chart(
                bars, title=f"Mean change from baseline: {scales.get(code).name}"
            )
            chart_instrument = scales.get(code)
        else:
            chart_instrument = None
    else:
        chart_instrument = None
    instruments = sorted(
        {code for r in rows for code in r.mean_change}, key=list(scales.INSTRUMENTS).index
    )
    for row in rows:
        row.cells = [row.mean_change.get(code) for code in instruments]
    return render(
        request,
        "reports/outcomes.html",
        {
            "form": form,
            "rows": rows,
            "chart": chart,
            "chart_instrument": chart_instrument,
            "instruments": [scales.get(c) for c in instruments],
        },
    )


def _most_common_instrument(rows):
    counts = {}
    for row in rows:
        for code, (_, n) in row.mean_change.items():
            counts[code] = counts.get(code, 0) + n
    return max(counts, key=counts.get) if counts else None
