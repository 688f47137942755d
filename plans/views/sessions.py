"""Sessions: moving, marking missed, logging a visit and the session record."""

from dataclasses import dataclass, field

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clinic.validators import validate_clinic_date
from clinic.views_helpers import safe_next
from patients.forms import OUT_OF_DATE
from plans import scales, services
from plans.forms import (
    DATE,
    AdverseEventFormSet,
    InstrumentForm,
    ParametersForm,
    RescheduleForm,
    SiteOutcomeForm,
)
from plans.models import AdverseEvent, Assessment, Session, SessionPhoto, SessionTreatment
from plans.views._common import (
    _blocked,
    _int,
    _overrides_from,
    back_to,
    finding_messages,
    findings_for,
    input_problems,
    refusal_text,
    visit_sites,
)


def posted_version(request):
    """The record version the form was opened with; None when missing or not a number
    (the request is then refused with OUT_OF_DATE, never applied without the check)."""
    return _int(request.POST.get("version"))


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
    if posted_version(request) is None:
        messages.error(request, OUT_OF_DATE)
        return redirect(_next_or(request, back_to(session)))
    try:
        services.session_mark_missed(
            session=session, user=request.user, expected_version=posted_version(request)
        )
    except services.StaleEdit as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Session marked as missed.")
    return redirect(_next_or(request, back_to(session)))


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


def _default_instrument(site):
    """The instrument a site with no scores yet is scored with, from its scar types."""
    return "vss" if any(not t.is_atrophic for t in site.scar_types.all()) else "gb_qualitative"


def _site_instruments(sites):
    """Per scar site, the instruments used for it so far (baseline first), else a default."""
    used = {}
    for site_id, code in (
        Assessment.objects.filter(scar_site__in=sites)
        .exclude(instrument__in=scales.PER_SESSION)
        .order_by("assessed_on", "pk")
        .values_list("scar_site_id", "instrument")
    ):
        _add(used.setdefault(site_id, []), code)
    return {site.pk: used.get(site.pk) or [_default_instrument(site)] for site in sites}


@dataclass
class SiteHistory:
    """What the log page shows beside a site's score entry, per instrument code."""

    tracked: list  # what the plan tracks for the site, shown open
    others: list  # every other instrument, under "More scores" (used ones first)
    baseline: dict = field(default_factory=dict)  # code -> the site's first baseline score
    last: dict = field(default_factory=dict)  # code -> its latest score before this visit
    photo: dict | None = None  # the latest photo that may be shown (pk, taken_on, view)


def site_histories(session, sites, photo_consent=None):
    """Per scar site: the instruments the plan tracks, each one's baseline and last score,
    and the last photo that may be shown. Three queries however many sites (two when given
    the patient's `photo_consent`).

    Tracked: the instruments scored for the site in earlier sessions of this plan; before
    the plan's first scores, the site's baseline instruments; with neither, the default for
    its scar types. Per-session ratings (GAIS, pain) are not instruments here: they keep
    their own place on the page.
    """
    rows = (
        Assessment.objects.filter(scar_site__in=sites)
        .exclude(instrument__in=scales.PER_SESSION)
        .exclude(session_id=session.pk)
        .order_by("assessed_on", "pk")
        .values(
            "scar_site_id",
            "instrument",
            "session_id",
            "session__plan_id",
            "assessed_on",
            "total",
            "items",
        )
    )
    used, in_plan, at_baseline, baseline, last = {}, {}, {}, {}, {}
    for row in rows:
        site_id, code = row["scar_site_id"], row["instrument"]
        _add(used.setdefault(site_id, []), code)
        if row["session_id"] is None:
            _add(at_baseline.setdefault(site_id, []), code)
            baseline.setdefault(site_id, {}).setdefault(code, row)
        elif session.plan_id and row["session__plan_id"] == session.plan_id:
            _add(in_plan.setdefault(site_id, []), code)
        last.setdefault(site_id, {})[code] = row
    if photo_consent is None:
        photo_consent = services.PhotoConsent(session.patient_id)
    photos = _last_photos(session, sites, photo_consent)
    result = {}
    for site in sites:
        tracked = in_plan.get(site.pk) or at_baseline.get(site.pk) or [_default_instrument(site)]
        rest = [c for c in used.get(site.pk, []) if c not in tracked]
        rest += [
            c
            for c in scales.INSTRUMENTS
            if c not in tracked and c not in rest and c not in scales.PER_SESSION
        ]
        result[site.pk] = SiteHistory(
            tracked=tracked,
            others=rest,
            baseline=baseline.get(site.pk, {}),
            last=last.get(site.pk, {}),
            photo=photos.get(site.pk),
        )
    return result


def _add(codes, code):
    if code not in codes:
        codes.append(code)


def _last_photos(session, sites, photo_consent):
    """Per site, its latest photo that may be shown (not withdrawn, photography consent in
    force on the day taken, as plans.views.photos serves them); one query."""
    if not photo_consent:
        return {}
    found = {}
    for photo in (
        SessionPhoto.objects.filter(scar_site__in=sites, withdrawn_at=None)
        .exclude(session_id=session.pk)
        .order_by("-taken_on", "-pk")
        .values("pk", "scar_site_id", "taken_on", "view")
    ):
        if photo["scar_site_id"] in found:
            continue
        if photo_consent.allows(photo["taken_on"]):
            photo["view_label"] = SessionPhoto.View(photo["view"]).label
            found[photo["scar_site_id"]] = photo
    return found


def _instrument_form(post, site, code, history, *, more=False):
    """One instrument's entry for a site on the log page, with its baseline and last score."""
    form = InstrumentForm(
        post,
        instrument=scales.get(code),
        optional=True,
        segmented=True,
        prefix=f"s{site.pk}-{code}",
    )
    form.baseline = history.baseline.get(code)
    last = history.last.get(code)
    form.last = None if last is form.baseline else last
    form.last_items = (last or {}).get("items") or {}
    form.more = more
    return form


def error_summary(rows, site_blocks, events):
    """Every field error on the log form as (message, id of the field), in page order."""
    found = []

    def add(form, context, fallback):
        for name, errors in form.errors.items():
            target = fallback if name == NON_FIELD_ERRORS else form[name].auto_id
            for error in errors:
                found.append((f"{context}: {error}", target))

    for row, form in rows:
        add(form, row.treatment.name, f"treatment-{row.pk}")
    for block in site_blocks:
        site = block["site"]
        for form in block["instruments"]:
            add(form, f"{site}, {form.instrument.name}", f"{form.prefix}-scores")
        add(block["outcome"], str(site), f"outcome-{site.pk}")
    for number, form in enumerate(events.forms, start=1):
        add(form, f"Adverse event {number}", f"ae-row-{number - 1}")
    return found


@permission_required("plans.change_sessiontreatment", raise_exception=True)
@permission_required("plans.add_assessment", raise_exception=True)
def session_log(request, pk):
    session = get_session(pk)
    if session.status not in Session.OPEN and request.method != "POST":
        messages.info(request, f"This session is {session.get_status_display().lower()}.")
        return redirect("session_detail", pk=session.pk)
    today = timezone.localdate()
    early = session.scheduled_on > today
    # A session booked for a later day is logged only after saying it is done today.
    performed_today = early and (request.POST or request.GET).get("performed_today") == "1"
    skipped = services.sessions_skipped_before(session)
    if early and not performed_today:
        return render(
            request,
            "plans/session_log_early.html",
            {
                "session": session,
                "patient": session.patient,
                "today": today,
                "skipped_message": services.skipped_message(skipped) if skipped else "",
            },
        )
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
    photo_consent = services.PhotoConsent(session.patient_id)
    histories = site_histories(session, sites, photo_consent)
    site_blocks = []
    for site in sites:
        history = histories[site.pk]
        tracked = [_instrument_form(post, site, code, history) for code in history.tracked]
        more = [_instrument_form(post, site, code, history, more=True) for code in history.others]
        site_blocks.append(
            {
                "site": site,
                "outcome": SiteOutcomeForm(
                    post, files, prefix=f"s{site.pk}", photo_slots=len(SessionPhoto.View)
                ),
                "instruments": tracked + more,
                "tracked": tracked,
                "more": more,
                # Open when something in it was typed, so a re-shown form hides nothing.
                "more_open": any(not form.is_blank for form in more),
                "photo": history.photo,
            }
        )
    events = AdverseEventFormSet(post, prefix="ae", form_kwargs={"sites": visit_sites(session)})
    notes = post.get("notes", session.notes) if post else session.notes
    on = today if early else session.scheduled_on
    photos_allowed = photo_consent.allows(on)
    if not photos_allowed:
        for block in site_blocks:
            block["outcome"].drop_photos()
    findings = services.session_findings(session, on=on)
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
        forms_ok &= not input_problems(request, texts={"Notes": notes}, formsets=[events])
        if forms_ok and posted_version(request) is None:
            messages.error(request, OUT_OF_DATE)
            forms_ok = False
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
                    expected_version=posted_version(request),
                    performed_today=performed_today,
                )
            except services.SafetyBlocked as exc:
                _blocked(request)
                open_blocks = exc.findings
            except services.StaleEdit as exc:
                messages.error(request, str(exc))
            except PermissionDenied:
                messages.error(request, "Only a clinician can override a blocking safety rule.")
            except services.BookingRefused as exc:
                messages.error(request, refusal_text(exc))
            except ValidationError as exc:
                messages.error(request, "Not saved: " + " ".join(exc.messages))
            else:
                messages.success(request, f"Session logged for {session.patient.full_name}.")
                unscored = _unscored_sites(site_blocks)
                if unscored:
                    messages.warning(
                        request,
                        f"No outcome score for {', '.join(str(s) for s in unscored)}: the "
                        "report shows a gap for this session. Amend the session to add one.",
                    )
                if early:
                    return redirect(_replace_rest_of_course(request, session))
                return redirect("patient_detail", pk=session.patient_id)
        # Browsers cannot refill a file input: name each photo that must be chosen again.
        lost_photos = [f.name for f in (files or {}).values()]
    rows_and_forms = list(zip(rows, parameter_forms, strict=True))
    # What could not be saved goes into the error summary; the rest is shown as usual. (Read
    # here, the messages are shown by this response and not carried to the next page.)
    shown = list(messages.get_messages(request))
    return render(
        request,
        "plans/session_log.html",
        {
            "session": session,
            "patient": session.patient,
            "rows": rows_and_forms,
            "site_blocks": site_blocks,
            "events": events,
            "notes": notes,
            "findings": findings,
            "open_blocks": open_blocks,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
            "lost_photos": lost_photos,
            "version": session.version if post is None else request.POST.get("version"),
            "early": early,
            "today": today,
            "skipped": skipped,
            "skipped_message": services.skipped_message(skipped) if skipped else "",
            "photos_allowed": photos_allowed,
            "unscored": _unscored_sites(site_blocks) if post is not None else [],
            "error_summary": error_summary(rows_and_forms, site_blocks, events)
            if post is not None
            else [],
            "bound": post is not None,
            "error_messages": [m for m in shown if m.level == messages.ERROR],
            "other_messages": [m for m in shown if m.level != messages.ERROR],
        },
    )


def _unscored_sites(site_blocks):
    """Targeted sites for which the form holds no score of any kind."""
    unscored = []
    for block in site_blocks:
        outcome = getattr(block["outcome"], "cleaned_data", None) or {}
        scored = any(
            outcome.get(code) is not None for code in ("gais_clinician", "gais_patient", "pain")
        ) or any(
            form.is_bound and form.is_valid() and not form.is_blank for form in block["instruments"]
        )
        if not scored:
            unscored.append(block["site"])
    return unscored


def _replace_rest_of_course(request, session):
    """After logging a session early: offer to re-place the rest of its course."""
    courses = session.treatments.exclude(course=None).values("course")
    following = (
        Session.objects.filter(
            plan=session.plan_id,
            status=Session.Status.SCHEDULED,
            treatments__course__in=courses,
        )
        .order_by("scheduled_at")
        .first()
    )
    booked = timezone.localtime(session.booked_for)
    if following is None:
        messages.info(
            request, f"Recorded as done today; it had been booked for {booked:%-d %b %Y}."
        )
        return reverse("session_detail", args=[session.pk])
    messages.info(
        request,
        f"Recorded as done today; it had been booked for {booked:%-d %b %Y}. The rest of the "
        f"course keeps its old dates: move the next session ({following.scheduled_on:%-d %b %Y})"
        " and tick 'Move the later sessions' to re-place them all from today's treatment.",
    )
    return reverse("session_move", args=[following.pk])


@require_POST
@permission_required("plans.change_session", raise_exception=True)
def session_cancel(request, pk):
    session = get_session(pk)
    if posted_version(request) is None:
        messages.error(request, OUT_OF_DATE)
        return redirect(_next_or(request, back_to(session)))
    try:
        services.session_cancel(
            session=session, user=request.user, expected_version=posted_version(request)
        )
    except services.StaleEdit as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Session cancelled.")
    return redirect(_next_or(request, back_to(session)))


def _next_or(request, fallback):
    """A same-site `next` from the form, else the fallback."""
    return safe_next(request, fallback)


def _assessments_from(site_blocks):
    result = []
    for block in site_blocks:
        site = block["site"]
        for form in block["instruments"]:
            if not form.is_blank:
                result.append(services.AssessmentInput(site, form.instrument.code, form.items()))
        outcome = block["outcome"].cleaned_data
        for code, name in OUTCOME_ITEMS:
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
        services.PhotoInput(block["site"], image, caption, view)
        for block in site_blocks
        for image, caption, view in block["outcome"].photos()
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
        assessments = list(session.assessments.select_related("scar_site").order_by("scar_site"))
        context.update(
            assessments=assessments,
            adverse_events=session.adverse_events.select_related("scar_site"),
            overrides=session.overrides.select_related("overridden_by", "treatment"),
            photos=session.photos.filter(withdrawn_at=None).select_related("scar_site"),
            amendments=session.amendments.select_related("amended_by"),
            can_amend=services.can_amend(request.user, session),
            unscored=_sites_without_scores(session, assessments),
        )
    return render(request, "plans/session_detail.html", context)


# --- amending a logged session -------------------------------------------------------------


class AmendReasonForm(forms.Form):
    reason = forms.CharField(
        label="Why is this session amended?",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": "Write why the session is amended (reason is required)."},
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class AdverseEventEditForm(forms.Form):
    severity = forms.ChoiceField(choices=AdverseEvent.Severity.choices)
    resolved_on = forms.DateField(required=False, validators=[validate_clinic_date], widget=DATE)
    notes = forms.CharField(required=False, max_length=2000)


@permission_required("plans.add_amendment", raise_exception=True)
def session_amend(request, pk):
    session = get_session(pk)
    if not services.can_amend(request.user, session):
        raise PermissionDenied(
            "Only the clinician who logged this session, or a manager, can amend it."
        )
    post = request.POST if request.method == "POST" else None
    files = request.FILES if request.method == "POST" else None
    rows = list(
        session.treatments.select_related("treatment", "course").prefetch_related(
            "treatment__parameters"
        )
    )
    parameter_forms = [ParametersForm(post, row=row, prefix=f"t{row.pk}") for row in rows]
    sites = list(visit_sites(session).prefetch_related("scar_types"))
    scored = {}
    for assessment in session.assessments.all():
        scored[(assessment.scar_site_id, assessment.instrument)] = assessment
    instruments = _site_instruments(sites)
    photos_allowed = services.photography_consent_on(session.patient, session.scheduled_on)
    site_blocks = []
    for site in sites:
        codes = list(instruments[site.pk])
        codes += [
            c
            for (s, c) in scored
            if s == site.pk and c not in codes and c not in scales.PER_SESSION
        ]
        outcome_initial = {
            code: scored[(site.pk, code)].items.get(name)
            for code, name in OUTCOME_ITEMS
            if (site.pk, code) in scored
        }
        outcome = SiteOutcomeForm(post, files, prefix=f"s{site.pk}", initial=outcome_initial)
        if not photos_allowed:
            del outcome.fields["photo"], outcome.fields["photo_caption"]
        site_blocks.append(
            {
                "site": site,
                "outcome": outcome,
                "instruments": [
                    InstrumentForm(
                        post,
                        instrument=scales.get(code),
                        optional=True,
                        segmented=True,
                        prefix=f"s{site.pk}-{code}",
                        initial=scored[(site.pk, code)].items
                        if (site.pk, code) in scored
                        else None,
                    )
                    for code in codes
                ],
            }
        )
    existing_events = list(session.adverse_events.select_related("scar_site"))
    event_forms = [
        (
            event,
            AdverseEventEditForm(
                post,
                prefix=f"ae{event.pk}",
                initial={
                    "severity": event.severity,
                    "resolved_on": event.resolved_on,
                    "notes": event.notes,
                },
            ),
        )
        for event in existing_events
    ]
    new_events = AdverseEventFormSet(post, prefix="ae", form_kwargs={"sites": visit_sites(session)})
    photos = list(session.photos.filter(withdrawn_at=None).select_related("scar_site"))
    reason_form = AmendReasonForm(post, initial={"version": session.version})
    notes = post.get("notes", session.notes) if post else session.notes
    if post is not None:
        forms_ok = reason_form.is_valid()
        forms_ok &= all(f.is_valid() for f in parameter_forms)
        forms_ok &= all(b["outcome"].is_valid() for b in site_blocks)
        forms_ok &= all(f.is_valid() for b in site_blocks for f in b["instruments"])
        forms_ok &= all(f.is_valid() for _, f in event_forms)
        forms_ok &= new_events.is_valid()
        forms_ok &= not input_problems(request, texts={"Notes": notes}, formsets=[new_events])
        if forms_ok:
            try:
                services.session_amend(
                    session=session,
                    user=request.user,
                    reason=reason_form.cleaned_data["reason"],
                    parameters={f.row.pk: f.values() for f in parameter_forms},
                    assessments=_assessments_from(site_blocks),
                    notes=notes,
                    withdraw_photos=[_int(v) for v in post.getlist("withdraw_photo")],
                    photos=_photos_from(site_blocks),
                    adverse_events=_events_from(new_events),
                    event_changes=[
                        services.AdverseEventChange(
                            event,
                            form.cleaned_data["severity"],
                            form.cleaned_data["resolved_on"],
                            form.cleaned_data["notes"],
                        )
                        for event, form in event_forms
                    ],
                    expected_version=reason_form.cleaned_data["version"],
                )
            except services.StaleEdit as exc:
                messages.error(request, str(exc))
            except ValidationError as exc:
                messages.error(request, "Not saved: " + " ".join(exc.messages))
            else:
                messages.success(
                    request, "Session amended; the values before are kept in its history."
                )
                return redirect("session_detail", pk=session.pk)
    return render(
        request,
        "plans/session_amend.html",
        {
            "session": session,
            "patient": session.patient,
            "rows": list(zip(rows, parameter_forms, strict=True)),
            "site_blocks": site_blocks,
            "event_forms": event_forms,
            "events": new_events,
            "photos": photos,
            "photos_allowed": photos_allowed,
            "reason_form": reason_form,
            "notes": notes,
        },
    )


OUTCOME_ITEMS = (
    ("gais_clinician", "improvement"),
    ("gais_patient", "improvement"),
    ("pain", "pain"),
)


def _sites_without_scores(session, assessments):
    """Targeted sites a completed session recorded no score for (a gap in the report)."""
    if session.status != Session.Status.COMPLETED:
        return []
    scored = {a.scar_site_id for a in assessments}
    return (
        [site for site in visit_sites(session) if site.pk not in scored] if session.plan_id else []
    )
