from django.urls import path

from patients import import_views, views

urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("new/", views.patient_create, name="patient_create"),
    # Importing patients from a CSV file (issue 14.3): upload, map, dry run, import.
    path("import/", import_views.import_upload, name="patient_import"),
    path("import/template.csv", import_views.import_template, name="patient_import_template"),
    path("import/<int:pk>/", import_views.import_map, name="patient_import_map"),
    path("import/<int:pk>/check/", import_views.import_check, name="patient_import_check"),
    path("import/<int:pk>/run/", import_views.import_run, name="patient_import_run"),
    path(
        "import/<int:pk>/refused.csv",
        import_views.import_refused_csv,
        name="patient_import_refused_csv",
    ),
    path("<int:pk>/edit/", views.patient_edit, name="patient_edit"),
    path("<int:pk>/archive/", views.patient_archive, name="patient_archive"),
    path("<int:pk>/flags/new/", views.flag_add, name="flag_add"),
    path("<int:pk>/flags/<int:flag_pk>/", views.flag_edit, name="flag_edit"),
    path("<int:pk>/acne/", views.acne_add, name="acne_add"),
    path("<int:pk>/acne/quick/", views.acne_quick, name="acne_quick"),
    path("<int:pk>/consents/new/", views.consent_add, name="consent_add"),
    path("<int:pk>/consents/<int:consent_pk>/", views.consent_edit, name="consent_edit"),
    path("<int:pk>/consents/<int:consent_pk>/file/", views.consent_file, name="consent_file"),
    path("<int:pk>/sites/new/", views.scar_site_add, name="scar_site_add"),
    path("<int:pk>/sites/<int:site_pk>/", views.scar_site_edit, name="scar_site_edit"),
]
