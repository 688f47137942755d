"""The patient header's consent line: treatment and photography consent as of today."""

from dataclasses import dataclass

from django import template
from django.utils import timezone

from patients.models import Consent

register = template.Library()


@dataclass(frozen=True)
class ConsentState:
    kind: str  # the consent kind's label
    in_force: bool
    text: str


def consent_state(consents, kind, day) -> ConsentState:
    """In force, expired, withdrawn or missing: the latest consent of `kind` says which."""
    label = Consent.Kind(kind).label
    mine = sorted((c for c in consents if c.kind == kind), key=lambda c: c.signed_on)
    current = [c for c in mine if c.in_force_on(day)]
    if current:
        latest = current[-1]
        until = f", valid to {latest.expires_on:%-d %b %Y}" if latest.expires_on else ""
        return ConsentState(label, True, f"signed {latest.signed_on:%-d %b %Y}{until}")
    if not mine:
        return ConsentState(label, False, "none on file")
    latest = mine[-1]
    if latest.signed_on > day:
        text = f"signed with a date of {latest.signed_on:%-d %b %Y}, not yet in force"
    elif latest.withdrawn_on and latest.withdrawn_on <= day:
        text = f"withdrawn {latest.withdrawn_on:%-d %b %Y}"
    else:
        text = f"expired {latest.expires_on:%-d %b %Y}"
    return ConsentState(label, False, text)


@register.simple_tag
def consent_status(patient, day=None):
    """Treatment and clinical photography consent states of a patient (one query)."""
    day = day or timezone.localdate()
    consents = list(
        Consent.objects.filter(
            patient=patient,
            kind__in=[Consent.Kind.TREATMENT, Consent.Kind.CLINICAL_PHOTOGRAPHY],
        )
    )
    return [
        consent_state(consents, Consent.Kind.TREATMENT, day),
        consent_state(consents, Consent.Kind.CLINICAL_PHOTOGRAPHY, day),
    ]
