from django.urls import path

from plans import export_views, report_views, views
from plans.views import diary as diary_views
from plans.views import live as live_views
from plans.views import sending as sending_views

urlpatterns = [
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path(
        "patients/<int:pk>/sites/<int:site_pk>/assess/",
        views.assessment_add,
        name="assessment_add",
    ),
    path("patients/<int:pk>/plans/new/", views.plan_create, name="plan_create"),
    path(
        "patients/<int:pk>/plans/new/preview/",
        views.plan_builder_preview,
        name="plan_builder_preview",
    ),
    path("plans/<int:pk>/save-template/", views.plan_save_template, name="plan_save_template"),
    path("plans/<int:pk>/", views.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/activate/", views.plan_activate, name="plan_activate"),
    path("plans/<int:pk>/hold/", views.plan_status, {"action": "hold"}, name="plan_hold"),
    path("plans/<int:pk>/resume/", views.plan_status, {"action": "resume"}, name="plan_resume"),
    path("plans/<int:pk>/cancel/", views.plan_status, {"action": "cancel"}, name="plan_cancel"),
    path("plans/<int:pk>/book/", views.session_book, name="session_book"),
    path("sessions/<int:pk>/", views.session_detail, name="session_detail"),
    path("sessions/<int:pk>/log/", views.session_log, name="session_log"),
    path("sessions/<int:pk>/findings/", live_views.live_findings, name="session_live_findings"),
    path("sessions/<int:pk>/move/", views.session_move, name="session_move"),
    path("sessions/<int:pk>/missed/", views.session_missed, name="session_missed"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("sessions/<int:pk>/amend/", views.session_amend, name="session_amend"),
    path("adverse-events/", views.adverse_event_list, name="adverse_event_list"),
    path(
        "adverse-events/<int:pk>/resolve/",
        views.adverse_event_resolve,
        name="adverse_event_resolve",
    ),
    path("photos/<int:pk>/", views.photo, name="photo"),
    path(
        "patients/<int:pk>/sites/<int:site_pk>/photos/compare/",
        views.photo_compare,
        name="photo_compare",
    ),
    path(
        "patients/<int:pk>/sites/<int:site_pk>/photos/report-pair/",
        views.photo_report_pair,
        name="photo_report_pair",
    ),
]

urlpatterns += [
    path("patients/<int:pk>/report/", report_views.patient_report, name="patient_report"),
    path(
        "patients/<int:pk>/report.pdf", report_views.patient_report_pdf, name="patient_report_pdf"
    ),
    path(
        "patients/<int:pk>/plans/<int:plan_pk>/report/",
        report_views.plan_report,
        name="plan_report",
    ),
    path(
        "patients/<int:pk>/plans/<int:plan_pk>/report.pdf",
        report_views.plan_report_pdf,
        name="plan_report_pdf",
    ),
    path(
        "patients/<int:pk>/plans/<int:plan_pk>/sessions.csv",
        report_views.plan_sessions_csv,
        name="plan_sessions_csv",
    ),
    path("reports/outcomes/", report_views.clinic_outcomes, name="clinic_outcomes"),
    path("sessions/<int:pk>/aftercare/", report_views.session_aftercare, name="session_aftercare"),
    path(
        "sessions/<int:pk>/aftercare.pdf",
        report_views.session_aftercare_pdf,
        name="session_aftercare_pdf",
    ),
]

# A patient's whole record: FHIR for a referral, the full record for a subject access request.
urlpatterns += [
    path("patients/<int:pk>/record.fhir.json", export_views.patient_fhir, name="patient_fhir"),
    path(
        "patients/<int:pk>/full-record.zip",
        export_views.patient_full_record,
        name="patient_full_record",
    ),
]

# The appointment book.
urlpatterns += [
    path("diary/", diary_views.diary_day, name="diary_day"),
    path("diary/week/", diary_views.diary_week, name="diary_week"),
    path("diary/book/", diary_views.appointment_new, name="appointment_new"),
    path("diary/free/", diary_views.free_slots, name="free_slots"),
    path("sessions/<int:pk>/status/", diary_views.session_status, name="session_status"),
]

# The patient's copy sent to the patient (issue 13.4). patient_link is the one page open
# without a login: its token is the credential and opens that copy only.
urlpatterns += [
    path("patients/<int:pk>/report/send/", sending_views.report_send, name="report_send"),
    path(
        "report-links/<int:pk>/revoke/", sending_views.report_link_revoke, name="report_link_revoke"
    ),
    path("my-report/<str:token>/", sending_views.patient_link, name="patient_link"),
]
