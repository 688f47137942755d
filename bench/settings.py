"""Benchmark settings: the real settings with DEBUG off, plain HTTP and the bench's bare views.

Only `make bench` (bench/run.py) uses these; the app never imports them.
"""

import os
import secrets
import warnings

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
# A fresh random key per run is fine: the bench logs in anew each time (50+ characters).
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(48))

from clinic.settings import *  # noqa: E402,F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.urls"
# Pages are rendered without running collectstatic first (no manifest to look names up in).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise serves STATIC_ROOT, which only collectstatic creates; the bench requests no
# static files, so its warning about the missing directory is noise.
warnings.filterwarnings("ignore", message="No directory at: ")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
