"""Backup and restore of the whole clinic: the database, every file under MEDIA_ROOT and a
manifest, in one tar archive.

Archive layout::

    manifest.json       created_at, engine, latest migration per app, rows per table and the
                        SHA-256 of every other member
    database.dump       PostgreSQL: pg_dump custom format (restored with pg_restore)
    database.sqlite3    SQLite: a copy made with the online backup API
    media/...           every file under MEDIA_ROOT, same relative paths

A logical dump (pg_dump) is used rather than `dumpdata`/`loaddata`: loading fixtures runs
the models' save signals, so the history tables gained rows, and on PostgreSQL the history
rows collided with the ones the loader had just made. A dump copies the tables as they are.
"""

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import connection, transaction

MANIFEST = "manifest.json"
FORMAT = 1
PG_DUMP_NAME = "database.dump"
SQLITE_NAME = "database.sqlite3"


class BackupError(Exception):
    """Anything that stops a backup or a restore, with a message for the operator."""


# --- small helpers ------------------------------------------------------------------------


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine():
    """'postgresql' or 'sqlite' (the only two this project runs on)."""
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"Backups support PostgreSQL and SQLite, not {vendor}.")
    return vendor


def media_files(root):
    """Every regular file under root, as (relative posix name, absolute path), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found.append((path.relative_to(root).as_posix(), path))
    return found


def quote(name):
    return connection.ops.quote_name(name)


def _counts(cursor, tables):
    counts = {}
    for table in sorted(tables):
        # Table names come from the database's own introspection, quoted; no user input.
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # nosec B608
        counts[table] = cursor.fetchone()[0]
    return counts


def _latest_migrations(cursor):
    """The last applied migration of each app, by the order they were applied."""
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
    latest = {}
    for app, name in cursor.fetchall():
        latest[app] = name
    return dict(sorted(latest.items()))


# --- PostgreSQL client tools --------------------------------------------------------------


def pg_tool(name):
    """pg_dump / pg_restore: $PG_BIN, then PATH, then the Debian PostgreSQL 15 folder."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]) / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/lib/postgresql/15/bin") / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(f"{name} not found: install the PostgreSQL client or set PG_BIN.")


def pg_env(settings_dict):
    """Connection for the PostgreSQL tools through the environment: the password never
    appears on a command line (where `ps` would show it)."""
    env = {**os.environ}
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("NAME", "PGDATABASE"),
        ("PASSWORD", "PGPASSWORD"),
    ):
        value = settings_dict.get(key)
        if value:
            env[variable] = str(value)
        else:
            env.pop(variable, None)
    return env


def _run(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")
    return done


# --- backup -------------------------------------------------------------------------------


def _dump_postgresql(target):
    """pg_dump from the same snapshot as the row counts, so the manifest matches the dump
    even while the clinic keeps working."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        tables = connection.introspection.table_names(cursor)
        counts = _counts(cursor, tables)
        migrations = _latest_migrations(cursor)
        _run(
            [pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--file", target],
            pg_env(connection.settings_dict),
        )
    return counts, migrations


def _dump_sqlite(target):
    """SQLite's online backup API: a consistent copy while others may be writing."""
    connection.ensure_connection()
    destination = sqlite3.connect(target)
    try:
        connection.connection.backup(destination)
        cursor = destination.cursor()
        cursor.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = [r[0] for r in cursor.fetchall() if not r[0].startswith("sqlite_")]
        return _counts(cursor, tables), _latest_migrations(cursor)
    finally:
        destination.close()


def backup(output):
    """Write the archive to `output`; return the manifest."""
    vendor = engine()
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="cicatrix-backup-") as work:
        name = PG_DUMP_NAME if vendor == "postgresql" else SQLITE_NAME
        dump = Path(work) / name
        if vendor == "postgresql":
            counts, migrations = _dump_postgresql(str(dump))
        else:
            counts, migrations = _dump_sqlite(str(dump))
        files = media_files(settings.MEDIA_ROOT)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "engine": vendor,
            "database": name,
            "migrations": migrations,
            "tables": counts,
            "files": {name: sha256_file(dump)}
            | {f"media/{rel}": sha256_file(path) for rel, path in files},
        }
        partial = output.with_name(output.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            tar.add(dump, arcname=name, recursive=False)
            for rel, path in files:
                tar.add(path, arcname=f"media/{rel}", recursive=False)
        os.chmod(partial, 0o600)  # patient records: readable by the owner only
        os.replace(partial, output)  # never a half-written archive under the final name
    return manifest


# --- restore ------------------------------------------------------------------------------


def _safe_member_name(name):
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == path.as_posix()


@contextmanager
def verified_archive(path):
    """Open the archive and check every member against the manifest before anything is
    written: a damaged, truncated or altered archive is refused. Yields (manifest, folder
    with the checked members)."""
    try:
        tar = tarfile.open(path)  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as error:
        raise BackupError(f"Cannot read the archive {path}: {error}") from error
    with tar, tempfile.TemporaryDirectory(prefix="cicatrix-restore-") as work:
        try:
            manifest = json.load(tar.extractfile(MANIFEST))
        except (KeyError, ValueError, TypeError) as error:
            raise BackupError("The archive has no readable manifest.json.") from error
        if manifest.get("format") != FORMAT:
            raise BackupError(f"Unknown archive format {manifest.get('format')!r}.")
        expected = manifest.get("files") or {}
        seen = set()
        problems = []
        for member in tar:
            if member.name == MANIFEST:
                continue
            if member.name not in expected or not member.isfile():
                problems.append(f"{member.name}: not in the manifest")
                continue
            if not _safe_member_name(member.name):
                problems.append(f"{member.name}: unsafe path")
                continue
            target = Path(work) / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with tar.extractfile(member) as source, open(target, "wb") as out:
                for block in iter(lambda s=source: s.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != expected[member.name]:
                problems.append(f"{member.name}: checksum does not match the manifest")
            seen.add(member.name)
        problems += [f"{name}: missing from the archive" for name in sorted(set(expected) - seen)]
        if problems:
            raise BackupError(
                "The archive is damaged; nothing was restored (checksum check failed):\n  "
                + "\n  ".join(problems)
            )
        yield manifest, Path(work)


def database_in_use():
    """Why the target database is not empty, or '' when it is."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if "django_migrations" in tables:
            cursor.execute("SELECT COUNT(*) FROM django_migrations")
            applied = cursor.fetchone()[0]
            if applied:
                return f"{applied} migrations are applied"
        full = [table for table, rows in _counts(cursor, tables).items() if rows]
    if full:
        return f"tables with rows: {', '.join(full[:5])}" + (" ..." if len(full) > 5 else "")
    if tables:
        return f"it already has tables: {', '.join(sorted(tables)[:5])}"
    return ""


def _restore_postgresql(dump):
    connection.close()
    _run(
        [
            pg_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            connection.settings_dict["NAME"],
            str(dump),
        ],
        pg_env({**connection.settings_dict, "NAME": ""}),
    )


def _restore_sqlite(copy):
    connection.close()
    target = connection.settings_dict["NAME"]
    source = sqlite3.connect(copy)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
    finally:
        source.close()
        destination.close()


def restore(path, *, force_media=False, report=print):
    """Restore the archive into the (empty) default database and MEDIA_ROOT, then check the
    result against the manifest. Returns the list of mismatches (empty: all verified)."""
    vendor = engine()
    with verified_archive(path) as (manifest, work):
        report(
            f"Archive checked: {len(manifest['files'])} files match their checksums "
            f"(made {manifest['created_at']} on {manifest['engine']})."
        )
        if manifest["engine"] != vendor:
            raise BackupError(
                f"The archive is a {manifest['engine']} backup; this database is {vendor}."
            )
        busy = database_in_use()
        if busy:
            raise BackupError(
                f"The database is not empty ({busy}). Restore only into a new, empty "
                "database: create one and point DATABASE_URL at it."
            )
        media_root = Path(settings.MEDIA_ROOT)
        if media_files(media_root) and not force_media:
            raise BackupError(
                f"MEDIA_ROOT ({media_root}) already has files. Restore into an empty folder, "
                "or pass --force-media to add the archive's files to it."
            )
        dump = work / manifest["database"]
        if vendor == "postgresql":
            _restore_postgresql(dump)
        else:
            _restore_sqlite(dump)
        report(f"Database restored from {manifest['database']}.")
        media = {n: d for n, d in manifest["files"].items() if n.startswith("media/")}
        for name in media:
            destination = media_root / name.removeprefix("media/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / name, destination)
            os.chmod(destination, settings.FILE_UPLOAD_PERMISSIONS or 0o640)
        report(f"{len(media)} media files restored into {media_root}.")
    return verify(manifest)


def verify(manifest):
    """Compare the restored database and MEDIA_ROOT with the manifest."""
    mismatches = []
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        missing = sorted(set(manifest["tables"]) - set(tables))
        mismatches += [f"table {t}: missing" for t in missing]
        counts = _counts(cursor, [t for t in manifest["tables"] if t in tables])
        migrations = _latest_migrations(cursor) if "django_migrations" in tables else {}
    for table, rows in counts.items():
        if rows != manifest["tables"][table]:
            mismatches.append(f"table {table}: {rows} rows, expected {manifest['tables'][table]}")
    if migrations != manifest["migrations"]:
        mismatches.append(f"migrations: {migrations}, expected {manifest['migrations']}")
    media_root = Path(settings.MEDIA_ROOT)
    for name, digest in manifest["files"].items():
        if not name.startswith("media/"):
            continue
        path = media_root / name.removeprefix("media/")
        if not path.is_file():
            mismatches.append(f"{name}: missing after restore")
        elif sha256_file(path) != digest:
            mismatches.append(f"{name}: checksum differs after restore")
    return mismatches
