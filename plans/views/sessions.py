"""Sessions: moving, marking missed, logging a visit and the session record."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from plans import scales, services
from plans.forms import (
    AdverseEventFormSet,
    InstrumentForm,
    ParametersForm,
    RescheduleForm,
    SiteOutcomeForm,
)
from plans.models import Assessment, Session, SessionTreatment
from plans.views._common import (
    _blocked,
    _int,
    _overrides_from,
    back_to,
    finding_messages,
    findings_for,
    refusal_text,
    visit_sites,
)


def get_session(pk):
    return get_object_or_404(
        Session.objects.select_related("patient", "plan", "plan__clinician", "clinician"), pk=pk
    )


# --- moving and missing a session ----------------------------------------------------------


@permission_required("plans.change_session", raise_exception=True)
def session_move(request, pk):
    session = get_session(pk)
    if session.status != Session.Status.SCHEDULED:
        messages.error(request, "Only a scheduled session can be moved.")
        return redirect(back_to(session))
    local = timezone.localtime(session.scheduled_at)
    form = RescheduleForm(
        request.POST or None,
        initial={"date": local.date(), "time": local.time(), "version": session.version},
    )
    blocked = []
    if request.method == "POST" and form.is_valid():
        try:
            findings = services.session_reschedule(
                session=session,
                new_start=form.new_start(),
                user=request.user,
                shift_following=form.cleaned_data["shift_following"],
                overrides=_overrides_from(request.POST),
                expected_version=form.cleaned_data["version"],
            )
        except services.SafetyBlocked as exc:
            _blocked(request)
            blocked = findings_for(request.user, exc.findings)
        except services.StaleEdit as exc:
            form.add_error(None, str(exc))
        except PermissionDenied:
            messages.error(request, "Only a clinician can override a blocking safety rule.")
            blocked = []
        except services.BookingRefused as exc:
            form.add_error(None, refusal_text(exc))
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            finding_messages(request, findings)
            messages.success(request, "Session moved.")
            return redirect(back_to(session))
    return render(
        request,
        "plans/session_move.html",
        {
            "session": session,
            "patient": session.patient,
            "form": form,
            "blocked": blocked,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "findings": findings_for(request.user, services.session_findings(session)),
        },
    )


@require_POST
@permission_required("plans.change_session", raise_exception=True)
def session_missed(request, pk):
    session = get_session(pk)
    try:
        services.session_mark_missed(session=session, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Session marked as missed.")
    return redirect(back_to(session))


# --- logging a session ---------------------------------------------------------------------


def _previous_parameters(session, rows):
    """Each row's parameters from the last completed session of the same treatment."""
    previous = {}
    done = (
        SessionTreatment.objects.filter(
            session__patient=session.patient_id,
            session__status=Session.Status.COMPLETED,
            treatment__in=[row.treatment_id for row in rows],
            session__scheduled_at__lt=session.scheduled_at,
        )
        .order_by("treatment_id", "-session__scheduled_at")
        .values_list("treatment_id", "parameters")
    )
    for treatment_id, parameters in done:
        previous.setdefault(treatment_id, parameters)
    return {row.pk: previous.get(row.treatment_id, {}) for row in rows}


def _site_instruments(sites):
    """Per scar site, the instruments used for it so far (baseline first), else a default."""
    used = {}
    for site_id, code in (
        Assessment.objects.filter(scar_site__in=sites)
        .exclude(instrument__in=scales.PER_SESSION)
        .order_by("assessed_on", "pk")
        .values_list("scar_site_id", "instrument")
    ):
        codes = used.setdefault(site_id, [])
        if code not in codes:
            codes.append(code)
    result = {}
    for site in sites:
        default = (
            "vss" if any(not t.is_atrophic for t in site.scar_types.all()) else "gb_qualitative"
        )
        result[site.pk] = used.get(site.pk) or [default]
    return result


@permission_required("plans.change_sessiontreatment", raise_exception=True)
@permission_required("plans.add_assessment", raise_exception=True)
def session_log(request, pk):
    session = get_session(pk)
    if session.status not in Session.OPEN and request.method != "POST":
        messages.info(request, f"This session is {session.get_status_display().lower()}.")
        return redirect("session_detail", pk=session.pk)
    # A POST on a session someone else just logged falls through: the service refuses it
    # and the form comes back with everything this clinician typed.
    post = request.POST if request.method == "POST" else None
    files = request.FILES if request.method == "POST" else None
    rows = list(
        session.treatments.select_related("treatment", "course").prefetch_related(
            "treatment__parameters"
        )
    )
    previous = _previous_parameters(session, rows)
    parameter_forms = [
        ParametersForm(post, row=row, previous=previous[row.pk], prefix=f"t{row.pk}")
        for row in rows
    ]
    sites = list(visit_sites(session).prefetch_related("scar_types"))
    instruments = _site_instruments(sites)
    site_blocks = []
    for site in sites:
        site_blocks.append(
            {
                "site": site,
                "outcome": SiteOutcomeForm(post, files, prefix=f"s{site.pk}"),
                "instruments": [
                    InstrumentForm(
                        post,
                        instrument=scales.get(code),
                        optional=True,
                        prefix=f"s{site.pk}-{code}",
                    )
                    for code in instruments[site.pk]
                ],
            }
        )
    events = AdverseEventFormSet(post, prefix="ae", form_kwargs={"sites": visit_sites(session)})
    notes = post.get("notes", session.notes) if post else session.notes
    findings = services.session_findings(session)
    existing = set(session.overrides.values_list("rule", "treatment__code"))
    open_blocks = [
        c for c in findings if c.blocks and (c.finding.rule, c.treatment.code) not in existing
    ]
    lost_photos = []
    if post is not None:
        forms_ok = all(f.is_valid() for f in parameter_forms)
        forms_ok &= all(b["outcome"].is_valid() for b in site_blocks)
        forms_ok &= all(f.is_valid() for b in site_blocks for f in b["instruments"])
        forms_ok &= events.is_valid()
        if forms_ok:
            try:
                services.session_complete(
                    session=session,
                    user=request.user,
                    parameters={f.row.pk: f.values() for f in parameter_forms},
                    assessments=_assessments_from(site_blocks),
                    adverse_events=_events_from(events),
                    photos=_photos_from(site_blocks),
                    notes=notes,
                    overrides=_overrides_from(request.POST),
                    expected_version=_int(request.POST.get("version")),
                )
            except services.SafetyBlocked as exc:
                _blocked(request)
                open_blocks = exc.findings
            except services.StaleEdit as exc:
                messages.error(request, str(exc))
            except PermissionDenied:
                messages.error(request, "Only a clinician can override a blocking safety rule.")
            except ValidationError as exc:
                messages.error(request, "Not saved: " + " ".join(exc.messages))
            else:
                messages.success(request, f"Session logged for {session.patient.full_name}.")
                return redirect("patient_detail", pk=session.patient_id)
        # Browsers cannot refill a file input: name each photo that must be chosen again.
        lost_photos = [f.name for f in (files or {}).values()]
        for block in site_blocks:
            upload = (files or {}).get(block["outcome"].add_prefix("photo"))
            block["lost_photo"] = upload.name if upload else ""
    return render(
        request,
        "plans/session_log.html",
        {
            "session": session,
            "patient": session.patient,
            "rows": list(zip(rows, parameter_forms, strict=True)),
            "site_blocks": site_blocks,
            "events": events,
            "notes": notes,
            "findings": findings,
            "open_blocks": open_blocks,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "lost_photos": lost_photos,
            "version": session.version if post is None else request.POST.get("version"),
        },
    )


def _assessments_from(site_blocks):
    result = []
    for block in site_blocks:
        site = block["site"]
        for form in block["instruments"]:
            if not form.is_blank:
                result.append(services.AssessmentInput(site, form.instrument.code, form.items()))
        outcome = block["outcome"].cleaned_data
        for code, name in (
            ("gais_clinician", "improvement"),
            ("gais_patient", "improvement"),
            ("pain", "pain"),
        ):
            value = outcome.get(code)
            if value is not None:
                result.append(services.AssessmentInput(site, code, {name: value}))
    return result


def _events_from(formset):
    return [
        services.AdverseEventInput(
            kind=data["kind"],
            severity=data["severity"],
            scar_site=data.get("scar_site"),
            onset_on=data.get("onset_on"),
            resolved_on=data.get("resolved_on"),
            notes=data.get("notes", ""),
        )
        for data in (form.cleaned_data for form in formset.forms)
        if data and data.get("kind")
    ]


def _photos_from(site_blocks):
    return [
        services.PhotoInput(
            block["site"],
            block["outcome"].cleaned_data["photo"],
            block["outcome"].cleaned_data.get("photo_caption", ""),
        )
        for block in site_blocks
        if block["outcome"].cleaned_data.get("photo")
    ]


@permission_required("plans.view_session", raise_exception=True)
def session_detail(request, pk):
    session = get_session(pk)
    clinical = request.user.has_perm("plans.view_assessment")
    context = {
        "session": session,
        "patient": session.patient,
        "rows": session.treatments.select_related("treatment", "course"),
        "clinical": clinical,
    }
    if clinical:
        context.update(
            assessments=session.assessments.select_related("scar_site").order_by("scar_site"),
            adverse_events=session.adverse_events.select_related("scar_site"),
            overrides=session.overrides.select_related("overridden_by", "treatment"),
            photos=session.photos.select_related("scar_site"),
        )
    return render(request, "plans/session_detail.html", context)
