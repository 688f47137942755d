from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from plans import views as plan_views

admin.site.site_header = "Cicatrix admin"
admin.site.site_title = "Cicatrix admin"
admin.site.index_title = "Clinic back office"
admin.site.site_url = "/"

urlpatterns = [
    path("", plan_views.today, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("patients/", include("patients.urls")),
    path("", include("plans.urls")),
]
