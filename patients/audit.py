"""The access log's one way in: each view that shows a patient's record or files calls
`record_access` once, after its lookups and checks have let the request through."""

import ipaddress

from django.conf import settings

from patients.models import RecordAccess

_PATH_MAX = RecordAccess._meta.get_field("path").max_length


def record_access(request, patient, what, obj=None):
    """Append one row: this user opened `what` (and `obj`, if any) of `patient` (or its id)."""
    return RecordAccess.objects.create(
        user=request.user,
        patient_id=getattr(patient, "pk", patient),
        what=what,
        object_id=getattr(obj, "pk", obj),
        path=request.get_full_path()[:_PATH_MAX],
        ip=client_ip(request),
    )


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
