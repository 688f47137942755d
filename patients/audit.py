"""The access log's one way in: each view that shows a patient's record or files calls
`record_access` once, after its lookups and checks have let the request through."""

from clinic.net import client_ip
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
