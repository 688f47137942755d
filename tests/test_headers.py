"""Security headers on every page a logged-in user sees (issue 11, points 8 and 11).

A strict Content-Security-Policy (no inline script or style, so an injected `<img onerror>`
cannot run), a Permissions-Policy that switches off the browser's sensors and payment, and
`Cache-Control: no-store` so that patient pages never sit in a shared or back-button cache.
The walk covers every URL pattern of the project and the admin, so later pages are checked too.
"""

import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from clinic.models import CalendarFeed
from plans.models import Treatment, TreatmentParameter
from tests.factories import frozen, staff_world, treatment

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INLINE_ATTRIBUTE = re.compile(r"\son[a-z]+\s*=|\sstyle\s*=", re.IGNORECASE)

# The one inline style attribute of a third-party template (django-simple-history's record
# history list). Under the policy the browser ignores it: the paginator keeps its top border.
KNOWN_THIRD_PARTY = {'<p class="paginator" style="border-top: 0">'}


def directives(header):
    """{'script-src': ["'self'"], ...} from a Content-Security-Policy header."""
    found = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            found[words[0].lower()] = words[1:]
    return found


STRICT = {
    "default-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}


def _page_policy_problems(policy, label):
    problems = []
    for name in ("script-src", "style-src"):
        sources = policy.get(name, policy.get("default-src", []))
        if "'unsafe-inline'" in sources or "'unsafe-eval'" in sources or "*" in sources:
            problems.append(f"{label}: {name} {' '.join(sources)}")
    for name, sources in STRICT.items():
        if policy.get(name) != sources:
            problems.append(f"{label}: {name} is {policy.get(name)}, expected {sources}")
    if sorted(policy.get("img-src", [])) != sorted(["'self'", "data:"]):
        problems.append(f"{label}: img-src is {policy.get('img-src')}")
    return problems


def policy_problems(response, label):
    """What is wrong with a response's CSP, Permissions-Policy and Cache-Control headers."""
    problems = []
    csp = response.headers.get("Content-Security-Policy")
    if not csp:
        return [f"{label}: no Content-Security-Policy"]
    policy = directives(csp)
    if "sandbox" in policy:
        # A stored upload keeps its own policy (clinic/uploads.py): sandboxed, no script at all.
        if policy.get("default-src") != ["'none'"]:
            problems.append(f"{label}: upload policy {csp}")
    else:
        problems += _page_policy_problems(policy, label)
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        if f"{feature}=()" not in permissions:
            problems.append(f"{label}: Permissions-Policy does not switch off {feature}")
    if "no-store" not in response.headers.get("Cache-Control", ""):
        problems.append(f"{label}: Cache-Control is {response.headers.get('Cache-Control')!r}")
    return problems


class _InlineCode(HTMLParser):
    """Collects what a strict policy would refuse: on...= handlers, style attributes, inline
    <script> (JSON data blocks are not run, so they are fine) and <style> without the nonce."""

    def __init__(self, nonce):
        super().__init__(convert_charrefs=True)
        self.nonce = nonce
        self.found = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
        data_block = names.get("type") in ("application/json", "application/ld+json")
        if tag == "script" and "src" not in names and not data_block:
            self.found.append("inline <script>")
        if tag == "style" and (not self.nonce or names.get("nonce") != self.nonce):
            self.found.append("<style> without the response's nonce")

    handle_startendtag = handle_starttag


def inline_code(response):
    body = response.content.decode("utf-8", errors="replace")
    for known in KNOWN_THIRD_PARTY:
        body = body.replace(known, "<p>")
    nonce = re.search(r"'nonce-([^']+)'", response.headers.get("Content-Security-Policy", ""))
    parser = _InlineCode(nonce.group(1) if nonce else None)
    parser.feed(body)
    return parser.found


def is_html(response):
    return response.headers.get("Content-Type", "").startswith("text/html")


# --- the walk ------------------------------------------------------------------------------


def _routes(resolver=None, prefix=""):
    """(name, route) of every pattern outside the admin, e.g. ("plan_detail", "plans/<int:pk>/")."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            yield from _routes(entry, prefix + entry.pattern._route)
        elif isinstance(entry, URLPattern) and isinstance(entry.pattern, RoutePattern):
            yield entry.name, prefix + entry.pattern._route


def _paths(route, w):
    """Concrete paths for a route, with the staff world's records in every parameter."""
    by_prefix = {
        "patients/": [w.patient.pk],
        "plans/": [w.plan.pk, w.draft.pk],
        "sessions/": [w.done.pk, w.session.pk],
        "adverse-events/": [w.event.pk],
        "photos/": [w.photo.pk],
    }
    pks = next((v for p, v in by_prefix.items() if route.startswith(p)), [999999])
    fixed = {
        "site_pk": w.site.pk,
        "flag_pk": w.flag.pk,
        "consent_pk": w.consent.pk,
        "plan_pk": w.plan.pk,
        "token": w.feed.token,
        "action": "on",
    }
    paths = []
    for pk in pks:
        path = re.sub(r"<(?:\w+:)?pk>", str(pk), route)
        for name, value in fixed.items():
            path = re.sub(rf"<(?:\w+:)?{name}>", str(value), path)
        assert "<" not in path, f"No sample value for a parameter of {route}"
        paths.append("/" + path)
    return paths


@pytest.fixture
def world(clinician):
    found = staff_world(clinician)
    found.feed = CalendarFeed.objects.create(user=clinician)
    return found


# Pages the walk must open with content, or it proves little.
MUST_OPEN = {
    "home",
    "patient_list",
    "patient_detail",
    "plan_create",
    "plan_detail",
    "session_detail",
    "session_log",
    "patient_report",
    "clinic_outcomes",
    "assessment_add",
    "diary_day",
    "account",
}


def test_every_page_a_manager_opens_has_the_headers_and_no_inline_code(manager_client, world):
    problems, opened = [], set()
    with frozen():
        for name, route in sorted(set(_routes())):
            if name == "logout":
                continue
            for path in _paths(route, world):
                queries = [{}] + ([{"performed_today": "1"}] if name == "session_log" else [])
                for query in queries:
                    response = manager_client.get(path, query)
                    label = f"GET {path} ({response.status_code})"
                    problems += policy_problems(response, label)
                    if is_html(response):
                        problems += [f"{label}: {found}" for found in inline_code(response)]
                    if response.status_code == 200:
                        opened.add(name)
    assert opened >= MUST_OPEN, sorted(MUST_OPEN - opened)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ["front_desk_client", "clinician_client"])
def test_other_roles_pages_have_the_headers_too(request, role, world):
    client = request.getfixturevalue(role)
    problems = []
    with frozen():
        for path in [
            reverse("home"),
            reverse("patient_detail", args=[world.patient.pk]),
            reverse("plan_detail", args=[world.plan.pk]),
            reverse("session_detail", args=[world.done.pk]),
            reverse("patient_report", args=[world.patient.pk]),  # 403 for front desk
            "/no-such-page/",
        ]:
            response = client.get(path)
            label = f"GET {path} ({response.status_code})"
            problems += policy_problems(response, label)
            problems += [f"{label}: {found}" for found in inline_code(response)]
    assert not problems, "\n".join(problems)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root_user", password="x-Δ-2026-root")


def test_every_admin_page_has_the_headers_and_no_inline_code(client, superuser, world):
    client.force_login(superuser)
    paths = [reverse("admin:index"), reverse("admin:password_change")]
    for model in admin.site._registry:
        meta = model._meta
        paths.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        paths.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            change = f"admin:{meta.app_label}_{meta.model_name}_change"
            paths.append(reverse(change, args=[first.pk]))
            paths.append(reverse(change, args=[first.pk]).replace("/change/", "/history/"))
    problems, opened = [], 0
    for path in paths:
        response = client.get(path)
        label = f"GET {path} ({response.status_code})"
        opened += response.status_code == 200
        problems += policy_problems(response, label)
        if is_html(response):
            problems += [f"{label}: {found}" for found in inline_code(response)]
    assert opened > 30
    assert not problems, "\n".join(problems)


def test_the_login_page_has_the_policy(client):
    for path in (reverse("login"), reverse("admin:login")):
        response = client.get(path)
        assert response.status_code == 200
        csp = directives(response.headers["Content-Security-Policy"])
        assert "'unsafe-inline'" not in csp["script-src"] + csp["style-src"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert inline_code(response) == []


def test_static_files_keep_their_long_cache_for_a_logged_in_user(manager_client):
    response = manager_client.get("/static/css/cicatrix.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_an_uploaded_file_keeps_its_own_sandbox_policy(manager_client, world):
    response = manager_client.get(reverse("photo", args=[world.photo.pk]))
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert "no-store" in response.headers["Cache-Control"]


def test_the_report_styles_carry_the_nonce_of_their_response(clinician_client, world):
    first = clinician_client.get(reverse("patient_report", args=[world.patient.pk]))
    second = clinician_client.get(reverse("patient_report", args=[world.patient.pk]))
    nonces = [
        re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
        for r in (first, second)
    ]
    assert nonces[0] != nonces[1]
    assert f'<style nonce="{nonces[0]}">' in first.content.decode()


def test_no_template_has_an_inline_handler_or_style_attribute():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            if INLINE_ATTRIBUTE.search(line):
                found.append(f"{template.relative_to(TEMPLATES)}:{number}: {line.strip()}")
            if re.search(r"<script(?![^>]*\bsrc=)", line):
                found.append(f"{template.relative_to(TEMPLATES)}:{number}: inline <script>")
    assert not found, "\n".join(found)


def test_the_grep_finds_what_it_looks_for():
    for line in ('<select onchange="go()">', '<img style="x">', "<b\tonclick = 'y'>"):
        assert INLINE_ATTRIBUTE.search(line)
    assert not INLINE_ATTRIBUTE.search('<a data-confirm="x" class="on">')


# --- a parameter's unit reaches the page escaped -------------------------------------------

# At most 20 characters: the unit column's length, which PostgreSQL enforces.
PAYLOAD = "<svg/onload=alert()>"


def test_a_parameter_unit_is_escaped_in_the_log_page_help_text(clinician_client, world):
    TreatmentParameter.objects.create(
        treatment=treatment("microneedling"),
        code="depth_probe",
        label="Probe depth",
        kind=TreatmentParameter.Kind.NUMBER,
        unit=PAYLOAD,
        min_value=Decimal("0.5"),
        max_value=Decimal("2.5"),
        required=False,
        order=99,
    )
    with frozen():
        response = clinician_client.get(
            reverse("session_log", args=[world.session.pk]), {"performed_today": "1"}
        )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Probe depth" in body
    assert PAYLOAD not in body
    assert "0.5-2.5 &lt;svg/onload=alert()&gt;" in body
    assert inline_code(response) == []


def test_planned_parameter_units_and_treatment_names_are_escaped_in_the_plan_builder(
    clinician_client, world
):
    """The planned-value fields' labels carry the unit, their help texts the treatment names."""
    TreatmentParameter.objects.filter(code="concentration").update(unit=PAYLOAD)
    Treatment.objects.filter(code="chemical_peel").update(name="<b/onclick=x>Peel")
    response = clinician_client.get(reverse("plan_create", args=[world.patient.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Concentration (&lt;svg/onload=alert()&gt;)" in body
    assert "For &lt;b/onclick=x&gt;Peel 1-100" in body
    assert PAYLOAD not in body and "<b/onclick" not in body
