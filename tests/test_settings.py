"""Settings read the environment and fail loudly, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from clinic import env

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k9!v2#Qx7@pL4$wZ8^rT1&mN6*bY3(hJ5)cF0_dS-eG+uA=iO[oP]lK{jH}gD|",
    "ALLOWED_HOSTS": "cicatrix.example-clinic.org",
    "CSRF_TRUSTED_ORIGINS": "https://cicatrix.example-clinic.org",
}


def _manage(*args, **extra_env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DJANGO_SETTINGS_MODULE",
            "DEBUG",
            "SECRET_KEY",
            "HTTPS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_debug_value_is_a_one_line_error_naming_debug():
    result = _manage("check", DEBUG="maybe")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DEBUG='maybe'" in lines[0]


def test_production_settings_pass_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = _manage("check", DEBUG="0")
    assert result.returncode == 1
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("helper", "variable", "value", "expected"),
    [
        (env.env_bool, "X_FLAG", "yes", True),
        (env.env_bool, "X_FLAG", "Off", False),
        (lambda name: env.env_int(name, 5), "X_NUMBER", "42", 42),
        (env.env_list, "X_LIST", "a.org, b.org,,", ["a.org", "b.org"]),
        (lambda name: env.env_timezone(name, "UTC"), "X_ZONE", "Europe/Paris", "Europe/Paris"),
        (
            lambda name: env.env_uri(name, "urn:x:y"),
            "X_URI",
            "https://clinic.example.org/fhir/record-number",
            "https://clinic.example.org/fhir/record-number",
        ),
        (lambda name: env.env_uri(name, "urn:x:y"), "X_URI", "urn:oid:1.2.3", "urn:oid:1.2.3"),
    ],
)
def test_helpers_read_good_values(monkeypatch, helper, variable, value, expected):
    monkeypatch.setenv(variable, value)
    assert helper(variable) == expected


@pytest.mark.parametrize(
    ("helper", "value"),
    [
        (env.env_bool, "maybe"),
        (lambda name: env.env_int(name, 5), "five"),
        (lambda name: env.env_int(name, 5, minimum=0), "-1"),
        (lambda name: env.env_timezone(name, "UTC"), "Mars/Olympus"),
        (lambda name: env.env_uri(name, "urn:x:y"), "record-number"),
        (lambda name: env.env_uri(name, "urn:x:y"), "https://clinic.example.org/a b"),
        (lambda name: env.env_database(name, "sqlite://"), "mysqlish://nothing"),
        (lambda name: env.env_str(name, required=True), ""),
    ],
)
def test_helpers_name_the_variable_on_bad_values(monkeypatch, helper, value):
    monkeypatch.setenv("CICATRIX_TEST_VAR", value)
    with pytest.raises(ImproperlyConfigured, match="CICATRIX_TEST_VAR"):
        helper("CICATRIX_TEST_VAR")


def test_database_url_defaults_to_sqlite_and_reads_postgres(monkeypatch):
    monkeypatch.delenv("CICATRIX_DB", raising=False)
    assert env.env_database("CICATRIX_DB", "sqlite:///db.sqlite3")["ENGINE"].endswith("sqlite3")
    monkeypatch.setenv("CICATRIX_DB", "postgres://u:p@127.0.0.1:5433/cicatrix")
    config = env.env_database("CICATRIX_DB", "sqlite://")
    assert config["ENGINE"].endswith("postgresql")
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("127.0.0.1", 5433, "cicatrix")


# --- deploy defaults (issue 11.11) ---------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "abc",
        "x" * 49,
        "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",  # 4 distinct characters
        "django-insecure-" + "k9!v2#Qx7@pL4$wZ8^rT1&mN6*bY3(hJ5)cF0_dS-eG",
    ],
    ids=["3 characters", "49 characters", "4 distinct characters", "django-insecure- prefix"],
)
def test_debug_off_with_a_weak_secret_key_refuses_to_start_naming_it(key):
    result = _manage("check", **{**PRODUCTION_ENV, "SECRET_KEY": key})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: SECRET_KEY")
    assert key not in lines[0]  # a secret is never echoed to a log


def test_a_short_secret_key_is_fine_on_a_developers_machine():
    result = _manage("check", DEBUG="1", SECRET_KEY="abc")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("k9!v2#Qx7@pL4$wZ8^rT1&mN6*bY3(hJ5)cF0_dS-eG+uA=iO[", True),  # 50 characters
        ("k9!v2#Qx7@pL4$wZ8^rT1&mN6*bY3(hJ5)cF0_dS-eG+uA=iO", False),  # 49
        ("ab" * 40, False),
        ("abcde" * 10, True),
    ],
)
def test_the_secret_key_helper_wants_50_characters_and_5_distinct(monkeypatch, value, ok):
    monkeypatch.setenv("CICATRIX_KEY", value)
    if ok:
        assert env.env_secret_key("CICATRIX_KEY") == value
    else:
        with pytest.raises(ImproperlyConfigured, match="CICATRIX_KEY"):
            env.env_secret_key("CICATRIX_KEY")


def _settings_value(name, **extra_env):
    result = _manage(
        "shell", "-c", f"from django.conf import settings; print(settings.{name})", **extra_env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_hsts_preload_is_opt_in():
    assert _settings_value("SECURE_HSTS_SECONDS", **PRODUCTION_ENV) == "31536000"
    assert _settings_value("SECURE_HSTS_PRELOAD", **PRODUCTION_ENV) == "False"
    preload = {**PRODUCTION_ENV, "SECURE_HSTS_PRELOAD": "1"}
    assert _settings_value("SECURE_HSTS_PRELOAD", **preload) == "True"


def test_production_settings_with_preload_pass_check_deploy_without_warnings():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, SECURE_HSTS_PRELOAD="1"
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_https_off_passes_check_deploy_as_the_readme_says():
    """HTTPS=0 (TLS ends on another machine, or a private network) means no redirect, no
    secure-only cookies and no HSTS on purpose: exactly those warnings are silenced."""
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, HTTPS="0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (4 silenced)" in result.stdout
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "System check identified no issues (4 silenced)" in readme
    for check in ("security.W004", "W008", "W012", "W016"):
        assert check in readme


def test_https_off_silences_nothing_else():
    """A real problem (DEBUG on, a short HSTS) still shows with HTTPS=0."""
    result = _manage("check", "--deploy", **{**PRODUCTION_ENV, "HTTPS": "0", "DEBUG": "1"})
    output = result.stdout + result.stderr
    assert "security.W018" in output  # DEBUG on in deployment
    assert "security.W008" not in output


@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    """JIT compiling the app's short queries cost more than it saved (issue 12)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
