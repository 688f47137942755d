"""Read settings from the environment, failing loudly on values that cannot be right."""

import os
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")  # RFC 3986 scheme, then no spaces


def _raw(name, default):
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_str(name, default=None, *, required=False):
    """A string; an empty or missing required value is an error naming the variable."""
    value = _raw(name, default)
    if required and not value:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return value


def env_secret_key(name, *, min_length=50, min_distinct=5):
    """A production secret key: long and varied enough to sign sessions and password resets
    (Django's own deploy check asks the same). The value itself is never put in the message."""
    value = env_str(name, required=True)
    if len(value) < min_length:
        problem = f"is {len(value)} characters long: use at least {min_length}"
    elif len(set(value)) < min_distinct:
        problem = f"has {len(set(value))} distinct characters: use at least {min_distinct}"
    elif value.startswith("django-insecure-"):
        problem = "is a generated development key (django-insecure-...)"
    else:
        return value
    raise ImproperlyConfigured(
        f"{name} {problem}; make one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )


def env_bool(name, default=False):
    """A boolean written as 1/0, true/false, yes/no or on/off."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of 1, 0, true, false, yes, no, on, off."
    )


def env_int(name, default, *, minimum=None):
    """An integer, optionally with a lower bound."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name, default=()):
    """A comma-separated list; blanks are dropped."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_uri(name, default):
    """An absolute URI (scheme:rest), e.g. https://clinic.example.org/fhir/record-number."""
    value = _raw(name, default)
    if not _URI.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an absolute URI: use e.g. "
            "https://clinic.example.org/fhir/record-number or urn:oid:1.2.3.4."
        )
    return value


def env_timezone(name, default):
    """An IANA time zone name such as Europe/London."""
    value = _raw(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a known time zone: use an IANA name such as Europe/London."
        ) from None
    return value


def env_database(name, default):
    """A database URL (sqlite:///path or postgres://user:pass@host:port/name)."""
    import dj_database_url

    value = _raw(name, default)
    try:
        config = dj_database_url.parse(value)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"{name} is not a usable database URL: {exc}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(
            f"{name}={value!r} names no database engine: use sqlite:///... or postgres://..."
        )
    return config
