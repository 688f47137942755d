"""The report page's sending block: earlier deliveries and a fresh once-only form token."""

from django import template

from plans.models import ReportDelivery
from plans.views._once import new_token

register = template.Library()

SHOWN = 20


@register.simple_tag
def report_deliveries(patient):
    """The patient's latest deliveries, newest first, with who sent and revoked them and how
    often each link was opened (one query)."""
    from django.db.models import Count, Max

    return list(
        ReportDelivery.objects.filter(patient=patient)
        .select_related("sent_by", "revoked_by", "plan")
        .annotate(opened=Count("openings"), last_opened=Max("openings__at"))
        .order_by("-sent_at", "-id")[:SHOWN]
    )


@register.simple_tag
def send_form_token():
    return new_token()
