"""Cicatrix settings: every value that differs between machines comes from the environment.

See README.md "Production set-up" for the variables. Bad values raise ImproperlyConfigured
naming the variable, so a misconfigured server fails at start-up, not on a patient's page.
"""

from pathlib import Path

from clinic.env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_secret_key,
    env_str,
    env_timezone,
    env_uri,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

if DEBUG:
    # Local use only; a production server must set its own key (see the check below).
    SECRET_KEY = env_str("SECRET_KEY", "django-insecure-local-development-key-not-for-production")
else:
    # Too short or too plain a key stops start-up, naming SECRET_KEY (issue 11.11).
    SECRET_KEY = env_secret_key("SECRET_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "clinic",
    "patients",
    "plans",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "clinic.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "clinic.wsgi.application"

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, minimum=0)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Writers take the lock when their transaction starts, so a booking's check and write
    # happen together and a second writer waits (up to 20 s) instead of failing "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Short queries: JIT compiling them costs more than it saves (README "Production notes").
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = " ".join(filter(None, [options.get("options"), "-c jit=off"]))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "clinic.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- accounts and logins (issue 11.7): throttling, second factor, idle timeout ---
# See README "Accounts and logins".
from datetime import timedelta  # noqa: E402

INSTALLED_APPS += ["axes", "django_otp", "django_otp.plugins.otp_totp"]
MIDDLEWARE += [
    # request.user.is_verified(): the session was confirmed with an authenticator code.
    "django_otp.middleware.OTPMiddleware",
    "clinic.middleware.IdleTimeoutMiddleware",
    "clinic.middleware.SecondFactorMiddleware",
    # Axes turns a refused login into the lockout page; its docs want it last.
    "axes.middleware.AxesMiddleware",
]
# Axes checks every login (the staff page and /admin/login/) before the password does.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A username is locked from one address after LOGIN_FAILURE_LIMIT wrong passwords in a row,
# for LOGIN_LOCKOUT_MINUTES (each further try restarts the wait); a manager can unlock it.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "clinic.auth_views.lockout"
AXES_CLIENT_IP_CALLABLE = "clinic.net.client_ip"
# TOTP authenticator apps (Google Authenticator, Microsoft Authenticator, FreeOTP ...).
OTP_TOTP_ISSUER = "Cicatrix"
# The admin never shows a device's secret key or QR code, not even to a superuser.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# A login lasts until the browser closes, SESSION_COOKIE_AGE at most, and ends after
# IDLE_TIMEOUT_MINUTES without a page being opened (a warning shows 2 minutes before).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
IDLE_TIMEOUT_MINUTES = env_int("IDLE_TIMEOUT_MINUTES", 15, minimum=1)
# --- end accounts and logins ---

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_timezone("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Bootstrap is vendored under static/vendor/ (release, version and checksums in its README).
STATICFILES_DIRS = [BASE_DIR / "static"]
# Patient photos and scanned consents. Never under STATIC_ROOT and never served by URL
# pattern: the app hands them out through views that check login and role.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media-is-not-served/"
FILE_UPLOAD_PERMISSIONS = 0o640
# Upload limits, enforced while the request is read (clinic.uploads.CappedUploadHandler keeps
# nothing past the largest) and per field by clinic.uploads.UploadCheck.
CONSENT_MAX_BYTES = env_int("CONSENT_MAX_MB", 20, minimum=1) * 1_000_000
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_MB", 15, minimum=1) * 1_000_000
# A CSV file of patients to import (patients/importing.py): 10 MB is about 50,000 rows.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_MB", 10, minimum=1) * 1_000_000
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 20_000, minimum=1)
UPLOAD_MAX_BYTES = max(CONSENT_MAX_BYTES, PHOTO_MAX_BYTES, IMPORT_MAX_BYTES)
# A 50-megapixel camera is the largest a clinic uses; more is a decompression bomb.
UPLOAD_MAX_IMAGE_PIXELS = 50_000_000
PHOTO_MAX_SIDE = 4096  # photos are re-encoded no larger than this on their long side
REPORT_PHOTO_SIDE = 1200  # reports and PDFs embed a copy no larger than this
FILE_UPLOAD_HANDLERS = [
    "clinic.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# How far ahead the appointment book looks for the next free slots it offers.
BOOKING_SEARCH_DAYS = 42

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# HTTPS hardening: on by default whenever DEBUG is off. HTTPS=0 is for a server that only
# listens on a private network behind nothing; SECURE_PROXY_SSL_HEADER=1 for one behind a
# TLS-terminating proxy that sets X-Forwarded-Proto.
HTTPS = env_bool("HTTPS", not DEBUG)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading puts the domain in the browsers' built-in HTTPS-only list, for months and
    # for every subdomain: the clinic's own decision (issue 11.11), so it is opt-in.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# --- access log (issue 11.9): whose address is recorded ---
# How many proxies in front of the app append to X-Forwarded-For. 0 (the default): the header
# is ignored and the peer address (REMOTE_ADDR) is logged, since any client can forge it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
# --- end access log ---
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- e-mail: reports sent to patients and reminders (issue 13.4, 13.5) ---
# Development prints mail on the console; a production server sends through SMTP unless told
# otherwise, so patient mail never lands in a log by default.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "sent-mail"))  # the file backend
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cicatrix@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# send_reminders reminds of appointments starting within this many hours (--hours overrides).
REMINDER_HOURS = env_int("REMINDER_HOURS", 48, minimum=1)
# A patient link opens the patient's copy for this many days.
PATIENT_LINK_DAYS = env_int("PATIENT_LINK_DAYS", 14, minimum=1)
# --- end e-mail ---

# --- data in and out: FHIR R4 export and the patient's full record ---
# The identifier system of the clinic's record numbers in exported FHIR (Patient.identifier),
# also the seed of every exported resource's urn:uuid: one URI per clinic, e.g.
# https://clinic.example.org/fhir/record-number. The default suits a single clinic only.
FHIR_RECORD_NUMBER_SYSTEM = env_uri("FHIR_RECORD_NUMBER_SYSTEM", "urn:cicatrix:record-number")
# --- end data in and out ---

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # WeasyPrint narrates every rendering step at INFO.
    "loggers": {"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

# The admin shows each record's change history read-only; corrections are new changes.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- security headers and deploy checks (issue 11.8, 11.11) ---
# Content-Security-Policy (django-csp): scripts and styles only from our own static files, so
# text that slipped past escaping cannot run. No page has inline handlers or style attributes
# (tests/test_headers.py greps for them); the progress report's print styles, which name the
# patient, are the one <style> element and carry the response's nonce. Photos in reports and
# Bootstrap's form icons are data: URLs. Uploaded files keep their own `sandbox` policy
# (clinic/uploads.py): the middleware leaves a header a view has set.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE[_security:_security] = [
    "csp.middleware.CSPMiddleware",
    # Camera, microphone, geolocation, payment, USB ... off (clinic/middleware.py).
    "clinic.middleware.PermissionsPolicyMiddleware",
]
# Cache-Control: no-store on everything a logged-in person is sent; after authentication so
# request.user is known, after WhiteNoise so static files keep their long cache.
_auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
MIDDLEWARE.insert(_auth, "clinic.middleware.NoStoreForStaffMiddleware")
del _security, _auth
# `check --deploy` must print no issues (README). HTTPS=0 is a decision, not an oversight:
# the server is reached over a private network, or TLS ends on another machine that does the
# redirect and HSTS itself; so exactly the warnings about HTTPS redirect, HSTS and secure-only
# cookies are silenced then. HSTS preload is opt-in (SECURE_HSTS_PRELOAD), so its reminder
# is silenced while it is off.
if not HTTPS:
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]
elif not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
# --- end security headers and deploy checks ---
