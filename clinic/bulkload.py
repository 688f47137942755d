"""Set-based loading for PostgreSQL: rows go in with COPY and their history with one
INSERT ... SELECT per table, instead of an INSERT per batch of model instances.

Used by `seed_demo` for a chain-sized demo (issue 12): at 20,000 patients Django's
bulk_create and simple_history's bulk_history_create spent most of the load preparing each
value of each row in Python. The writes here give the database the same rows:

- ids are taken from the table's own sequence (one `nextval` per row, in object order, as
  bulk_create would), so objects have their pk afterwards and later rows can point at them;
- values are written with COPY as psycopg adapts them, or as the field prepares them
  (`get_db_prep_save`) for JSON, file and decimal fields;
- history rows are copied from the rows just written, with history_type '+', the given
  history user and one history_date, as bulk_create_with_history writes them.

A fresh load drops the tables' indexes and constraints and builds them afterwards
(`indexes_built_after`). Outside a caller's transaction the load commits first and the
builds, ANALYZE and any INSERT ... SELECT handed to `Build.later` (the chain's copies, see
plans/demo_scale.py) run on two connections at once, each statement as soon as its table is
ready; until all are done the table RECORD says what the load still owes, and a failure (or,
after a kill, the next load) undoes it: the loaded tables are emptied and their schema
rebuilt.

Other databases keep Django's bulk_create (see `patients.demo.bulk_insert`).
"""

import operator
import threading
import time
from contextlib import contextmanager

from django.db import connection, models, transaction
from django.utils import timezone

__all__ = [
    "available",
    "copy_history",
    "copy_insert",
    "copy_m2m_history",
    "indexes_built_after",
]


def available():
    """True when this connection can load with COPY."""
    return connection.vendor == "postgresql"


def _allocate_ids(model, count):
    opts = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(opts.db_table), opts.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _prepared(fields, objs):
    """The columns COPY writes and a function from an object to its row, in that order.

    Plain values (str, int, bool, date, time, aware datetime, None) go as they are, which is
    what get_db_prep_save would return for these fields; JSON, file and decimal values as
    the field prepares them (psycopg cannot write them as they are). Before that, in one
    pass per field: auto_now fields get what pre_save(add=True) sets, once for the whole
    load (bulk_create sets it per row within the same second), and a relation to an
    object built in the same load its pk now, as bulk_create's
    _prepare_related_fields_for_save takes it."""
    now = timezone.now()
    plain, special = [], []
    for field in fields:
        attname = field.attname
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objs:
                setattr(obj, attname, now)
        elif field.is_relation:
            for obj in objs:
                if getattr(obj, attname) is None and field.is_cached(obj):
                    related = field.get_cached_value(obj)
                    if related is not None:
                        setattr(obj, attname, related.pk)
        if isinstance(field, (models.JSONField, models.FileField, models.DecimalField)):
            special.append(field)
        else:
            plain.append(field)
    get = operator.attrgetter(*(f.attname for f in plain)) if plain else (lambda obj: ())
    if len(plain) == 1:
        one = get

        def get(obj):
            return (one(obj),)

    def row(obj):
        values = get(obj)
        if special:
            values += tuple(
                f.get_db_prep_save(getattr(obj, f.attname), connection) for f in special
            )
        return values

    return plain + special, row


def copy_insert(model, objs):
    """Write `objs` (unsaved instances of `model`) with COPY; each gets its pk."""
    if not objs:
        return objs
    opts = model._meta
    if any(obj.pk is None for obj in objs):
        ids = iter(_allocate_ids(model, sum(obj.pk is None for obj in objs)))
        for obj in objs:
            if obj.pk is None:
                obj.pk = next(ids)
    fields, row = _prepared(list(opts.concrete_fields), objs)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(opts.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row(row(obj))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def copy_history(model, history_model, pks, *, user, reason=None):
    """One '+' history row per row of `model` with a pk in `pks`, copied in the database,
    with change reason `reason` (None as bulk_create_with_history, "" as bulk_history_create).

    Returns {pk: history_id} for the rows written."""
    if not pks:
        return {}
    quote = connection.ops.quote_name
    tracked = [
        f
        for f in history_model._meta.concrete_fields
        if not f.name.startswith("history_") and f.name != "history"
    ]
    stamps = {
        "history_date": "%s",
        "history_type": "'+'",
        "history_user_id": "%s",
        "history_change_reason": "%s",
    }
    extra = [
        f.column
        for f in history_model._meta.concrete_fields
        if f.name.startswith("history_") and f.column not in stamps and not f.primary_key
    ]
    if extra:
        raise RuntimeError(f"copy_history does not know the history fields {extra}")
    columns = [quote(f.column) for f in tracked] + [quote(c) for c in stamps]
    selected = [f"t.{quote(f.column)}" for f in tracked] + list(stamps.values())
    sql = (
        f"INSERT INTO {quote(history_model._meta.db_table)} ({', '.join(columns)}) "  # nosec B608: table and column names from model meta, quoted; values are parameters
        f"SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)} t "
        f"WHERE t.{quote(model._meta.pk.column)} = ANY(%s) "
        f"ORDER BY t.{quote(model._meta.pk.column)} "
        f"RETURNING {quote(model._meta.pk.column)}, history_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), user.pk if user else None, reason, list(pks)])
        return dict(cursor.fetchall())


def copy_m2m_history(m2m_history_model, through, source, pks, history_of):
    """The history of the M2M rows of objects `pks`: one row per through row, pointing at the
    history row of its object (`history_of` {object pk: history_id})."""
    if not pks:
        return 0
    quote = connection.ops.quote_name
    target_columns = [
        f.column
        for f in m2m_history_model._meta.concrete_fields
        if f.column not in ("history_id", "m2m_history_id")
    ]
    objects, histories = zip(*history_of.items(), strict=True)
    cols = ", ".join(quote(c) for c in target_columns)
    picked = ", ".join(f"t.{quote(c)}" for c in target_columns)
    sql = (
        f"INSERT INTO {quote(m2m_history_model._meta.db_table)} ({cols}, history_id) "  # nosec B608: table and column names from model meta, quoted; values are parameters
        f"SELECT {picked}, h.history_id FROM {quote(through._meta.db_table)} t "
        f"JOIN unnest(%s::bigint[], %s::bigint[]) AS h(object_id, history_id) "
        f"ON h.object_id = t.{quote(source)} ORDER BY t.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(objects), list(histories)])
        return cursor.rowcount


RECORD = "bulkload_unbuilt"  # what a load that commits before its schema is whole owes


class _Job:
    """A statement of the build: the tables it locks (`shared`: a CREATE INDEX, which
    another CREATE INDEX on the same table does not block), the jobs it waits for, and an
    estimate of its cost (the biggest go first)."""

    def __init__(self, key, sql, kind, table, *, params=None, others=(), after=(), cost=0.0):
        self.key, self.sql, self.kind, self.table = key, sql, kind, table
        self.params = params
        self.tables = {table, *others}
        self.shared = kind == "index"
        self.after = set(after)
        self.cost = self.priority = cost
        self.seconds = None


class Build:
    """The load's later statements: COPY-like INSERT ... SELECTs (`later`), then the
    indexes and constraints dropped for the load, then ANALYZE.

    Inside a caller's transaction (tests) or with one worker, each runs at once on this
    connection, in the load's transaction. Otherwise the load's transaction commits first
    and they run on `workers` connections of their own, each as it becomes runnable (its
    table copied, no other running statement locking the tables it needs), so that the
    exclusion constraints of the sessions (the longest builds) start while the other tables
    are still being copied and indexed. What is still owed is kept in the table RECORD: a
    failure undoes the load (see `undo`)."""

    def __init__(self, workers, log):
        self.parallel = workers > 1
        self.workers, self.log = workers, log
        self.jobs, self.copies = {}, {}
        self.tables = []

    def later(self, sql, table, params=None):
        """Run `sql` (an INSERT into `table`) after the load's own writes."""
        if not self.parallel:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            return
        key = f"copy {len(self.jobs)} {table}"
        self.jobs[key] = _Job(key, sql, "copy", table, params=params)
        self.copies.setdefault(table, set()).add(key)

    def run(self):
        """Run the jobs on `workers` connections, biggest runnable first."""
        done, running, failed = set(), {}, []
        pending = dict(self.jobs)
        lock = threading.Condition()
        conns = []

        def runnable(job):
            if not job.after <= done:
                return False
            return all(
                not (job.tables & other.tables) or (job.shared and other.shared)
                for other in running.values()
            )

        def worker(conn):
            while True:
                with lock:
                    while True:
                        if failed or not pending:
                            return
                        ready = [j for j in pending.values() if runnable(j)]
                        if ready:
                            job = max(ready, key=lambda j: j.priority)
                            del pending[job.key]
                            running[job.key] = job
                            break
                        if not running:  # nothing runs and nothing can: a cycle
                            failed.append(RuntimeError(f"cannot order {sorted(pending)}"))
                            lock.notify_all()
                            return
                        lock.wait()
                started = time.monotonic()
                job.began = started - self.started
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        cursor.execute(job.sql, job.params)
                        if job.kind != "copy":
                            cursor.execute(f"DELETE FROM {RECORD} WHERE key = %s", [job.key])  # nosec B608: a constant name
                except BaseException as exc:  # noqa: BLE001 (handed to the main thread)
                    with lock:
                        failed.append(exc)
                        running.pop(job.key)
                        lock.notify_all()
                    for other in conns:  # stop the other connection's statement too
                        if other is not conn:
                            other.cancel()
                    return
                job.seconds = time.monotonic() - started
                with lock:
                    running.pop(job.key)
                    done.add(job.key)
                    lock.notify_all()

        params = connection.get_connection_params()
        threads = []
        self.started = time.monotonic()
        try:
            for _ in range(self.workers):
                conn = connection.get_new_connection(params)
                conn.autocommit = True
                # Index builds sort in memory, and each on one process: the connections
                # already keep the cores busy.
                conn.execute("SET maintenance_work_mem = '1GB'")
                conn.execute("SET max_parallel_maintenance_workers = 0")
                conns.append(conn)
                threads.append(threading.Thread(target=worker, args=(conn,), daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except BaseException:  # interrupted: stop the statements running, then undo
            with lock:
                failed.append(RuntimeError("interrupted"))
                pending.clear()
            for conn in conns:
                conn.cancel()
            for thread in threads:
                thread.join()
            raise
        finally:
            for conn in conns:
                conn.close()
        if failed:
            raise failed[0]
        return self.jobs


def _quote(name):
    return connection.ops.quote_name(name)


def _plan(cursor, tables, build):
    """Drop the indexes and constraints of the empty tables among `tables` and add a job per
    index, constraint and table (ANALYZE) to `build`. Returns the empty tables."""
    empty = []
    for table in tables:
        cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {_quote(table)})")  # nosec B608: table names from model meta, quoted
        if cursor.fetchone()[0]:
            empty.append(table)
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype, "
        "confrelid::regclass::text FROM pg_constraint "
        "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u', 'x') "
        "ORDER BY contype, conname",
        [empty],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
        "pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "ORDER BY 2",
        [empty],
    )
    indexes = cursor.fetchall()
    for table, name, _, _, _ in constraints:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(name)}")
    for _, name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    jobs = build.jobs
    for table, name, definition in indexes:
        key = f"index {name}"
        jobs[key] = _Job(key, definition, "index", table)
    for table, name, definition, kind, referenced in constraints:
        key = f"constraint {table} {name}"
        sql = f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}"
        others = [referenced] if kind == "f" else []
        jobs[key] = _Job(key, sql, "fk" if kind == "f" else "constraint", table, others=others)
        if kind == "x":
            jobs[key].weight = 12  # a GiST build that then searches it once per row
    for table in empty:
        key = f"analyze {table}"
        jobs[key] = _Job(key, f"ANALYZE {_quote(table)}", "analyze", table)
    if build.parallel:
        # Committed rows invite autovacuum, whose VACUUM and ANALYZE of the new tables would
        # take the cores from the builds: off for these tables until their ANALYZE is done.
        cursor.execute(
            "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND NOT EXISTS "
            "(SELECT 1 FROM unnest(reloptions) o WHERE o LIKE 'autovacuum_enabled=%%')",
            [empty],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {_quote(table)} SET (autovacuum_enabled = false)")
            key = f"autovacuum {table}"
            sql = f"ALTER TABLE {_quote(table)} RESET (autovacuum_enabled)"
            jobs[key] = _Job(key, sql, "option", table, after=[f"analyze {table}"])
    build.tables = empty
    return empty


def _order(build):
    """The jobs' order and costs, once the load has written its rows: a table's indexes and
    constraints after its copies, a foreign key also after the referenced table's own
    indexes and constraints, ANALYZE last of a table's jobs; cost by table size."""
    jobs = build.jobs.values()
    loaded = {job.table for job in jobs}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) t", [sorted(loaded)]
        )
        size = dict(cursor.fetchall())
    own = {}
    for job in jobs:
        if job.kind in ("index", "constraint"):
            own.setdefault(job.table, set()).add(job.key)
    for job in jobs:
        if job.kind == "copy":
            continue
        for table in job.tables:
            job.after |= build.copies.get(table, set())
        pages = size.get(job.table, 0) / 8192
        if job.kind == "fk":
            (referenced,) = job.tables - {job.table} or {job.table}
            job.after |= own.get(referenced, set()) - {job.key}
            pages += size.get(referenced, 0) / 8192 / 2
        if job.kind == "option":
            pages = 0
        if job.kind == "analyze":
            job.after |= {
                other.key
                for other in jobs
                if job.table in other.tables and other.kind not in ("analyze", "option")
            }
            pages = min(pages, 30000 / 50)  # a sample of 30,000 rows
        job.cost = pages * getattr(job, "weight", 1)
    # Priority: the work a job holds up. A table's constraints and ANALYZE lock it for
    # themselves, so they run one after the other: each stands for the rest of them too (the
    # sessions' four exclusion constraints are the longest chain), and a copy for all its
    # table's jobs.
    serial, total = {}, {}
    for job in jobs:
        if job.kind != "copy":
            total[job.table] = total.get(job.table, 0) + job.cost
            if not job.shared:
                serial[job.table] = serial.get(job.table, 0) + job.cost
    for job in jobs:
        if job.kind == "copy":
            job.priority = total.get(job.table, 0) + 1
        elif job.shared:
            job.priority = job.cost
        else:
            job.priority = serial[job.table] + job.cost


@contextmanager
def indexes_built_after(models, stdout=None, *, verbosity=1, workers=2, fresh=True):
    """Load into the empty tables of `models` without their indexes and constraints, then
    build them once, and yield a `Build` whose `later` takes further INSERT ... SELECTs.

    An index kept during a load is updated row by row, and a deferred foreign key queues a
    check per row until commit; an index built afterwards is one sort, a constraint added
    afterwards one join, an exclusion constraint (no double booking) one index build that
    checks every row. Primary keys stay (the copies look rows up by id). A re-added
    constraint has the same columns, operators and condition; PostgreSQL may print the
    condition in another but equal form. Tables that already hold rows keep everything: this
    is for a fresh database. ANALYZE at the end gives the planner the new tables' statistics.

    Inside a caller's transaction, or with workers=1: everything in that one transaction
    (a failure leaves the schema as it was). Otherwise the load commits, then the builds run
    on `workers` connections (Build); if anything fails or is interrupted, the load is
    undone: the loaded tables are emptied and their indexes and constraints built on them
    again, and the error is raised. A load killed outside Python's reach leaves RECORD, and
    the next load undoes it first, the same way. Elsewhere than PostgreSQL: only the
    transaction. `fresh` (a bool, or a callable asked after an unfinished load is undone)
    false: the database already holds the data, and no table is rebuilt."""
    log = _logger(stdout, verbosity)
    if not available():
        build = Build(1, log)
        with transaction.atomic():
            yield build
        return
    every_table = sorted({model._meta.db_table for model in models})

    def tables_to_build():
        # A load into a database that already holds its data (a second seed_demo) adds
        # little or nothing: its tables keep their indexes and constraints, empty ones too.
        return every_table if (fresh() if callable(fresh) else fresh) else []

    if connection.in_atomic_block or workers < 2:
        tables = tables_to_build()
        build = Build(1, log)
        with transaction.atomic(), connection.cursor() as cursor:
            empty = _plan(cursor, tables, build)
            yield build
            started = time.monotonic()
            # Index builds sort in memory rather than on disk (this transaction only).
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            for job in build.jobs.values():
                began = time.monotonic()
                cursor.execute(job.sql)
                job.seconds = time.monotonic() - began
            _report(log, build, empty, time.monotonic() - started)
        return
    undo(log)
    tables = tables_to_build()  # asked after an unfinished load is undone
    build = Build(workers, log)
    with transaction.atomic(), connection.cursor() as cursor:
        empty = _plan(cursor, tables, build)
        cursor.execute(f"CREATE TABLE {RECORD} (key text, sql text, kind text)")
        rows = [(j.key, j.sql, j.kind) for j in build.jobs.values() if j.kind != "analyze"]
        rows += [(f"table {t}", t, "table") for t in empty]
        # Tables that held rows keep them and their schema; the load's own rows in them
        # (the chain's colleagues, say) are those past the last id they had.
        keys = {m._meta.db_table: m._meta.pk for m in models}
        for table in sorted(set(tables) - set(empty)):
            pk = keys[table]
            if pk.get_internal_type() not in ("AutoField", "BigAutoField", "SmallAutoField"):
                continue
            cursor.execute(f"SELECT max({_quote(pk.column)}) FROM {_quote(table)}")  # nosec B608: names from model meta, quoted
            last = cursor.fetchone()[0]
            sql = f"DELETE FROM {_quote(table)} WHERE {_quote(pk.column)} > {int(last)}"  # nosec B608: names from model meta, quoted; an int
            rows.append((f"since {table}", sql, "since"))
        with cursor.cursor.copy(f"COPY {RECORD} (key, sql, kind) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        yield build
    started = time.monotonic()
    try:
        _order(build)
        build.run()
    except BaseException as exc:
        log(1, f"The load failed ({exc}); undoing it.")
        undo(log)
        raise
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {RECORD}")
    _report(log, build, empty, time.monotonic() - started)


def undo(log=None):
    """Undo a load that did not finish (RECORD is left): empty its tables, delete its rows
    in the tables that held rows before it, and build the indexes and constraints it still
    owes, in one transaction (foreign keys are checked at its end). Nothing to do when there
    is no RECORD."""
    log = log or (lambda *args: None)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [RECORD])
        if cursor.fetchone()[0] is None:
            return
        cursor.execute(f"SELECT key, sql, kind FROM {RECORD} ORDER BY kind <> 'since', key")  # nosec B608: a constant name
        rows = cursor.fetchall()
        tables = [sql for _, sql, kind in rows if kind == "table"]
        # TRUNCATE also wants the tables with a foreign key into these: only when they are
        # empty too (the load's rows elsewhere go by "since" below).
        cursor.execute(
            "SELECT DISTINCT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = ANY(%s::regclass[]) AND NOT conrelid = ANY(%s::regclass[])",
            [tables, tables],
        )
        referencing = [row[0] for row in cursor.fetchall()]
        for table in referencing:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # nosec B608: a name from the catalogue
            if cursor.fetchone()[0]:
                raise RuntimeError(
                    f"Cannot undo the unfinished load: {table} has rows and a foreign key "
                    f"into its tables ({RECORD} lists what it owes). Drop the database."
                )
        if tables:
            cursor.execute(
                "TRUNCATE " + ", ".join([_quote(t) for t in tables] + referencing)  # nosec B608: names from the catalogue
            )
        for _, sql, kind in rows:
            if kind != "table":
                cursor.execute(sql)
        cursor.execute(f"DROP TABLE {RECORD}")
    log(1, f"Undid an unfinished load: {len(tables)} tables emptied, their schema rebuilt.")


def _logger(stdout, verbosity):
    def log(level, text):
        if stdout is not None and verbosity >= level:
            stdout.write(text)

    return log


def _report(log, build, empty, seconds):
    jobs = list(build.jobs.values())
    copies = sum(j.kind == "copy" for j in jobs)
    log(
        1,
        f"{sum(j.kind == 'index' for j in jobs)} indexes and "
        f"{sum(j.kind in ('constraint', 'fk') for j in jobs)} constraints built in "
        f"{seconds:.1f} s ("
        + (f"with {copies} table copies, " if copies else "")
        + f"{len(empty)} tables analysed"
        + (f", on {build.workers} connections)." if build.parallel else ")."),
    )
    by_kind = {}
    for job in jobs:
        by_kind[job.kind] = by_kind.get(job.kind, 0) + (job.seconds or 0)
    log(2, "  time by kind: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(by_kind.items())))
    for job in sorted(jobs, key=lambda j: -(j.seconds or 0))[:12]:
        began = getattr(job, "began", None)
        at = f" (from {began:.1f} s)" if began is not None else ""
        log(2, f"  {job.seconds or 0:6.2f} s  {job.key}{at}")
