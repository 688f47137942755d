"""`make bench`: seed a PostgreSQL database of a chosen size, then print how fast the key pages are.

Environment: BENCH_PATIENTS (20000), BENCH_ROUNDS (7), BENCH_DATABASE_URL (a running server,
postgres://user@host:port; without it a throwaway PostgreSQL 15 cluster is started and stopped
here, as .ci/run does), BENCH_RESEED=1 to load the database again, BENCH_WRK=0 to skip wrk.
"""

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def env_int(name, default):
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"{name} must be a whole number of 1 or more, not {value!r}.")
    return int(value)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text):
    print(text, flush=True)


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, owned by the postgres user, on a free
    port; stopped and removed at exit."""

    def __enter__(self):
        if os.geteuid() != 0:
            sys.exit("Without BENCH_DATABASE_URL the bench starts its own PostgreSQL as root.")
        if not (PG_BIN / "initdb").exists():
            sys.exit(f"No PostgreSQL at {PG_BIN}: install postgresql-15 or set PG_BIN.")
        self.dir = Path(tempfile.mkdtemp(prefix="cicatrix-bench-pg."))
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*pg, PG_BIN / "initdb", "-D", self.dir / "data", "-U", "postgres"]
            + ["--auth=trust", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [*pg, PG_BIN / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "log", "-w"]
            + ["-o", options, "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        say(f"Started a throwaway PostgreSQL on port {self.port} ({self.dir}).")
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", PG_BIN / "pg_ctl", "-D", self.dir / "data"]
            + ["-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def with_database(server, name):
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def ensure_database(server, name, *, fresh):
    """Create the database unless it exists; drop it first when `fresh`."""
    import psycopg

    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def demo_patients():
    from patients.demo import DEMO_PREFIX
    from patients.models import Patient

    return Patient.objects.filter(record_number__startswith=DEMO_PREFIX).count()


def seed(server, name, patients):
    """Migrate and load the demo clinic of `patients`, reusing a database that holds it."""
    from django.core.management import call_command
    from django.db import connection, connections

    from plans.models import Session

    reseed = os.environ.get("BENCH_RESEED") == "1"
    ensure_database(server, name, fresh=reseed)
    call_command("migrate", verbosity=0, interactive=False)
    have = demo_patients()
    if have == patients:
        say(f"Reusing {name}: {have} demo patients (BENCH_RESEED=1 loads it again).")
    else:
        if have:  # another size or a half-loaded database: start again
            connections.close_all()
            ensure_database(server, name, fresh=True)
            call_command("migrate", verbosity=0, interactive=False)
        say(f"Seeding {patients} demo patients into {name} ...")
        started = time.perf_counter()
        call_command("seed_demo", patients=patients, force=True, stdout=io.StringIO())
        seconds = time.perf_counter() - started
        sessions = Session.objects.count()
        say(f"Seeded in {seconds:.1f} s: {sessions} sessions, {sessions / seconds:.0f} sessions/s.")
    # A loaded table is vacuumed by autovacuum soon after (its rows are new): done here,
    # before measuring, so that it does not run during the measurements, and the pages read
    # the database as a clinic's runs (visibility map set: COUNTs scan the index alone).
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    say(f"VACUUM (ANALYZE) in {time.perf_counter() - started:.1f} s (not part of the seeding).")


def logged_in_cookie(username):
    """The Cookie header of a browser logged in as `username` with both factors."""
    from bench.pages import login

    client = login(username)
    client.get("/")  # sets csrftoken
    return "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())


def check_200(url, cookie):
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        status = urllib.request.build_opener(NoRedirect).open(request, timeout=60).status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 200:
        raise SystemExit(f"wrk target {url} answered {status}, not 200: not benchmarking it.")


def wrk_rps(url, cookie):
    command = ["wrk", "-t2", "-c8", "-d10s", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"wrk {url}: {bad.group(1)} answers were not 2xx or 3xx.\n{out}")
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        say(f"  (wrk {url}: {errors.group(0)})")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def throughput(database_url, targets):
    """Requests per second under wrk against gunicorn (2 workers) for a few pages."""
    if os.environ.get("BENCH_WRK") == "0":
        return say("Throughput: skipped (BENCH_WRK=0).")
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            return say("Throughput: skipped, wrk is not installed and installing needs root.")
        say("Installing wrk ...")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": settings.SECRET_KEY,  # the same key: the session cookie stays valid
    }
    gunicorn = [sys.executable, "-m", "gunicorn", "clinic.wsgi", "--workers", "2"]
    server = subprocess.Popen(
        [*gunicorn, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        cookie = logged_in_cookie("clinician")
        day = targets["day"].isoformat()
        runs = [
            ("Today, one clinician", f"/?day={day}", cookie),
            ("patient overview", f"/patients/{targets['patient'].pk}/", cookie),
            ("logged-in bare view", "/bench/bare/", cookie),
            ("anonymous bare view", "/bench/anonymous/", ""),
        ]
        results = {}
        for page, path, with_cookie in runs:
            check_200(base + path, with_cookie)
            results[page] = wrk_rps(base + path, with_cookie)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare, anonymous = results["logged-in bare view"], results["anonymous bare view"]
    say("\nThroughput (wrk -t2 -c8 -d10s, gunicorn 2 workers, clinician logged in):\n")
    say("| page | requests/s | % of logged-in bare view | % of anonymous bare view |")
    say("|---|---:|---:|---:|")
    for page, rps in results.items():
        say(f"| {page} | {rps:.1f} | {100 * rps / bare:.1f}% | {100 * rps / anonymous:.1f}% |")
    today = 100 * results[runs[0][0]] / bare
    say(f"\nToday (one clinician) runs at {today:.1f}% of a logged-in bare view.")


def main():
    patients = env_int("BENCH_PATIENTS", 20000)
    rounds = env_int("BENCH_ROUNDS", 7)
    name = f"cicatrix_bench_{patients}"
    server = os.environ.get("BENCH_DATABASE_URL", "").strip()
    cluster = None
    if not server:
        cluster = ThrowawayCluster()
        server = cluster.__enter__()
    try:
        database_url = with_database(server, name)
        os.environ["DATABASE_URL"] = database_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connections

        from bench import pages

        seed(server, name, patients)
        targets = pages.targets()
        say(
            f"\nBusiest day {targets['day']} ({targets['day_sessions']} sessions); patient "
            f"{targets['patient'].record_number}, plan {targets['plan'].pk}, "
            f"session {targets['session'].pk}. Medians of {rounds} interleaved rounds.\n"
        )
        rows = pages.measure(rounds=rounds, t=targets)
        say(pages.table(rows))
        by_page = {row.page: row.total_ms for row in rows}
        html = by_page["progress report HTML"]
        say(
            f"\nThe report's PDF: a first download takes {by_page[pages.FIRST_PDF] / html:.1f}x "
            f"its HTML, a repeat download {by_page['progress report PDF'] / html:.2f}x."
        )
        throughput(database_url, targets)
        connections.close_all()
    finally:
        if cluster:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
