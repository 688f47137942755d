"""Live safety findings for the session log page: the agent changes, the blocks follow.

The log page works without JavaScript (findings are checked again on Save); this endpoint only
lets static/js/live-findings.js show them before Save. It saves nothing.
"""

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.template import engines
from django.utils import timezone
from django.views.decorators.http import require_POST

from plans import parameters as parameter_rules
from plans import services
from plans.views.sessions import get_session

# The same pieces, in the same order, as the findings block of plans/session_log.html.
FINDINGS = engines["django"].from_string(
    '{% for checked in findings %}{% if not checked.blocks %}{% include "includes/finding.html" %}'
    "{% endif %}{% endfor %}"
    '{% include "includes/override_fields.html" with blocks=open_blocks %}'
)


def _typed_parameters(post, rows):
    """{row pk: parameters} from the log form's fields "t<row pk>-<code>"; a value that does
    not validate is left out (as if not yet typed), a row with no fields keeps its stored ones."""
    typed = {}
    for row in rows:
        prefix = f"t{row.pk}-"
        if not any(key.startswith(prefix) for key in post):
            continue
        values = {}
        for definition in row.treatment.parameters.all():
            raw = post.get(prefix + definition.code)
            if raw is None:
                continue
            try:
                value = parameter_rules.clean_value(definition, raw)
            except ValidationError:
                continue
            if value is not None:
                values[definition.code] = value
        typed[row.pk] = values
    return typed


@require_POST
@permission_required("plans.change_sessiontreatment", raise_exception=True)
def live_findings(request, pk):
    """The findings fragment of the log page for the parameters typed so far."""
    session = get_session(pk)
    # As on the log page: a session logged before its booked day is checked on today,
    # the day it is really done.
    on = min(session.scheduled_on, timezone.localdate())
    rows = list(
        session.treatments.select_related("treatment").prefetch_related("treatment__parameters")
    )
    findings = services.session_findings(
        session, parameters_by_row=_typed_parameters(request.POST, rows), on=on
    )
    existing = set(session.overrides.values_list("rule", "treatment__code"))
    open_blocks = [
        c for c in findings if c.blocks and (c.finding.rule, c.treatment.code) not in existing
    ]
    html = FINDINGS.render(
        {
            "findings": findings,
            "open_blocks": open_blocks,
            "can_override": request.user.has_perm(services.OVERRIDE_PERMISSION),
        },
        request,
    )
    return HttpResponse(html)
