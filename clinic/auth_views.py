"""Logging in safely: the lockout page, the authenticator code pages, the idle-time status.

Clinicians, managers and superusers confirm each login with a code from an authenticator app
(TOTP, django-otp); front desk logs in with the password alone. See README "Accounts and
logins".
"""

from base64 import b32encode
from urllib.parse import urlencode

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp.plugins.otp_totp.models import TOTPDevice


def is_demo_login(user):
    """A published demo login of `seed_demo`, which skips the code on a developer's machine."""
    from clinic.management.commands.seed_demo import DEMO_USERS

    return settings.DEBUG and user.get_username() in {row[0] for row in DEMO_USERS}


# Whoever may read medical records (clinicians, managers) confirms a login with a code.
CLINICAL_ACCESS = "patients.view_medicalflag"


def needs_second_factor(user):
    """Clinical and admin accounts confirm a login with an authenticator code."""
    if not user.is_authenticated or is_demo_login(user):
        return False
    # A permission, not the role names: every page's navigation loads the permissions anyway,
    # so this costs no query, and a permission given outside the roles is covered too.
    return user.is_superuser or user.is_staff or user.has_perm(CLINICAL_ACCESS)


def lockout(request, original_response=None, credentials=None):
    """Axes' answer to a locked username: the site's page saying when to try again."""
    from axes.helpers import get_cool_off

    until = timezone.localtime(timezone.now() + get_cool_off(request))
    return render(
        request,
        "registration/lockout.html",
        {"until": until, "minutes": int(get_cool_off(request).total_seconds() // 60)},
        status=429,
    )


class CodeForm(forms.Form):
    code = forms.RegexField(
        label="6-digit code",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the 6 digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _next(request):
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse(settings.LOGIN_REDIRECT_URL)


def _confirm(request, device, form):
    """Check the code against the device (django-otp slows down repeated wrong codes)."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        form.add_error(
            "code", "Too many wrong codes: wait a few seconds, then enter the code shown now."
        )
        return False
    verified = django_otp.verify_token(
        request.user, device.persistent_id, form.cleaned_data["code"]
    )
    if verified is None:
        form.add_error("code", "That code is not right. Enter the code your app shows now.")
        return False
    return True


def otp_verify(request):
    """Second step of a login: the code from the person's authenticator app."""
    if request.user.is_verified():
        return redirect(_next(request))
    device = TOTPDevice.objects.filter(user=request.user, confirmed=True).order_by("pk").first()
    if device is None:
        return redirect(f"{reverse('otp_setup')}?{urlencode({'next': _next(request)})}")
    form = CodeForm(request.POST or None)
    if form.is_valid() and _confirm(request, device, form):
        django_otp.login(request, device)
        return redirect(_next(request))
    return render(request, "registration/otp_verify.html", {"form": form, "next": _next(request)})


def otp_setup(request):
    """First login of a clinical account: link an authenticator app, then prove it works."""
    if request.user.is_verified():
        return redirect(_next(request))
    if TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
        # Replacing an authenticator takes a manager (admin), never the password alone.
        return redirect(f"{reverse('otp_verify')}?{urlencode({'next': _next(request)})}")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(
            user=request.user, name="Authenticator app", confirmed=False
        )
    form = CodeForm(request.POST or None)
    if form.is_valid() and _confirm(request, device, form):
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        django_otp.login(request, device)
        messages.success(request, "Your authenticator app is set up.")
        return redirect(_next(request))
    secret = b32encode(device.bin_key).decode()
    uri = device.config_url
    # segno draws the QR code as SVG paths from the URI; no stored text reaches the markup.
    qr_svg = mark_safe(  # nosec B308 B703
        segno.make(uri, error="m").svg_inline(scale=4, light="#fff", title="QR code")
    )
    return render(
        request,
        "registration/otp_setup.html",
        {
            "form": form,
            "next": _next(request),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "otpauth_uri": uri,
            "qr_svg": qr_svg,
        },
    )


def session_status(request):
    """Seconds until the idle logout, for the warning script; only ?stay=1 counts as activity."""
    return JsonResponse({"seconds_left": request.idle_seconds_left})
