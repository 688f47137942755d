"""Vendored front-end files are the recorded release, served locally, with their licence."""

import hashlib
import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

VENDOR = Path(settings.BASE_DIR) / "static" / "vendor"
BOOTSTRAP_VERSION = "5.3.8"


def _recorded_checksums():
    table = (VENDOR / "README.md").read_text()
    return dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", table, flags=re.M))


def test_every_vendored_bootstrap_file_matches_its_recorded_checksum():
    recorded = _recorded_checksums()
    on_disk = {
        str(path.relative_to(VENDOR / "bootstrap")): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (VENDOR / "bootstrap").rglob("*")
        if path.is_file()
    }
    assert on_disk == recorded


def test_the_vendored_files_are_the_recorded_release_with_its_licence():
    css = (VENDOR / "bootstrap" / "css" / "bootstrap.min.css").read_text()
    js = (VENDOR / "bootstrap" / "js" / "bootstrap.bundle.min.js").read_text()
    assert f"Bootstrap  v{BOOTSTRAP_VERSION}" in css
    assert f"Bootstrap v{BOOTSTRAP_VERSION}" in js
    assert "The MIT License" in (VENDOR / "bootstrap" / "LICENSE").read_text()
    assert f"Bootstrap {BOOTSTRAP_VERSION}" in (VENDOR / "README.md").read_text()


def test_pages_load_bootstrap_from_the_vendored_files():
    html = render_to_string("base.html")
    for name in (
        "vendor/bootstrap/css/bootstrap.min.css",
        "vendor/bootstrap/js/bootstrap.bundle.min.js",
    ):
        assert f"/static/{name}" in html
        assert finders.find(name)
    assert "cdn" not in html.lower()


def test_requirements_install_with_a_plain_pip():
    """No sdist that needs old build tools: nothing asks for a build constraint any more."""
    base = Path(settings.BASE_DIR)
    for name in ("requirements.txt", "requirements-dev.txt", "Makefile"):
        text = (base / name).read_text()
        assert "xstatic" not in text.lower()
        assert "build-constraint" not in text
    assert not (base / "requirements-build.txt").exists()
