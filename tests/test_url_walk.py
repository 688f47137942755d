"""Walk every URL pattern of the project: an anonymous visitor never gets a page's content.

This test covers URLs that later features add without anyone editing it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Pages that must be reachable without logging in.
PUBLIC_URL_NAMES = {"login", "admin:login"}

SAMPLE_BY_CONVERTER = {
    "IntConverter": "1",
    "StringConverter": "x",
    "SlugConverter": "x",
    "UUIDConverter": "00000000-0000-0000-0000-000000000001",
    "PathConverter": "x/y",
}


def _walk(resolver, prefix="", namespace=None):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            if namespace and entry.namespace:
                ns = f"{namespace}:{entry.namespace}"
            yield from _walk(entry, prefix + _sample(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield name, "/" + prefix + _sample(entry.pattern)


def _sample(pattern):
    """Turn a route or regex into a concrete path with a plausible value per parameter."""
    from django.urls.resolvers import RegexPattern, RoutePattern

    if isinstance(pattern, RoutePattern):
        route = pattern._route
        for name, converter in pattern.converters.items():
            value = SAMPLE_BY_CONVERTER.get(type(converter).__name__, "1")
            for form in (f"<{type_name}:{name}>" for type_name in _type_names(route, name)):
                route = route.replace(form, value)
            route = route.replace(f"<{name}>", value)
        return route
    assert isinstance(pattern, RegexPattern)
    regex = pattern._regex
    # Admin URLs are regexes such as ^(?P<app_label>auth|clinic)/$ : fill groups with a sample.
    import re

    def fill(match):
        body = match.group(2)
        choices = body.split("|")
        return choices[0] if all(c.isidentifier() for c in choices) else "1"

    path = re.sub(r"\(\?P<(\w+)>([^)]*)\)", fill, regex)
    return path.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")


def _type_names(route, name):
    import re

    return re.findall(rf"<(\w+):{name}>", route)


ALL_URLS = sorted(set(_walk(get_resolver())), key=lambda item: item[1])
PRIVATE_URLS = [(name, path) for name, path in ALL_URLS if name not in PUBLIC_URL_NAMES]


def test_the_walk_finds_the_project_pages():
    names = {name for name, _ in ALL_URLS}
    assert {"home", "login", "logout", "admin:index"} <= names


def test_only_the_login_pages_are_public(client):
    public = [path for name, path in ALL_URLS if name in PUBLIC_URL_NAMES]
    assert sorted(public) == ["/admin/login/", "/login/"]
    for path in public:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize(("name", "path"), PRIVATE_URLS, ids=[path for _, path in PRIVATE_URLS])
def test_anonymous_request_never_gets_content(client, name, path):
    for method in (client.get, client.post):
        response = method(path)
        assert response.status_code != 200 or not response.content, (
            f"{path} answered 200 with content to an anonymous {method.__name__.upper()}"
        )
        if response.status_code in (301, 302):
            assert "login" in response.url, f"{path} redirected an anonymous visitor elsewhere"
