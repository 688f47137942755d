"""Sending the patient's copy: by e-mail, as a link (made, e-mailed, revoked), and the one page
open without a login, the link itself.

The link page is exempt from the login requirement and reads nothing but its token: it never
touches the session, sets no cookie and links to no other page, so a link opens its own
patient's copy and nothing else. An unknown token is a 404, an expired or revoked one a 410,
both plain pages naming no patient.
"""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic.net import client_ip
from patients.views import get_patient
from plans import sending
from plans.models import Plan, ReportDelivery, ReportLinkOpening

FIELD = "send_token"
_VALID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SEND = ["plans.view_report", "plans.send_report"]


def _plan_of(request, patient):
    """The plan named in the form, only under its own patient (another's is a 404)."""
    plan_pk = request.POST.get("plan", "")
    if not plan_pk:
        return None
    if not plan_pk.isdigit():
        raise Http404("No such plan.")
    return get_object_or_404(Plan, pk=int(plan_pk), patient=patient)


def _report_url(patient, plan):
    if plan is not None:
        return reverse("plan_report", args=[patient.pk, plan.pk]) + "?copy=patient"
    return reverse("patient_report", args=[patient.pk]) + "?copy=patient"


def _form_token(request):
    sent = request.POST.get(FIELD, "")
    return sent if _VALID.fullmatch(sent) else None


@require_POST
@permission_required(SEND, raise_exception=True)
def report_send(request, pk):
    """E-mail the PDF, make a link to copy, or e-mail a link ("how": email, link, email_link)."""
    patient = get_patient(pk)
    plan = _plan_of(request, patient)
    back = _report_url(patient, plan)
    how = request.POST.get("how", "")
    token = _form_token(request)
    if how not in ("email", "link", "email_link"):
        messages.error(request, "Choose how to send the report.")
        return redirect(back)
    if how in ("email", "email_link") and not patient.email.strip():
        messages.error(
            request,
            f"Nothing was sent: {patient.full_name} has no e-mail address on file. "
            "Add one to the patient's details, or make a link to hand over instead.",
        )
        return redirect(back)
    try:
        if how == "email":
            delivery = sending.email_report(
                patient=patient, plan=plan, user=request.user, form_token=token, request=request
            )
            messages.success(request, f"The patient copy was e-mailed to {delivery.to_address}.")
            return redirect(back)
        delivery, link_token = sending.make_link(
            patient=patient,
            plan=plan,
            user=request.user,
            form_token=token,
            email_to=patient.email.strip() if how == "email_link" else None,
            link_url=lambda t: request.build_absolute_uri(reverse("patient_link", args=[t])),
        )
    except sending.AlreadySent as repeat:
        messages.info(
            request,
            f"This was already sent ({repeat.delivery.get_how_display()}, "
            f"{timezone.localtime(repeat.delivery.sent_at):%d %b %Y %H:%M}); "
            "nothing more was sent.",
        )
        return redirect(back)
    except OSError as error:  # the mail server refused or could not be reached
        messages.error(request, f"The e-mail could not be sent ({error}); nothing was recorded.")
        return redirect(back)
    if how == "email_link":
        messages.success(
            request, f"A link to the patient copy was e-mailed to {delivery.to_address}."
        )
        return redirect(back)
    url = request.build_absolute_uri(reverse("patient_link", args=[link_token]))
    # Shown once, in this response: the database keeps only the token's hash.
    response = render(
        request,
        "reports/link_made.html",
        {"patient": patient, "plan": plan, "delivery": delivery, "url": url, "back": back},
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@permission_required(SEND, raise_exception=True)
def report_link_revoke(request, pk):
    delivery = get_object_or_404(
        ReportDelivery.objects.select_related("patient", "plan"), pk=pk, how=ReportDelivery.How.LINK
    )
    sending.revoke_link(delivery=delivery, user=request.user)
    messages.success(request, "The link was revoked: it no longer opens the report.")
    return redirect(_report_url(delivery.patient, delivery.plan))


@login_not_required
@require_GET
@never_cache
def patient_link(request, token):
    """The patient's copy as a PDF, for the holder of a live link; every opening is logged."""
    delivery = sending.find_link(token)
    if delivery is None:
        return _gone(request, 404)
    if not delivery.is_open_at(timezone.now()):
        return _gone(request, 410)
    ReportLinkOpening.objects.create(
        delivery=delivery,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
    )
    filename, pdf = sending_pdf(delivery)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def sending_pdf(delivery):
    from plans.report_views import patient_copy_pdf

    return patient_copy_pdf(delivery.patient, delivery.plan)


def _gone(request, status):
    response = render(request, "reports/link_gone.html", {"status": status}, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
