"""Admin lists and patient search at scale (issue 12): a list runs the same queries however
many rows it shows, its SQL does not grow with the table (no GROUP BY over plan x session, no
year drill-down over every row, an estimated count for a big unfiltered table on PostgreSQL),
and searching patients by surname prefix or record number uses an index on PostgreSQL."""

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic import admin_tools
from patients.models import Patient
from tests.factories import (
    AssessmentFactory,
    PatientFactory,
    PlanFactory,
    SessionFactory,
    at,
)

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="EXPLAIN plans and pg_class estimates exist only on PostgreSQL",
)

LISTS = {
    "plans_plan": lambda n: [SessionFactory(plan=PlanFactory()) for _ in range(n)],
    "plans_session": lambda n: SessionFactory.create_batch(n),
    "plans_assessment": lambda n: AssessmentFactory.create_batch(n),
    "patients_patient": lambda n: PatientFactory.create_batch(n),
}


def changelist(table):
    app, model = table.split("_", 1)
    return reverse(f"admin:{app}_{model}_changelist")


def captured(client, url):
    """(SQL of each query, page text) for a GET after one warm-up request."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries], response.content.decode()


@pytest.mark.parametrize("table", LISTS)
def test_an_admin_list_runs_as_many_queries_for_fifty_rows_as_for_five(manager_client, table):
    LISTS[table](5)
    few, _ = captured(manager_client, changelist(table))
    LISTS[table](45)
    many, page = captured(manager_client, changelist(table))
    assert page.count('name="_selected_action"') >= 50
    assert len(many) == len(few), f"{len(few)} queries with 5 rows, {len(many)} with 50"


@pytest.mark.parametrize("table", ["plans_plan", "plans_session", "plans_assessment"])
def test_a_big_admin_list_neither_groups_nor_drills_down_over_its_whole_table(
    manager_client, table
):
    LISTS[table](3)
    sql, _ = captured(manager_client, changelist(table))
    on_table = [s for s in sql if f'"{table}"' in s]
    assert on_table
    assert not [s for s in on_table if "GROUP BY" in s.split("(SELECT")[0]], on_table
    assert not [s for s in on_table if "DATE_TRUNC" in s.upper() or "strftime" in s], on_table


def test_the_plan_list_shows_each_plans_sessions_done(manager_client):
    plan = PlanFactory()
    first = at(plan.start_date)
    for week, status in enumerate(["completed", "scheduled", "cancelled"]):
        start = first + timedelta(days=7 * week)
        SessionFactory(
            plan=plan,
            status=status,
            scheduled_at=start,
            ends_at=start + timedelta(minutes=30),
            completed_at=start if status == "completed" else None,
        )
    _, page = captured(manager_client, changelist("plans_plan"))
    assert "1 of 2" in page


@on_postgresql
def test_a_big_unfiltered_list_counts_from_the_planner_statistics(manager_client, monkeypatch):
    SessionFactory.create_batch(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE plans_session")
    monkeypatch.setattr(admin_tools, "ESTIMATE_FROM", 1)
    sql, _ = captured(manager_client, changelist("plans_session"))
    counts = [s for s in sql if re.search(r'COUNT\(\*\).*FROM "plans_session"', s)]
    assert counts == [], counts
    assert any("reltuples" in s for s in sql)


# --- patient search uses an index (PostgreSQL) ------------------------------------------------


def patients_for_search(many=30):
    PatientFactory.create_batch(30)
    if many > 30:  # a working list big enough that walking a whole index costs what it would
        Patient.objects.bulk_create(
            Patient(
                record_number=f"CX-{900000 + n}",
                first_name=f"Given{n}",
                last_name=f"Surname{n:05d}",
                date_of_birth=date(1950 + n % 50, 3, 1),
                sex="F",
            )
            for n in range(many - 30)
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE patients_patient")
    return PatientFactory(last_name="Okonkwo", first_name="Ada", record_number="CX-777001")


def patient_plans(client, url):
    """EXPLAIN of every search query the page runs (those with LIKE), seq scans disabled
    (on a tiny table a seq scan is cheaper, so only 'cannot use an index' shows as one)."""
    sql, page = captured(client, url)
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for one in sql:
            if " LIKE " in one and one.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN " + one)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans, page


@on_postgresql
@pytest.mark.parametrize("query", ["Okon", "CX-777001", "cx-777001"])
@pytest.mark.parametrize("where", ["staff", "admin"])
def test_patient_search_by_surname_prefix_or_record_number_uses_an_index(
    front_desk_client, manager_client, where, query
):
    patient = patients_for_search(many=3000)
    client, url = {
        "staff": (front_desk_client, reverse("patient_list")),
        "admin": (manager_client, changelist("patients_patient")),
    }[where]
    plans, page = patient_plans(client, f"{url}?q={query}")
    assert patient.last_name in page
    assert plans
    for plan in plans:
        assert "Seq Scan on patients_patient" not in plan, plan
        # ...nor a walk of the whole name or primary-key index filtering every row.
        assert re.search(r"Index Scan on patient_\w+_(trgm|idx)", plan), plan
        walked = ("patient_name_idx", "patients_patient_pkey", "patient_list_order_idx")
        assert not [name for name in walked if name in plan], plan


def test_the_staff_search_still_finds_by_prefix_and_record_number_on_any_database(
    front_desk_client,
):
    patient = patients_for_search()
    for query in ("okon", "Ada Okon", "cx-777001"):
        response = front_desk_client.get(reverse("patient_list"), {"q": query})
        assert patient.last_name in response.content.decode(), query
    assert Patient.objects.count() == 31
