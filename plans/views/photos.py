"""Clinical photos, served only with consent in force."""

from django.contrib.auth.decorators import permission_required
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404

from clinic.uploads import private_file_response
from patients.audit import record_access
from patients.models import Consent, RecordAccess
from plans.models import SessionPhoto


@permission_required("plans.view_sessionphoto", raise_exception=True)
def photo(request, pk):
    """A clinical photo, only with clinical-photography consent in force on the day taken."""
    item = get_object_or_404(SessionPhoto.objects.select_related("session"), pk=pk)
    consents = Consent.objects.filter(
        patient=item.session.patient_id, kind=Consent.Kind.CLINICAL_PHOTOGRAPHY
    )
    if not any(c.in_force_on(item.taken_on) for c in consents):
        return HttpResponseForbidden("No clinical photography consent on file for this photo.")
    record_access(request, item.session.patient_id, RecordAccess.What.PHOTO, item)
    return private_file_response(item.image, download_name=f"photo-{item.pk}", inline_images=True)
