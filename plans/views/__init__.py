"""Staff pages: Today, the patient overview, plans, booking, session logging, adverse events.

One module per page family; the URLconfs import the views from here. Writes go through
plans.services; views translate its exceptions into messages and forms.
"""

from plans.views.adverse_events import adverse_event_list, adverse_event_resolve
from plans.views.patients import assessment_add, patient_detail
from plans.views.photos import photo, photo_compare, photo_report_pair
from plans.views.plans import (
    plan_activate,
    plan_builder_preview,
    plan_create,
    plan_detail,
    plan_save_template,
    plan_status,
    session_book,
)
from plans.views.sessions import (
    session_amend,
    session_cancel,
    session_detail,
    session_log,
    session_missed,
    session_move,
)
from plans.views.today import today

__all__ = [
    "adverse_event_list",
    "adverse_event_resolve",
    "assessment_add",
    "patient_detail",
    "photo",
    "photo_compare",
    "photo_report_pair",
    "plan_activate",
    "plan_builder_preview",
    "plan_save_template",
    "plan_create",
    "plan_detail",
    "plan_status",
    "session_book",
    "session_detail",
    "session_log",
    "session_cancel",
    "session_amend",
    "session_missed",
    "session_move",
    "today",
]
