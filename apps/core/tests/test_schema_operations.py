"""Every operation a client can call under /api/v1/ is in the OpenAPI
document (/api/schema/, which Swagger UI at /api/docs/ reads).

The operations are read from the URL resolver, not from the schema
generator, so a route the generator cannot see (a plain Django view such as
the predict path) is caught: DRF views state their methods (a viewset's
action map, an APIView's handlers); a plain view is asked, and a method it
answers with 405 is not an operation."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

METHODS = ["get", "post", "put", "patch", "delete"]
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>(?:\\.|\[[^\]]*\]|[^()\\])*\)")


def _openapi_path(pattern) -> str:
    """``<slug:slug>/predict/`` and ``^endpoints/(?P<slug>[-a-z0-9]{1,100})/$`` as OpenAPI templates."""
    text = str(pattern)
    if isinstance(pattern, RoutePattern):
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    text = _NAMED_GROUP.sub(lambda match: "{" + match.group(1) + "}", pattern.regex.pattern)
    return text.removeprefix("^").removesuffix("$").replace("\\.", ".").replace("\\-", "-")


def _routes(entries=None, prefix: str = ""):
    for entry in get_resolver().url_patterns if entries is None else entries:
        here = prefix + _openapi_path(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, here)
        elif isinstance(entry, URLPattern):
            yield "/" + here, entry.callback


def _plain_view_methods(path: str, callback) -> set[str]:
    """The methods a plain view answers with anything but 405 (asked anonymously)."""
    url = re.sub(r"{\w+}", "x", path)
    kwargs = dict.fromkeys(re.findall(r"{(\w+)}", path), "x")
    factory = RequestFactory()
    found = set()
    for method in METHODS:
        if method == "get":
            request = factory.get(url)
        else:
            request = getattr(factory, method)(url, data=b"{}", content_type="application/json")
        if callback(request, **kwargs).status_code != 405:
            found.add(method)
    return found


def routed_operations() -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every operation routed under /api/v1/."""
    operations = set()
    for path, callback in _routes():
        if not path.startswith("/api/v1/"):
            continue
        if getattr(callback, "actions", None):  # a viewset route
            # (DRF adds "head" to a viewset's action map at its first GET: only real operations count.)
            methods = set(callback.actions) & set(METHODS)
        elif getattr(callback, "cls", None) is not None:  # an APIView
            methods = {m for m in METHODS if hasattr(callback.cls, m)}
        else:
            methods = _plain_view_methods(path, callback)
        operations |= {(path, method) for method in methods}
    return operations


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_resolver_walk_finds_every_kind_of_route():
    operations = routed_operations()
    assert {("/api/v1/endpoints/{slug}/predict/", "post"),  # a plain Django view
            ("/api/v1/endpoints/{slug}/feedback/", "post"),  # a viewset action
            ("/api/v1/auth/token/", "post"),  # an APIView
            ("/api/v1/models/{name}/versions/{version}/promotion-requests/", "get"),
            ("/api/v1/models/{name}/versions/{version}/transition-requests/", "get"),
            ("/api/v1/runs/{pk}/metrics/{key}/history/", "get")} <= operations
    assert ("/api/v1/endpoints/{slug}/predict/", "get") not in operations  # it answers 405
    assert len(operations) > 80


@pytest.mark.django_db
def test_every_routed_operation_is_in_the_schema(openapi):
    documented = set()
    for path, item in openapi["paths"].items():
        # The schema names a detail route's key after the model field ("id"); the route says "pk".
        documented |= {(path.replace("{id}", "{pk}"), method) for method in item if method in METHODS}
    missing = sorted(routed_operations() - documented)
    assert missing == [], f"routed under /api/v1/ but absent from /api/schema/: {missing}"


def test_swagger_ui_reads_that_schema(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    script = client.get("/api/docs/?script=").content.decode()
    assert "/api/schema/" in script


def _schema_of(openapi: dict, content: dict) -> dict:
    schema = content["application/json"]["schema"]
    return openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema


def test_the_predict_operation_states_its_body_and_every_answer_the_view_gives(openapi):
    operation = openapi["paths"]["/api/v1/endpoints/{slug}/predict/"]["post"]
    assert operation["requestBody"]["required"] is True
    body = _schema_of(openapi, operation["requestBody"]["content"])
    assert body["required"] == ["instances"] and body["properties"]["instances"]["type"] == "array"
    # apps/serving/api/predict.py and apps/serving/services/predictions.py answer exactly these.
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "413", "500", "503"}
    assert "predictions" in _schema_of(openapi, operation["responses"]["200"]["content"])["properties"]
    for code in ("400", "404", "500", "503"):
        assert _schema_of(openapi, operation["responses"][code]["content"])["required"] == ["error"], code


# Words that would promise an app; each may appear only once the app is installed.
_PROMISES = {"apps.abtests": ["a/b", "abtest", "experiment arm"], "apps.monitoring": ["monitoring", "drift"],
             "apps.retraining": ["retraining", "retrain"]}


def test_the_description_promises_no_app_that_is_not_installed(openapi, settings):
    description = openapi["info"]["description"].lower()
    for app, words in _PROMISES.items():
        if app not in settings.INSTALLED_APPS:
            assert not [word for word in words if word in description], (app, description)
    assert "mlflow" not in description
