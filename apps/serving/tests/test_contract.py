"""The predict and feedback calls, the lab software's most frequent, are in
the OpenAPI document with their request and response bodies."""

import pytest


@pytest.fixture
def openapi(client):
    return client.get("/api/schema/", {"format": "json"}).json()


def _body(openapi, ref_holder: dict) -> dict:
    ref = ref_holder["schema"]["$ref"]
    return openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_predict_is_documented_with_its_request_and_answer(openapi):
    operation = openapi["paths"]["/api/v1/endpoints/{slug}/predict/"]["post"]
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    request = _body(openapi, operation["requestBody"]["content"]["application/json"])
    assert request["required"] == ["instances"]
    assert request["properties"]["instances"]["items"]["type"] == "object"
    assert "unit_id" in request["properties"]
    answer = _body(openapi, operation["responses"]["200"]["content"]["application/json"])
    assert {"request_id", "model", "version", "deployment_id", "predictions", "serving_path"} <= set(
        answer["required"])
    assert "probabilities" in answer["properties"]
    for code in ("400", "401", "403", "404", "503"):
        assert operation["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == ["slug"]


def test_feedback_is_documented_with_its_request_and_answer(openapi):
    operation = openapi["paths"]["/api/v1/endpoints/{slug}/feedback/"]["post"]
    request = _body(openapi, operation["requestBody"]["content"]["application/json"])
    item = openapi["components"]["schemas"][request["properties"]["feedback"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"request_id", "label"} <= set(item["required"])
    answer = _body(openapi, operation["responses"]["200"]["content"]["application/json"])
    assert set(answer["required"]) == {"received", "joined", "unknown"}
    assert operation["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_the_predict_view_itself_is_unchanged_by_its_documentation():
    """The contract is a separate, never-dispatched view: the served view
    carries nothing the request path would look at."""
    from apps.serving.api.predict import predict_view

    assert not hasattr(predict_view, "cls")
    assert not hasattr(predict_view, "max_body_size")
