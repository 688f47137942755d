"""Hostile input on every form of every staff page and every admin form: never a 500.

The walk reads the forms off the pages themselves (tests/factories.py `browser_form`'s reader),
so forms that later features add are fuzzed without anyone editing this file. Each form gets a
fixed number of submissions from a seeded generator: one field at a time takes a hostile value
(empty, 10k characters, NUL bytes, bidi marks, emoji, combining marks, HTML, SQL, 20-digit and
negative numbers, dates out of range, JSON that is not an object, ids that do not exist,
TOTAL_FORMS=100000), the rest stay as the browser would send them, so the value reaches as deep
into the view as it can. Every submission runs in a savepoint that is rolled back, so one
accepted change does not take the next form off the page.

SQLite stores what PostgreSQL refuses (NUL in text), and PostgreSQL compares what SQLite cannot
bind (integers past 64 bits): a statement wrapper refuses both on either database, so a run on
one database catches what would be a 500 on the other.
"""

import random
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.core.signals import got_request_exception
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from tests.factories import TODAY, _FormReader, frozen, staff_world
from tests.test_front_desk_privacy import _routes

pytestmark = pytest.mark.django_db

SEED = 20261105
ROUNDS = 8  # hostile submissions per form and role
INT64 = 2**63

DEEP_JSON = "[" * 100_000 + "]" * 100_000
TEXT = [
    "",
    "x" * 10_000,
    "a\x00b",
    "\x00",
    "\u202egnp.exe\u202c \u200f\u200e",
    "😀🧪👩🏽‍⚕️" * 20,
    "e\u0301\u0302\u0303\u0304 Z\u0351\u0352\u0353",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "'; DROP TABLE patients_patient; -- \" OR 1=1 --",
]
NUMBER = ["12345678901234567890", "-12345678901234567890", "-1", "999999999", "1e309", "NaN"]
DATE = ["0001-01-01", "9999-12-31", "99999-01-01", "2026-02-30", "garbage", "9999-12-31T23:59"]
JSON = ["[]", "null", '"text"', "42", DEEP_JSON, '{"a": "\\u0000"}', "{not json"]
HOSTILE = TEXT + NUMBER + DATE + JSON


def _kind(value):
    """What the browser would send in this field looks like: date, number, JSON or text."""
    value = value if isinstance(value, str) else (value[0] if value else "")
    if len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        return DATE
    if value.lstrip("-").isdigit():
        return NUMBER + ["0"]
    if value[:1] in "{[" or value == "null":
        return JSON
    return TEXT


def _value_for(name, base, rng):
    if name.endswith("TOTAL_FORMS"):
        return rng.choice(["100000", "-1", "12345678901234567890"])
    typed = _kind(base)
    # Mostly a value of the field's own kind (it gets furthest); sometimes anything at all.
    return rng.choice(typed) if rng.random() < 0.7 else rng.choice(HOSTILE)


def _refuse_what_a_database_refuses(execute, sql, params, many, context):
    for row in params if many else [params]:
        for value in row or ():
            if isinstance(value, str) and "\x00" in value:
                raise AssertionError(f"a NUL byte reached the database: {sql[:200]}")
            if isinstance(value, int) and not -INT64 <= value < INT64:
                raise AssertionError(f"an integer past 64 bits reached the database: {value}")
    return execute(sql, params, many, context)


class Recorder:
    """Server errors, with the exception the view raised, named by what was sent."""

    def __init__(self):
        self.problems = []
        self.submissions = 0
        self._last = None

    def __call__(self, sender, request=None, **kwargs):
        import sys

        self._last = repr(sys.exc_info()[1])[:300]

    @contextmanager
    def sending(self):
        self._last = None
        with transaction.atomic():
            yield
            transaction.set_rollback(True)

    def check(self, response, label):
        self.submissions += 1
        if response.status_code >= 500:
            self.problems.append(f"{label} -> {response.status_code} {self._last or ''}")


def _client(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _forms(response, page):
    """(method, action, {name: value}) of every form on a page."""
    reader = _FormReader()
    reader.feed(response.content.decode(errors="replace"))
    found = []
    for form in reader.forms:
        attrs = form["attrs"]
        action = attrs.get("action") or page
        parts = urlsplit(action)
        if parts.netloc or "logout" in action or "/login/" in action:
            continue
        method = (attrs.get("method") or "get").lower()
        values = {}
        for name, value in form["fields"]:
            values.setdefault(name, []).append(value)
        found.append((method, action, {n: v[0] if len(v) == 1 else v for n, v in values.items()}))
    return found


def _fuzz_form(client, recorder, label, method, action, base, rng):
    send = client.post if method == "post" else client.get
    names = [n for n in base if n != "csrfmiddlewaretoken"]
    plans = [dict.fromkeys(names, "")]  # everything empty
    rng.shuffle(names)
    for n in range(ROUNDS):
        if names:
            name = names[n % len(names)]
            plans.append({name: _value_for(name, base[name], rng)})
    # Parameters no form shows but views read: where to go next, and a day.
    plans.append({"next": rng.choice(["1", "//evil.example/", "javascript:alert(1)"])})
    for change in plans:
        data = {**base, **change}
        with recorder.sending():
            response = send(action, data)
        shown = (
            {
                k: (v[:40] + "…" if isinstance(v, str) and len(v) > 40 else v)
                for k, v in change.items()
            }
            if len(change) < 4
            else "all fields empty"
        )
        recorder.check(response, f"{label} {method.upper()} {action} {shown!r}")


def _staff_paths(world):
    ids = {
        "pk": None,
        "site_pk": world.site.pk,
        "flag_pk": world.flag.pk,
        "consent_pk": world.consent.pk,
        "plan_pk": world.plan.pk,
        "token": "no-such-token",
        "action": "on",
    }
    by_prefix = {
        "patients/": [world.patient.pk],
        "plans/": [world.plan.pk, world.draft.pk],
        "sessions/": [world.done.pk, world.session.pk],
        "adverse-events/": [world.event.pk],
        "photos/": [world.photo.pk],
    }
    import re

    for name, route in sorted(set(_routes())):
        if name in ("logout", "login", "password_change"):
            continue
        pks = next((v for p, v in by_prefix.items() if route.startswith(p)), [999999])
        for pk in pks if "<" in route else [None]:
            path = route
            for key, value in {**ids, "pk": pk}.items():
                path = re.sub(rf"<(?:\w+:)?{key}>", str(value), path)
            yield name, "/" + path


def test_no_staff_form_answers_hostile_input_with_a_server_error(front_desk, clinician, manager):
    started = time.monotonic()
    world = staff_world(clinician)
    recorder = Recorder()
    got_request_exception.connect(recorder)
    rng = random.Random(SEED)
    fuzzed = set()
    try:
        with connection.execute_wrapper(_refuse_what_a_database_refuses), frozen(TODAY):
            for role, user in (
                ("front desk", front_desk),
                ("clinician", clinician),
                ("manager", manager),
            ):
                client = _client(user)
                seen = set()
                for _, path in _staff_paths(world):
                    with recorder.sending():
                        page = client.get(path)
                    recorder.check(page, f"{role} GET {path}")
                    for query in ({"day": rng.choice(DATE)}, {"page": "12345678901234567890"}):
                        with recorder.sending():
                            recorder.check(client.get(path, query), f"{role} GET {path} {query}")
                    if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
                        continue
                    for method, action, base in _forms(page, path):
                        key = (method, action, tuple(sorted(base)))
                        if key in seen:
                            continue
                        seen.add(key)
                        fuzzed.add((role, _route_name(action)))
                        _fuzz_form(client, recorder, role, method, action, base, rng)
    finally:
        got_request_exception.disconnect(recorder)
    elapsed = time.monotonic() - started
    print(f"staff fuzz: {recorder.submissions} requests in {elapsed:.1f} s")
    # The walk reaches the forms people type into most, or it proves nothing.
    assert fuzzed >= MUST_FUZZ, sorted(MUST_FUZZ - fuzzed)
    assert recorder.submissions > 500
    assert not recorder.problems, "\n".join(recorder.problems)


MUST_FUZZ = {
    ("front desk", "patient_create"),
    ("front desk", "patient_edit"),
    ("front desk", "session_move"),
    ("front desk", "appointment_new"),
    ("front desk", "patient_list"),
    ("clinician", "session_log"),
    ("clinician", "session_amend"),
    ("clinician", "plan_create"),
    ("clinician", "scar_site_add"),
    ("clinician", "flag_add"),
    ("clinician", "assessment_add"),
    ("clinician", "adverse_event_resolve"),
    ("manager", "clinic_outcomes"),
    ("manager", "patient_import"),
}


def _route_name(action):
    from django.urls import Resolver404, resolve

    try:
        return resolve(urlsplit(action).path).url_name
    except Resolver404:
        return action


def test_no_admin_form_answers_hostile_input_with_a_server_error(clinician, manager):
    started = time.monotonic()
    staff_world(clinician)
    recorder = Recorder()
    got_request_exception.connect(recorder)
    rng = random.Random(SEED)
    client = _client(manager)
    opened = 0
    try:
        with connection.execute_wrapper(_refuse_what_a_database_refuses), frozen(TODAY):
            for model, model_admin in sorted(
                admin.site._registry.items(), key=lambda item: item[0]._meta.label
            ):
                opts = model._meta
                prefix = f"admin:{opts.app_label}_{opts.model_name}"
                changelist = reverse(f"{prefix}_changelist")
                for query in _changelist_queries(model_admin, rng):
                    with recorder.sending():
                        response = client.get(changelist, query)
                    recorder.check(response, f"manager GET {changelist} {query!r}")
                pages = [reverse(f"{prefix}_add")]
                first = model.objects.order_by("pk").first()
                if first is not None:
                    pages.append(reverse(f"{prefix}_change", args=[first.pk]))
                for page in pages:
                    response = client.get(page)
                    recorder.check(response, f"manager GET {page}")
                    if response.status_code != 200:
                        continue
                    opened += 1
                    for method, action, base in _forms(response, page):
                        if method == "post" and action == page:
                            _fuzz_form(client, recorder, "manager", method, action, base, rng)
    finally:
        got_request_exception.disconnect(recorder)
    elapsed = time.monotonic() - started
    print(f"admin fuzz: {recorder.submissions} requests on {opened} forms in {elapsed:.1f} s")
    assert opened > 20
    assert not recorder.problems, "\n".join(recorder.problems)


def _changelist_queries(model_admin, rng):
    """Search, ordering, paging, date drill-down and list filter parameters, all hostile."""
    queries = [
        {"q": "a\x00b"},
        {"q": "x" * 10_000},
        {"o": "99.-abc"},
        {"p": "12345678901234567890"},
    ]
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        queries += [
            {f"{field}__year": "99999999999"},
            {f"{field}__year": "2026", f"{field}__month": "13", f"{field}__day": "99"},
            {f"{field}__year": "0"},
        ]
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            queries.append({f"{entry}__exact": rng.choice(HOSTILE[:9] + NUMBER)})
            queries.append({f"{entry}__id__exact": "12345678901234567890"})
    return queries
