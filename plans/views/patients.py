"""The patient overview and recording a scar assessment from it."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, Min, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from patients.audit import record_access
from patients.models import RecordAccess, ScarSite
from patients.views import get_patient
from plans import scales, services
from plans.forms import BaselineChoiceForm, InstrumentForm
from plans.models import Session
from plans.views._common import _treatment_rows


@permission_required("patients.view_patient", raise_exception=True)
def patient_detail(request, pk):
    patient = get_patient(pk)
    user = request.user
    clinical = user.has_perm("plans.view_assessment")
    sites = list(patient.scar_sites.active().prefetch_related("scar_types"))
    plans = list(
        patient.plans.select_related("clinician")
        .annotate(
            done=Count("sessions", filter=Q(sessions__status=Session.Status.COMPLETED)),
            planned=Count("sessions", filter=~Q(sessions__status=Session.Status.CANCELLED)),
            next_at=Min("sessions__scheduled_at", filter=Q(sessions__status="scheduled")),
        )
        .order_by("-start_date", "-pk")
    )
    latest = {}
    if clinical:
        # Only the latest per site and instrument is shown: skip the item details.
        for assessment in patient.assessments.defer("items", "notes").order_by("assessed_on", "pk"):
            latest[(assessment.scar_site_id, assessment.instrument)] = assessment
    for site in sites:
        site.latest_scores = [
            a
            for (site_id, _), a in sorted(latest.items(), key=lambda kv: kv[0][1])
            if site_id == site.pk
        ]
    upcoming = (
        patient.sessions.filter(status=Session.Status.SCHEDULED)
        .select_related("plan")
        .prefetch_related(_treatment_rows())
        .order_by("scheduled_at")[:10]
    )
    context = {
        "patient": patient,
        "sites": sites,
        "plans": plans,
        "upcoming": upcoming,
        "consents": patient.consents.all(),
        "clinical": clinical,
        "today": timezone.localdate(),
    }
    if clinical:
        context.update(
            flags=patient.flags.all(),
            acne=patient.acne_records.all()[:5],
            acne_now=patient.acne_level_on(timezone.localdate()),
            adverse_events=patient.adverse_events.unresolved().select_related("scar_site"),
            instruments=scales.INSTRUMENTS.values(),
        )
    record_access(request, patient, RecordAccess.What.RECORD)
    return render(request, "plans/patient_detail.html", context)


# --- assessments ---------------------------------------------------------------------------


@permission_required("plans.add_assessment", raise_exception=True)
def assessment_add(request, pk, site_pk):
    patient = get_patient(pk)
    site = get_object_or_404(ScarSite, pk=site_pk, patient=patient)
    code = request.POST.get("instrument") or request.GET.get("instrument") or "vss"
    if code not in scales.INSTRUMENTS:
        code = "vss"
    instrument = scales.get(code)
    choice = BaselineChoiceForm(request.POST or None, initial={"instrument": code})
    items = InstrumentForm(request.POST or None, instrument=instrument, prefix="items")
    if request.method == "POST" and choice.is_valid() and items.is_valid():
        assessment = services.assessment_record(
            patient=patient,
            scar_site=site,
            instrument=code,
            items=items.items(),
            user=request.user,
            assessed_on=choice.cleaned_data["assessed_on"],
            notes=choice.cleaned_data["notes"],
        )
        messages.success(
            request,
            f"{instrument.name} for {site}: total {assessment.total} "
            f"(range {instrument.min_total}-{instrument.max_total}).",
        )
        if request.POST.get("then") == "plan" and request.user.has_perm("plans.add_plan"):
            return redirect("plan_create", pk=patient.pk)
        return redirect("patient_detail", pk=patient.pk)
    return render(
        request,
        "plans/assessment_form.html",
        {
            "patient": patient,
            "site": site,
            "instrument": instrument,
            "instruments": scales.INSTRUMENTS.values(),
            "choice": choice,
            "items": items,
        },
    )
