from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinic import auth_views as login_views
from clinic import views as clinic_views
from clinic.admin_tools import harden_site
from plans import views as plan_views
from plans.views.feeds import calendar_feed

# --- hostile input (issue 11.4): every admin, third-party ones too, gets the guards ---
harden_site(admin.site)
# --- end hostile input ---
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
    path("account/", clinic_views.account, name="account"),
    path(
        "account/calendar/<str:action>/",
        clinic_views.calendar_feed_change,
        name="calendar_feed_change",
    ),
    path("feeds/<str:token>.ics", calendar_feed, name="calendar_feed"),
    # --- accounts and logins (issue 11.7): the authenticator code and the idle clock ---
    path("account/code/", login_views.otp_verify, name="otp_verify"),
    path("account/authenticator/", login_views.otp_setup, name="otp_setup"),
    path("account/session/", login_views.session_status, name="session_status"),
    # --- end accounts and logins ---
    path("admin/", admin.site.urls),
    path("patients/", include("patients.urls")),
    path("", include("plans.urls")),
]
