"""The patient's copy sent to the patient: by e-mail with the PDF attached, or as a link that
opens it without a login for PATIENT_LINK_DAYS days.

A link's token is 32 random bytes; the database keeps only its SHA-256, so a copy of the
database (a backup, the admin) opens no report. Each sending is a ReportDelivery row, written
in the same transaction as the e-mail is handed to the mail server: a failed send leaves no
row, and the form's once-only token (unique on the row) turns a double click into one e-mail.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from clinic.models import Letterhead
from plans.models import ReportDelivery


class NoAddress(Exception):
    """The patient has no e-mail address on file."""


class AlreadySent(Exception):
    """This form was submitted before: its delivery is `self.delivery`."""

    def __init__(self, delivery):
        super().__init__("already sent")
        self.delivery = delivery


def new_link_token():
    return secrets.token_urlsafe(32)


def token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def letterhead_for(patient, plan):
    """The letterhead of the plan's site, else the clinic's."""
    return Letterhead.for_location(plan.location_id if plan is not None else None)


def _claim(form_token, **fields):
    """Insert the delivery row; a second insert with the same form token is AlreadySent."""
    try:
        with transaction.atomic():
            return ReportDelivery.objects.create(form_token=form_token or None, **fields)
    except IntegrityError:
        earlier = ReportDelivery.objects.filter(form_token=form_token).first()
        if form_token and earlier is not None:
            raise AlreadySent(earlier) from None
        raise


def email_report(*, patient, plan, user, form_token=None, request=None):
    """E-mail the patient's copy as a PDF to the address on file; returns the delivery."""
    from plans.report_views import patient_copy_pdf

    address = (patient.email or "").strip()
    if not address:
        raise NoAddress()
    letterhead = letterhead_for(patient, plan)
    filename, pdf = patient_copy_pdf(patient, plan, request=request)
    with transaction.atomic():
        delivery = _claim(
            form_token,
            patient=patient,
            plan=plan,
            how=ReportDelivery.How.EMAIL,
            to_address=address,
            sent_by=user,
        )
        context = {"patient": patient, "letterhead": letterhead, "sender": user}
        message = EmailMessage(
            subject=_subject("Your progress report", letterhead),
            body=render_to_string("email/report.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            reply_to=[letterhead.email] if letterhead.email else None,
        )
        message.attach(filename, pdf, "application/pdf")
        # Inside the transaction: if the mail server refuses, the row goes too.
        message.send(fail_silently=False)
    return delivery


def make_link(*, patient, plan, user, form_token=None, email_to=None, link_url):
    """A new patient link: (delivery, token). `link_url(token)` gives its full address.

    With `email_to`, the link is e-mailed to the patient (no attachment) in the same step.
    """
    token = new_link_token()
    now = timezone.now()
    with transaction.atomic():
        delivery = _claim(
            form_token,
            patient=patient,
            plan=plan,
            how=ReportDelivery.How.LINK,
            to_address=email_to or "",
            sent_by=user,
            sent_at=now,
            token_hash=token_digest(token),
            expires_at=now + timedelta(days=settings.PATIENT_LINK_DAYS),
        )
        if email_to:
            letterhead = letterhead_for(patient, plan)
            context = {
                "patient": patient,
                "letterhead": letterhead,
                "sender": user,
                "url": link_url(token),
                "expires_at": delivery.expires_at,
            }
            EmailMessage(
                subject=_subject("Your progress report", letterhead),
                body=render_to_string("email/report_link.txt", context),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[email_to],
                reply_to=[letterhead.email] if letterhead.email else None,
            ).send(fail_silently=False)
    return delivery, token


def find_link(token):
    """The link delivery of this token (open or not), or None for a token never made."""
    if not token or len(token) > 100:
        return None
    return (
        ReportDelivery.objects.select_related("patient", "plan")
        .filter(how=ReportDelivery.How.LINK, token_hash=token_digest(token))
        .first()
    )


def revoke_link(*, delivery, user):
    """Stop a link from opening; revoking twice keeps the first time and person."""
    ReportDelivery.objects.filter(pk=delivery.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=user
    )
    delivery.refresh_from_db()
    return delivery


def _subject(what, letterhead):
    return f"{what} from {letterhead.clinic_name}" if letterhead.clinic_name else what
