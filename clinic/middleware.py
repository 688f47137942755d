"""Project middleware."""

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
