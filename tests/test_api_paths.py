"""Every API route with a path parameter answers a malformed value with the
JSON 404 of the error shape, never a 500: a lookup value that is not what
the route stands for (an id that is not a number, a number past the column's
range, a name with characters no name has) must not reach the database.

The routes are read from the URL resolver, so a route added later is probed
too. Each parameter is probed in turn while the others name seeded objects,
so a lookup further down the path is reached."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

MALFORMED = ["null%2Cnull", "x", "-1", "1.5", "99999999999999999999999", "%C3%A9t%C3%A9", "%E2%91%A0", "1%00",
             "a" * 300, "%20", "0x1A", "1e3"]
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>")


def _template(pattern) -> tuple[str, dict[str, str]]:
    """``^datasets/(?P<pk>[0-9]{1,18})/$`` → (``datasets/{pk}/``, {"pk": "[0-9]{1,18}"})."""
    if isinstance(pattern, RoutePattern):
        regexes = {name: converter.regex for name, converter in pattern.converters.items()}
        text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern))
        return text, regexes
    text, out, regexes, i = pattern.regex.pattern, [], {}, 0
    while i < len(text):
        match = _GROUP.match(text, i)
        if not match:
            out.append(text[i])
            i += 1
            continue
        depth, j = 1, match.end()
        while depth:
            if text[j - 1] != "\\":
                depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        regexes[match.group("name")] = text[match.end():j - 1]
        out.append("{" + match.group("name") + "}")
        i = j
    return "".join(out).lstrip("^").rstrip("$").replace("\\.", ".").replace("\\-", "-"), regexes


def _routes(entries=None, prefix: str = "", regexes=None):
    for entry in get_resolver().url_patterns if entries is None else entries:
        text, found = _template(entry.pattern)
        here, known = prefix + text, {**(regexes or {}), **found}
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, here, known)
        elif isinstance(entry, URLPattern):
            yield "/" + here, entry.callback, known


def api_routes_with_parameters() -> list[tuple[str, str, str, str]]:
    """(template, method, parameter, its regex) for every API route and method with a path parameter."""
    found = set()
    for template, callback, regexes in _routes():
        if not template.startswith("/api/v1/") or not regexes:
            continue
        actions = getattr(callback, "actions", None)
        for method in sorted(actions) if actions else ["post"]:
            for name, regex in regexes.items():
                found.add((template, method, name, regex))
    return sorted(found)


ROUTES = api_routes_with_parameters()


def _existing(template: str, name: str, seeded) -> str:
    resource = template.removeprefix("/api/v1/").split("/", 1)[0]
    if name == "version":
        return str(seeded.ids["version"])
    if name in ("pk", "name", "slug"):
        return str(seeded.ids.get(resource, 1))
    return "1"


def test_the_probe_sees_every_kind_of_route():
    templates = {template for template, *_ in ROUTES}
    assert {"/api/v1/datasets/{pk}/", "/api/v1/endpoints/{slug}/predict/", "/api/v1/deployments/{pk}/rollback/",
            "/api/v1/models/{name}/versions/{version}/promotion-requests/",
            "/api/v1/promotion-requests/{pk}/approve/",
            "/api/v1/models/{name}/versions/{version}/transition-requests/",
            "/api/v1/transition-requests/{pk}/approve/",
            "/api/v1/datasets/{pk}/expectations/{expectation_id}/"} <= templates


@pytest.mark.parametrize("route", ROUTES, ids=["-".join(route[:3]) for route in ROUTES])
def test_a_malformed_path_parameter_is_a_json_404(route, api_objects, db):
    from rest_framework.test import APIClient

    from apps.serving.runtime import runtime

    template, method, parameter, regex = route
    runtime.reset()
    client = APIClient(headers=api_objects.headers["superuser"])
    for value in MALFORMED:
        url = template
        for name in re.findall(r"{(\w+)}", template):
            url = url.replace("{" + name + "}", value if name == parameter else _existing(template, name, api_objects))
        response = getattr(client, method)(url, data={}, format="json")
        assert response.status_code < 500, (method, url, response.status_code, response.content[:300])
        if re.fullmatch(regex, unquote(value)):
            # A well-formed value (a name "x"): whatever the API answers for it, but never a 5xx.
            continue
        assert response.status_code == 404, (method, url, response.status_code, response.content[:300])
        body = response.json()
        assert body["error"]["code"] == "not_found", (method, url, body)
        assert set(body["error"]) == {"code", "message", "details"}
