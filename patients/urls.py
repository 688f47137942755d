from django.urls import path

from patients import views

urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("new/", views.patient_create, name="patient_create"),
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
