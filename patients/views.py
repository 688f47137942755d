"""Staff pages for patients: search, registration, demographics, flags, consents, scar sites.

The patient's overview page, which shows plans and scores too, lives in plans.views.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clinic.uploads import private_file_response
from clinic.views_helpers import paginate, safe_next
from patients.audit import record_access
from patients.forms import (
    AcneForm,
    ConsentForm,
    FirstRecordsForm,
    MedicalFlagForm,
    PatientForm,
    PatientSearchForm,
    ScarSiteForm,
)
from patients.models import (
    NAME_ORDER,
    SEARCH_ORDER,
    AcneActivity,
    Consent,
    MedicalFlag,
    Patient,
    RecordAccess,
    ScarSite,
)


def get_patient(pk):
    """The one lookup for a patient in a URL: unknown ids are a 404."""
    return get_object_or_404(Patient, pk=pk)


def _overview(patient):
    return redirect("patient_detail", pk=patient.pk)


def _save_with_history(form, user, **attrs):
    obj = form.save(commit=False)
    for name, value in attrs.items():
        setattr(obj, name, value)
    obj._history_user = user
    obj.save()
    form.save_m2m()
    return obj


@permission_required("patients.view_patient", raise_exception=True)
def patient_list(request):
    form = PatientSearchForm(request.GET or None)
    patients = Patient.objects.all()
    query = ""
    if form.is_valid():
        query = form.cleaned_data["q"]
        patients = patients.search(query)
        if not form.cleaned_data["archived"]:
            patients = patients.active()
    else:
        patients = patients.active()
    # Ordered by the expressions the search compares (UPPER(name)): a search is answered from
    # the functional indexes (patients migration 0007), a browse from the list-order index.
    page = paginate(request, patients.order_by(*(SEARCH_ORDER if query else NAME_ORDER)))
    return render(
        request,
        "patients/patient_list.html",
        {"form": form, "page": page, "query": query},
    )


@permission_required("patients.add_patient", raise_exception=True)
def patient_create(request):
    if request.method == "GET" and "registered" in request.GET:
        return _next_steps(request, request.GET["registered"])
    clinical = request.user.has_perm("patients.change_medicalflag")
    form = PatientForm(request.POST or None, clinical=clinical)
    first = FirstRecordsForm(
        request.POST or None,
        prefix="first",
        consent=request.user.has_perm("patients.add_consent"),
        scar_site=request.user.has_perm("patients.add_scarsite"),
    )
    valid = form.is_valid()
    valid = first.is_valid() and valid  # both checked: every mistake is shown at once
    if valid:
        try:
            with transaction.atomic():
                patient = _save_with_history(form, request.user)
                made = first.save(patient, request.user)
        except IntegrityError:
            # Two desks offered the same next number: the unique constraint let one through.
            number = form.cleaned_data["record_number"]
            if not Patient.objects.filter(record_number__iexact=number).exists():
                raise
            form.record_number_lost(number)
        else:
            also = [
                text
                for key, text in (
                    ("consent", "treatment consent signed today"),
                    ("site", f"scar site {made.get('site')}"),
                )
                if key in made
            ]
            messages.success(
                request,
                f"Registered {patient.full_name} ({patient.record_number})"
                + (f", with {' and '.join(also)}." if also else "."),
            )
            return redirect(f"{reverse('patient_create')}?registered={patient.pk}")
    return render(
        request, "patients/patient_form.html", {"form": form, "first": first, "patient": None}
    )


def _next_steps(request, pk):
    """After registering: what to record next for this patient, as far as the role may."""
    if not pk.isdigit():
        raise Http404("No such patient.")
    patient = get_patient(pk)
    has_consent = patient.consents.filter(kind=Consent.Kind.TREATMENT).exists()
    sites = list(patient.scar_sites.active())
    steps = [
        step
        for step in (
            (
                "consent_add",
                "patients.add_consent",
                "Record the treatment consent",
                "Signed treatment consent is needed before any in-office treatment; "
                "photography consent is recorded separately.",
            ),
            (
                "flag_add",
                "patients.add_medicalflag",
                "Add medical flags",
                "Isotretinoin, pregnancy or breastfeeding, allergies, anticoagulants, keloid "
                "or cold-sore history: the safety rules read them on each session's date.",
            ),
            (
                "scar_site_add",
                "patients.add_scarsite",
                "Add scar sites",
                "Each area with its scar types, so that its scores and photos line up over time.",
            ),
        )
        if request.user.has_perm(step[1]) and not (step[0] == "consent_add" and has_consent)
    ]
    # A scar site recorded at registration: its baseline scores are the next thing to do.
    baselines = (
        [
            {"url": reverse("assessment_add", args=[patient.pk, site.pk]), "site": site}
            for site in sites
        ]
        if request.user.has_perm("plans.add_assessment")
        else []
    )
    return render(
        request,
        "patients/registered.html",
        {
            "patient": patient,
            "steps": [
                {"url": reverse(name, args=[patient.pk]), "title": title, "why": why}
                for name, _, title, why in steps
            ],
            "clinical": request.user.has_perm("patients.add_medicalflag"),
            "has_consent": has_consent,
            "baselines": baselines,
        },
    )


@permission_required("patients.change_patient", raise_exception=True)
def patient_edit(request, pk):
    patient = get_patient(pk)
    clinical = request.user.has_perm("patients.change_medicalflag")
    form = PatientForm(request.POST or None, instance=patient, clinical=clinical)
    if form.is_valid():
        _save_with_history(form, request.user)
        messages.success(request, "Patient details saved.")
        return _overview(patient)
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient})


@require_POST
@permission_required("patients.archive_patient", raise_exception=True)
def patient_archive(request, pk):
    patient = get_patient(pk)
    patient._history_user = request.user
    patient.archive()
    messages.success(request, f"{patient.full_name} is archived; the record is kept.")
    return _overview(patient)


def _patient_form(request, patient, form, *, title, saved, **attrs):
    """A small form about one patient: save with who did it, then back to the overview."""
    if form.is_valid():
        obj = _save_with_history(form, request.user, **attrs)
        messages.success(request, saved.format(obj=obj))
        return _overview(patient)
    return render(
        request,
        "patients/simple_form.html",
        {"patient": patient, "form": form, "title": title},
    )


@permission_required("patients.add_medicalflag", raise_exception=True)
def flag_add(request, pk):
    patient = get_patient(pk)
    form = MedicalFlagForm(request.POST or None, instance=MedicalFlag(patient=patient))
    return _patient_form(
        request,
        patient,
        form,
        title="Add a medical flag",
        saved="Recorded: {obj}.",
        recorded_by=request.user,
    )


@permission_required("patients.change_medicalflag", raise_exception=True)
def flag_edit(request, pk, flag_pk):
    patient = get_patient(pk)
    flag = get_object_or_404(MedicalFlag, pk=flag_pk, patient=patient)
    form = MedicalFlagForm(request.POST or None, instance=flag)
    return _patient_form(
        request, patient, form, title="Change a medical flag", saved="Updated: {obj}."
    )


@require_POST
@permission_required("patients.add_acneactivity", raise_exception=True)
def acne_quick(request, pk):
    """One click: 'active breakout today' or 'breakout cleared' as of today."""
    patient = get_patient(pk)
    state = request.POST.get("state")
    levels = {"active": AcneActivity.Level.MODERATE, "cleared": AcneActivity.Level.NONE}
    if state not in levels:
        messages.error(request, "Choose 'active' or 'cleared' for the breakout.")
        return _overview(patient)
    record = AcneActivity(
        patient=patient,
        level=levels[state],
        recorded_on=timezone.localdate(),
        recorded_by=request.user,
        note="Active breakout" if state == "active" else "Breakout cleared",
    )
    record.full_clean()
    record._history_user = request.user
    record.save()
    messages.success(request, f"Recorded for today: {record.note.lower()}.")
    return redirect(safe_next(request, f"/patients/{patient.pk}/"))


@permission_required("patients.add_acneactivity", raise_exception=True)
def acne_add(request, pk):
    patient = get_patient(pk)
    form = AcneForm(request.POST or None, instance=AcneActivity(patient=patient))
    return _patient_form(
        request,
        patient,
        form,
        title="Record acne activity",
        saved="Acne activity recorded.",
        recorded_by=request.user,
    )


@permission_required("patients.add_consent", raise_exception=True)
def consent_add(request, pk):
    patient = get_patient(pk)
    form = ConsentForm(
        request.POST or None, request.FILES or None, instance=Consent(patient=patient)
    )
    return _patient_form(
        request, patient, form, title="Record a consent", saved="Consent recorded."
    )


@permission_required("patients.change_consent", raise_exception=True)
def consent_edit(request, pk, consent_pk):
    patient = get_patient(pk)
    consent = get_object_or_404(Consent, pk=consent_pk, patient=patient)
    form = ConsentForm(request.POST or None, request.FILES or None, instance=consent)
    return _patient_form(request, patient, form, title="Change a consent", saved="Consent updated.")


@permission_required("patients.view_consent", raise_exception=True)
def consent_file(request, pk, consent_pk):
    """The scanned consent, only through this login- and role-checked view."""
    patient = get_patient(pk)
    consent = get_object_or_404(Consent, pk=consent_pk, patient=patient)
    if not consent.scanned_file:
        raise Http404("No scanned file.")
    record_access(request, patient, RecordAccess.What.CONSENT, consent)
    return private_file_response(
        consent.scanned_file, download_name=f"consent-{patient.record_number}-{consent.pk}"
    )


@permission_required("patients.add_scarsite", raise_exception=True)
def scar_site_add(request, pk):
    patient = get_patient(pk)
    form = ScarSiteForm(request.POST or None, patient=patient)
    return _patient_form(
        request, patient, form, title="Add a scar site", saved="Scar site added: {obj}."
    )


@permission_required("patients.change_scarsite", raise_exception=True)
def scar_site_edit(request, pk, site_pk):
    patient = get_patient(pk)
    site = get_object_or_404(ScarSite, pk=site_pk, patient=patient)
    form = ScarSiteForm(request.POST or None, instance=site, patient=patient)
    return _patient_form(
        request, patient, form, title="Change a scar site", saved="Scar site updated: {obj}."
    )
