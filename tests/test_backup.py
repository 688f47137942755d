"""Backup and restore: one archive holds the database, every media file and a manifest; a
restore into an empty database gives the same rows per table (history included, nothing
added) and the same files, and a damaged archive or a database in use is refused.

`restore` runs as a separate process, as an operator would run it, against the database
that its DATABASE_URL names.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

from tests.factories import frozen, staff_world

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="restores into a second PostgreSQL database"
)
on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="restores into a SQLite file; PostgreSQL has its own restore test",
)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    os.makedirs(settings.MEDIA_ROOT)
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def clinic(media, clinician):
    """A clinic with patients, a logged session, a photo and a consent scan (history too)."""
    with frozen():
        world = staff_world(clinician)
    assert list(media.rglob("*.*")), "the world should have files in MEDIA_ROOT"
    return world


def table_counts(cursor, tables):
    counts = {}
    for table in tables:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        counts[table] = cursor.fetchone()[0]
    return counts


def live_counts():
    with connection.cursor() as cursor:
        return table_counts(cursor, connection.introspection.table_names(cursor))


def checksums(root):
    root = Path(root)
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def restore(archive, database_url, media_root, *extra):
    """Run `manage.py restore` as an operator would, in its own process."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "1",
        "HTTPS": "0",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "restore", str(archive), "--noinput", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def archive(clinic, tmp_path):
    path = tmp_path / "cicatrix-backup.tar"
    call_command("backup", output=str(path))
    return path


def read_manifest(path):
    with tarfile.open(path) as tar:
        return json.load(tar.extractfile("manifest.json"))


def test_the_manifest_lists_engine_migrations_row_counts_and_checksums(archive, media):
    manifest = read_manifest(archive)
    assert manifest["engine"] == connection.vendor
    assert manifest["created_at"]
    assert manifest["migrations"]["plans"].startswith("00")
    assert manifest["tables"] == live_counts()
    assert manifest["tables"]["plans_historicalsession"] > 0
    files = manifest["files"]
    assert {f"media/{name}": digest for name, digest in checksums(media).items()}.items() <= (
        files.items()
    )
    with tarfile.open(archive) as tar:
        for name, digest in files.items():
            assert hashlib.sha256(tar.extractfile(name).read()).hexdigest() == digest
        assert manifest["database"] in files


@on_sqlite
def test_backup_then_restore_on_sqlite_gives_the_same_rows_and_files(archive, media, tmp_path):
    before_rows, before_files = live_counts(), checksums(media)
    target, target_media = tmp_path / "restored.sqlite3", tmp_path / "restored-media"
    done = restore(archive, f"sqlite:///{target}", target_media)
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout.lower()
    import sqlite3

    restored = sqlite3.connect(target)
    try:
        assert table_counts(restored.cursor(), before_rows) == before_rows
        tables = {
            r[0] for r in restored.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert set(before_rows) <= tables
    finally:
        restored.close()
    assert checksums(target_media) == before_files


def _tampered(archive, tmp_path, name_part):
    """A copy of the archive with one byte of one member changed."""
    copy = tmp_path / "tampered.tar"
    with tarfile.open(archive) as source, tarfile.open(copy, "w") as target:
        changed = False
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if data and not changed and name_part in member.name:
                data = bytes([data[0] ^ 1]) + data[1:]
                changed = True
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    assert changed
    return copy


@pytest.mark.parametrize("member", ["media/", "database"])
def test_a_damaged_archive_is_refused_before_anything_is_written(archive, tmp_path, member):
    target, target_media = tmp_path / "never.sqlite3", tmp_path / "never-media"
    done = restore(_tampered(archive, tmp_path, member), f"sqlite:///{target}", target_media)
    assert done.returncode != 0
    assert "checksum" in done.stderr.lower()
    assert not target.exists() or target.stat().st_size == 0
    assert not target_media.exists() or not any(target_media.iterdir())


def test_restore_into_a_database_in_use_is_refused(archive, tmp_path):
    if connection.vendor == "sqlite":
        url = f"sqlite:///{connection.settings_dict['NAME']}"
    else:
        url = _pg_url(connection.settings_dict["NAME"])
    before = live_counts()
    done = restore(archive, url, tmp_path / "other-media")
    assert done.returncode != 0
    assert "not empty" in done.stderr.lower()
    assert live_counts() == before


@on_sqlite
def test_restore_refuses_a_media_folder_that_has_files(archive, tmp_path):
    busy = tmp_path / "busy-media"
    busy.mkdir()
    (busy / "someone-else.jpg").write_bytes(b"x")
    done = restore(archive, f"sqlite:///{tmp_path / 'fresh.sqlite3'}", busy)
    assert done.returncode != 0
    assert "media_root" in done.stderr.lower()


# --- PostgreSQL: restore into a second database on the same server -----------------------


def _pg_url(name):
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s["PASSWORD"]:
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"


@pytest.fixture
def empty_pg_database():
    import psycopg

    s = connection.settings_dict
    name = f"{s['NAME']}_restore_{os.getpid()}"
    params = {
        "dbname": "postgres",
        "user": s["USER"],
        "password": s["PASSWORD"] or None,
        "host": s["HOST"] or "127.0.0.1",
        "port": s["PORT"] or 5432,
        "autocommit": True,
    }
    with psycopg.connect(**params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name, params | {"dbname": name}
    with psycopg.connect(**params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@on_postgresql
def test_backup_then_restore_on_a_fresh_postgresql_database_gives_the_same_rows_and_files(
    archive, media, tmp_path, empty_pg_database
):
    import psycopg

    name, params = empty_pg_database
    before_rows, before_files = live_counts(), checksums(media)
    target_media = tmp_path / "restored-media"
    done = restore(archive, _pg_url(name), target_media)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(**params) as restored, restored.cursor() as cursor:
        assert table_counts(cursor, before_rows) == before_rows
    assert checksums(target_media) == before_files
