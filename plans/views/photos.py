"""Clinical photos, served only with consent in force; comparing two dates of one scar site."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from clinic.uploads import private_file_response, private_thumbnail_response
from patients.audit import record_access
from patients.models import RecordAccess, ScarSite
from patients.views import get_patient
from plans import scales, services
from plans.models import Assessment, ReportPhotoChoice, SessionPhoto
from plans.views._common import _int


@permission_required("plans.view_sessionphoto", raise_exception=True)
def photo(request, pk):
    """A clinical photo, only with clinical-photography consent in force on the day taken."""
    item = get_object_or_404(SessionPhoto.objects.select_related("session"), pk=pk)
    if not services.PhotoConsent(item.session.patient_id).allows(item.taken_on):
        return HttpResponseForbidden("No clinical photography consent on file for this photo.")
    record_access(request, item.session.patient_id, RecordAccess.What.PHOTO, item)
    if request.GET.get("size") == "thumb":  # beside the score entry on the log page
        return private_thumbnail_response(
            item.image, THUMBNAIL_SIDE, download_name=f"photo-{item.pk}"
        )
    return private_file_response(item.image, download_name=f"photo-{item.pk}", inline_images=True)


THUMBNAIL_SIDE = 240  # px on the long side: shown at 120 css px, sharp on a 2x tablet screen


def get_site(pk, site_pk):
    """The one lookup for a patient's scar site in a URL: another patient's site is a 404."""
    patient = get_patient(pk)
    site = get_object_or_404(ScarSite, pk=site_pk, patient=patient)
    site.patient = patient
    return site


def shown_photos(site):
    """The site's photos that may be shown: not withdrawn, consent in force on the day taken."""
    photo_consent = services.PhotoConsent(site.patient_id)
    return [
        p
        for p in SessionPhoto.objects.filter(scar_site=site, withdrawn_at=None).order_by(
            "taken_on", "pk"
        )
        if photo_consent.allows(p.taken_on)
    ]


def _scores(assessments, photo):
    """The site's scores of the photo's session, else per instrument the one nearest its date."""
    own = [a for a in assessments if photo.session_id and a.session_id == photo.session_id]
    if not own:
        nearest = {}
        for a in assessments:
            best = nearest.get(a.instrument)
            gap = abs((a.assessed_on - photo.taken_on).days)
            if best is None or gap < abs((best.assessed_on - photo.taken_on).days):
                nearest[a.instrument] = a
        own = sorted(nearest.values(), key=lambda a: (a.assessed_on, a.pk))
    return [(scales.get(a.instrument).name, a.total, a.assessed_on) for a in own]


def _day(value):
    """A date from the query string; None for anything that is not a real date (30 Feb)."""
    try:
        return parse_date(value or "")
    except ValueError:
        return None


def _pick(photos, view, day):
    """The photo of that view on that day (the last one if several were taken)."""
    matching = [p for p in photos if p.view == view and p.taken_on == day]
    return matching[-1] if matching else None


@permission_required("plans.view_sessionphoto", raise_exception=True)
def photo_compare(request, pk, site_pk):
    """Two dates of one scar site side by side (and as a slider), with the scores of each."""
    site = get_site(pk, site_pk)
    photos = shown_photos(site)
    present = {p.view for p in photos}
    views = [(value, label) for value, label in SessionPhoto.View.choices if value in present]
    view = request.GET.get("view")
    if view not in present:
        view = views[0][0] if views else SessionPhoto.View.FRONT
    days = sorted({p.taken_on for p in photos if p.view == view})
    # Only a listed date can be chosen: anything else in the query falls back to the default.
    before_day, after_day = _day(request.GET.get("before")), _day(request.GET.get("after"))
    before_day = before_day if before_day in days else (days[0] if days else None)
    after_day = after_day if after_day in days else (days[-1] if days else None)
    if before_day and after_day and after_day < before_day:
        before_day, after_day = after_day, before_day
    before = _pick(photos, view, before_day)
    after = _pick(photos, view, after_day) if after_day != before_day else None
    assessments = list(Assessment.objects.filter(scar_site=site).order_by("assessed_on", "pk"))
    pair = [(p, _scores(assessments, p)) for p in (before, after) if p is not None]
    choice = (
        ReportPhotoChoice.objects.filter(scar_site=site).select_related("before", "after").first()
    )
    by_day = {}
    for p in photos:
        by_day.setdefault(p.taken_on, []).append(p)
    return render(
        request,
        "plans/photo_compare.html",
        {
            "patient": site.patient,
            "site": site,
            "views": views,
            "view": view,
            "view_label": SessionPhoto.View(view).label,
            "days": days,
            "photo_days": sorted(by_day.items()),
            "before_day": before_day,
            "after_day": after_day,
            "pair": pair,
            "before": before,
            "after": after,
            "choice": choice,
            "choice_shown": choice is not None
            and {choice.before_id, choice.after_id} <= {p.pk for p in photos},
            "same_day": bool(days) and before_day == after_day,
        },
    )


def _refusal(site, photo_id, shown):
    """Why a photo cannot go in this site's report, in words; None when it can."""
    if photo_id in {p.pk for p in shown}:
        return None
    item = SessionPhoto.objects.filter(pk=photo_id, scar_site=site).first()
    if item is None:
        return "That photo is not a photo of this scar site."
    if item.withdrawn_at is not None:
        return f"The photo of {item.taken_on:%-d %b %Y} was withdrawn: it cannot go in the report."
    return (
        f"The photo of {item.taken_on:%-d %b %Y} was taken without clinical photography consent "
        "in force: it cannot be shown."
    )


@require_POST
@permission_required("plans.change_reportphotochoice", raise_exception=True)
def photo_report_pair(request, pk, site_pk):
    """Keep the compared pair as the site's before and after photos in the progress report."""
    site = get_site(pk, site_pk)
    back = reverse("photo_compare", args=[site.patient_id, site.pk])
    ids = [_int(request.POST.get("before")), _int(request.POST.get("after"))]
    shown = shown_photos(site)
    problems = [_refusal(site, i, shown) for i in ids]
    problem = next((p for p in problems if p), None)
    if problem is None:
        chosen = sorted((p for p in shown if p.pk in ids), key=lambda p: (p.taken_on, p.pk))
        if len(chosen) != 2 or chosen[0].taken_on == chosen[1].taken_on:
            problem = "Choose two photos taken on different dates."
        elif chosen[0].view != chosen[1].view:
            problem = "Choose two photos of the same view: only those compare fairly."
        else:
            before, after = chosen
    if problem:
        messages.error(request, f"Not saved: {problem}")
        return redirect(back)
    with transaction.atomic():
        choice = ReportPhotoChoice.objects.select_for_update().filter(
            scar_site=site
        ).first() or ReportPhotoChoice(scar_site=site)
        choice.before, choice.after = before, after
        choice.chosen_by, choice.chosen_at = request.user, timezone.now()
        try:
            choice.full_clean()
        except ValidationError as exc:
            messages.error(request, "Not saved: " + " ".join(exc.messages))
            return redirect(back)
        choice._history_user = request.user
        choice.save()
    messages.success(
        request,
        f"The report now shows {site} on {before.taken_on:%-d %b %Y} and "
        f"{after.taken_on:%-d %b %Y} ({before.get_view_display().lower()}).",
    )
    query = urlencode({"view": before.view, "before": before.taken_on, "after": after.taken_on})
    return redirect(f"{back}?{query}")
