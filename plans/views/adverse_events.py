"""Adverse events: the unresolved list and marking one resolved."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clinic.views_helpers import paginate, safe_next
from plans.forms import ResolveForm
from plans.models import AdverseEvent


@permission_required("plans.view_adverseevent", raise_exception=True)
def adverse_event_list(request):
    events = (
        AdverseEvent.objects.unresolved()
        .select_related("patient", "scar_site", "session")
        .order_by("onset_on", "pk")
    )
    return render(
        request,
        "plans/adverse_event_list.html",
        {"page": paginate(request, events), "form": ResolveForm()},
    )


@require_POST
@permission_required("plans.change_adverseevent", raise_exception=True)
def adverse_event_resolve(request, pk):
    event = get_object_or_404(AdverseEvent.objects.select_related("patient"), pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Resolved on: give a date (YYYY-MM-DD).")
    elif form.cleaned_data["resolved_on"] < event.onset_on:
        messages.error(
            request, f"Resolved on must be on or after the onset ({event.onset_on:%d %b %Y})."
        )
    else:
        event.resolved_on = form.cleaned_data["resolved_on"]
        event.full_clean()
        event._history_user = request.user
        event.save()
        messages.success(request, f"{event} for {event.patient.full_name} marked resolved.")
    return redirect(safe_next(request, reverse("adverse_event_list")))
