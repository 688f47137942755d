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

Other databases keep Django's bulk_create (see `patients.demo.bulk_insert`).
"""

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


def _converters(fields):
    """For each field, a function from an object to the value COPY writes."""
    now = timezone.now()
    out = []
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            # What pre_save(add=True) sets, once for the whole load (bulk_create sets it per
            # row within the same second).
            def value(obj, field=field, now=now):
                setattr(obj, field.attname, now)
                return now

        elif isinstance(field, (models.JSONField, models.FileField, models.DecimalField)):
            # Values psycopg cannot write as they are: the field's own database value.

            def value(obj, field=field):
                return field.get_db_prep_save(getattr(obj, field.attname), connection)

        elif field.is_relation:
            # A related object assigned before it had a pk (built in the same load): its pk
            # now, as bulk_create's _prepare_related_fields_for_save takes it.
            def value(obj, field=field):
                pk = getattr(obj, field.attname)
                if pk is None and field.is_cached(obj):
                    related = field.get_cached_value(obj)
                    if related is not None:
                        pk = related.pk
                        setattr(obj, field.attname, pk)
                return pk

        else:
            # Plain values (str, int, bool, date, time, aware datetime, None): psycopg writes
            # them as they are, which is what get_db_prep_save would return for these fields.
            def value(obj, attname=field.attname):
                return getattr(obj, attname)

        out.append(value)
    return out


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
    fields = list(opts.concrete_fields)
    values = _converters(fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(opts.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row([value(obj) for value in values])
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


@contextmanager
def indexes_built_after(models, stdout=None):
    """Load into the empty tables of `models` without their indexes and constraints, then
    build them once (in one transaction: a failed load leaves the schema as it was).

    An index kept during a load is updated row by row, and a deferred foreign key queues a
    check per row until commit; an index built afterwards is one sort, a constraint added
    afterwards one join, an exclusion constraint (no double booking) one index build that
    checks every row. Primary keys stay (the history copy looks rows up by id). A re-added
    constraint has the same columns, operators and condition; PostgreSQL may print the
    condition in another but equal form. Tables that already hold rows keep everything: this
    is for a fresh database. ANALYZE at the end
    gives the planner the new tables' statistics. Elsewhere than PostgreSQL: only the
    transaction."""
    if not available():
        with transaction.atomic():
            yield
        return
    tables = sorted({model._meta.db_table for model in models})
    with transaction.atomic(), connection.cursor() as cursor:
        empty = []
        for table in tables:
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)})")  # nosec B608: table and column names from model meta, quoted; values are parameters
            if cursor.fetchone()[0]:
                empty.append(table)
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u', 'x') "
            "ORDER BY contype, conname",
            [empty],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY 1",
            [empty],
        )
        indexes = cursor.fetchall()
        for table, name, _ in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        yield
        started = time.monotonic()
        # Index builds sort in memory rather than on disk (this transaction only).
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
            )
        built = time.monotonic()
        for table in empty:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        if stdout is not None:
            stdout.write(
                f"{len(indexes)} indexes and {len(constraints)} constraints built in "
                f"{built - started:.1f} s, statistics in {time.monotonic() - built:.1f} s."
            )
