"""Where a request came from, for the access log and the login lockout alike."""

import ipaddress

from django.conf import settings


def client_ip(request):
    """The peer address, or with TRUSTED_PROXY_COUNT proxies in front, the address the
    outermost of them saw (each proxy appends to X-Forwarded-For; entries further left are
    the client's word and may be forged). Anything unusable falls back to the peer."""
    peer = _valid(request.META.get("REMOTE_ADDR", ""))
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return _valid(forwarded[-proxies]) or peer
    return peer


def _valid(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
