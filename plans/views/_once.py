"""Once-only booking forms: a booking form submitted twice (a double click, a resent POST,
a second tab of the same form) makes one appointment.

Each booking form carries a random token in a hidden field. The booking runs in one
transaction that first takes a lock on the token (PostgreSQL: an advisory lock; SQLite's
IMMEDIATE transactions already let one writer in at a time), then looks for a session
already booked with it. The token is kept on the new session's creation row in its history
("Booked from form <token>"), so it needs no table of its own and lives as long as the
session's history: a resubmission days later still finds the booking.
"""

import re
import secrets

from django.contrib import messages
from django.db import connection, transaction
from django.urls import reverse
from django.utils.html import format_html

from plans.models import Session

FIELD = "booking_token"
_REASON = "Booked from form "
_VALID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_token():
    return secrets.token_urlsafe(16)


def token_for(request):
    """The form's token when it is posted back (well-formed), else a new one for the page."""
    sent = request.POST.get(FIELD, "") if request.method == "POST" else ""
    return sent if _VALID.fullmatch(sent) else new_token()


def book_once(request, book):
    """Run `book()` unless this form's token has already booked a session.

    Returns (session, True) for a new booking, (earlier session, False) for a repeat. A POST
    without a token (not from our form) books as before.
    """
    token = request.POST.get(FIELD, "")
    if not _VALID.fullmatch(token):
        return book(), True
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_REASON + token])
        earlier = (
            Session.history.filter(history_type="+", history_change_reason=_REASON + token)
            .values_list("id", flat=True)
            .first()
        )
        if earlier is not None:
            session = Session.objects.filter(pk=earlier).first()
            if session is not None:
                return session, False
        session = book()
        session.history.filter(history_type="+").update(history_change_reason=_REASON + token)
        return session, True


def say_already_booked(request, session):
    """The second submit is told, with a link, rather than shown an error."""
    messages.info(
        request,
        format_html(
            'This booking was already made: <a href="{}">{}</a>.',
            reverse("session_detail", args=[session.pk]),
            str(session),
        ),
    )
