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
