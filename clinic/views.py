"""The signed-in person's own account page: who they are, and their calendar feed."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.auth_views import needs_second_factor
from clinic.models import CalendarFeed
from clinic.roles import CLINICIAN


def account(request):
    user = request.user
    feed = CalendarFeed.objects.filter(user=user).first()
    feed_url = (
        request.build_absolute_uri(reverse("calendar_feed", args=[feed.token])) if feed else ""
    )
    return render(
        request,
        "clinic/account.html",
        {
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "can_have_feed": user.has_role(CLINICIAN),
            "feed": feed,
            "feed_url": feed_url,
            # issue 11.7: the person's authenticator app, if set up
            "authenticator": TOTPDevice.objects.filter(user=user, confirmed=True).first(),
            "needs_authenticator": needs_second_factor(user),
        },
    )


@require_POST
def calendar_feed_change(request, action):
    """Turn the feed on, give it a new secret link (the old one stops working), or turn it off."""
    user = request.user
    if action not in ("on", "renew", "off"):
        raise Http404("No such action.")
    if not user.has_role(CLINICIAN):
        raise PermissionDenied("Only clinicians have a calendar feed.")
    if action == "on":
        CalendarFeed.objects.get_or_create(user=user)
        messages.success(request, "Your calendar feed is on: add the link below to your calendar.")
    elif action == "renew":
        feed, created = CalendarFeed.objects.get_or_create(user=user)
        if not created:
            feed.regenerate()
        messages.success(request, "New secret link made: the old one no longer works.")
    else:
        CalendarFeed.objects.filter(user=user).delete()
        messages.success(request, "Your calendar feed is off: its link no longer works.")
    return redirect("account")
