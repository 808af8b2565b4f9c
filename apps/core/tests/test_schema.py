"""The OpenAPI document states the error shape of every 4xx and the type of
every id in a path, so that clients (and the API fuzz) can rely on it."""

import pytest


@pytest.fixture
def openapi(client):
    return client.get("/api/schema/", {"format": "json"}).json()


def test_the_error_shape_is_a_component(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert schemas["Error"]["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message", "details"}


def test_every_operation_documents_its_4xx_with_the_error_shape(openapi):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
            assert "401" in errors, (method, path)
            if "{" in path:
                assert "404" in errors, (method, path)
            for code, response in errors.items():
                assert response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error", (
                    method, path, code)


def test_ids_in_paths_are_bounded_integers(openapi):
    seen = 0
    for path, item in openapi["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ("id", "version", "expectation_id"):
                    assert parameter["schema"]["type"] == "integer", (path, parameter)
                    assert parameter["schema"]["maximum"] < 2**63, (path, parameter)
                    seen += 1
    assert seen > 40


def test_names_and_slugs_in_paths_state_their_pattern(openapi):
    for path, item in openapi["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ("name", "slug", "alias", "key"):
                    assert parameter["schema"].get("pattern"), (path, parameter)
