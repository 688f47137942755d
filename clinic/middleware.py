"""Project middleware."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

# --- security headers (issue 11.8) ------------------------------------------------------------

# Browser features no page of Cicatrix uses: switched off for this site and anything it embeds,
# so a script that got in anyway cannot turn on a camera or ask where the clinic is.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "ambient-light-sensor",
        "autoplay",
        "bluetooth",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class PermissionsPolicyMiddleware:
    """Send the Permissions-Policy header on every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class NoStoreForStaffMiddleware:
    """Nothing a logged-in person is sent may be kept by the browser or a proxy: patient pages
    must not come back from the back button or a shared cache after logging out.

    Placed after AuthenticationMiddleware, so WhiteNoise's static files (answered earlier)
    keep their long cache. A response to a request that logged someone in or out counts too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        logged_in = request.user.is_authenticated
        response = self.get_response(request)
        if logged_in or request.user.is_authenticated:
            add_never_cache_headers(response)
        return response


# --- end security headers ---------------------------------------------------------------------


# --- accounts and logins (issue 11.7) ---------------------------------------------------------

LAST_ACTIVITY_KEY = "last_activity"
# The last-activity time is written at most this often, so most pages cost no session write;
# an idle logout may therefore come up to this much early.
ACTIVITY_GRANULARITY_SECONDS = 20


def start_the_idle_clock(sender, request, user, **kwargs):
    """user_logged_in receiver (connected in ClinicConfig.ready): idle time counts from login."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_ACTIVITY_KEY] = int(time.time())


class IdleTimeoutMiddleware:
    """Log a person out after IDLE_TIMEOUT_MINUTES without opening a page.

    The page's warning script asks how long is left (session_status) without that counting as
    activity; its "Stay logged in" button (?stay=1) does count.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        minutes = settings.IDLE_TIMEOUT_MINUTES
        timeout = minutes * 60
        now = int(time.time())
        last = request.session.get(LAST_ACTIVITY_KEY, now)
        idle = now - last
        if idle > timeout:
            logout(request)
            messages.info(request, f"You were logged out after {minutes} minutes without activity.")
            return redirect_to_login(request.get_full_path())
        status_only = request.path == reverse("session_status") and "stay" not in request.GET
        if not status_only and (
            LAST_ACTIVITY_KEY not in request.session
            or idle >= ACTIVITY_GRANULARITY_SECONDS
            or "stay" in request.GET
        ):
            request.session[LAST_ACTIVITY_KEY] = now
            idle = 0
        request.idle_timeout_seconds = timeout
        request.idle_seconds_left = max(timeout - max(idle, 0), 0)
        return self.get_response(request)


class SecondFactorMiddleware:
    """Clinical and admin accounts reach no page before their authenticator code is entered.

    Without a confirmed authenticator they are sent to set one up; with one, to the code page.
    Pages open without a login (login, calendar feeds) and the code pages themselves pass.
    """

    PASS = {"otp_verify", "otp_setup", "logout"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        from clinic.auth_views import needs_second_factor

        if not getattr(view_func, "login_required", True):
            return None
        match = request.resolver_match
        if match is not None and match.view_name in self.PASS:
            return None
        user = request.user
        if not needs_second_factor(user) or user.is_verified():
            return None
        from django_otp import user_has_device

        page = "otp_verify" if user_has_device(user) else "otp_setup"
        return redirect_to_login(request.get_full_path(), reverse(page))


# --- end accounts and logins ------------------------------------------------------------------
