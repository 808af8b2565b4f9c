"""POST /api/v1/endpoints/<slug>/predict/: answers, every error shape, no
database query in the steady state, sticky routing, fast refresh."""

import json
import time

import pytest

from apps.core.permissions import make_private
from apps.registry.choices import Stage
from apps.serving import logbuffer, services
from apps.serving.models import PredictionLog
from apps.serving.runtime import runtime
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version, tick_once

pytestmark = pytest.mark.django_db
URL = "/api/v1/endpoints/sample-qc/predict/"


@pytest.fixture
def served(engineer):
    version = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    endpoint = make_endpoint(owner=engineer, max_batch_size=20)
    deployment = deploy(endpoint=endpoint, version=version, actor=engineer)
    return endpoint, deployment, version


@pytest.fixture
def as_user(client, api_key_for):
    """``as_user(user)(body, url=...)`` POSTs to the predict path with an API key of ``user``."""

    def _for(user):
        headers = api_key_for(user) if user is not None else {}
        return lambda body, url=URL: post(client, body, headers, url=url)

    return _for


@pytest.fixture
def as_engineer(as_user, engineer):
    return as_user(engineer)


def post(client, body, headers, url=URL):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **headers)


def error_of(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def test_predicts_with_probabilities_version_and_request_id(client, engineer, served, api_key_for):
    _endpoint, deployment, version = served
    example = version.input_example
    response = post(client, {"instances": example[:3], "unit_id": "S-0001"}, api_key_for(engineer))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == "sample-qc" and body["version"] == version.version
    assert body["deployment_id"] == deployment.pk
    assert body["serving_path"] == "onnx"
    assert len(body["predictions"]) == 3 and set(body["predictions"]) <= {0, 1}
    for prediction, probabilities in zip(body["predictions"], body["probabilities"], strict=True):
        assert set(probabilities) == {"0", "1"}
        assert abs(sum(probabilities.values()) - 1) < 1e-9
        assert prediction == int(max(probabilities, key=probabilities.get))
    assert response["X-Request-ID"] == body["request_id"]

    assert logbuffer.flush() == 1
    log = PredictionLog.objects.get()
    assert (log.request_id, log.unit_id, log.n_instances, log.status_code) == (body["request_id"], "S-0001", 3, 200)
    assert log.predictions == body["predictions"] and log.inputs == example[:3]
    assert log.deployment_id == deployment.pk and log.model_version_id == version.pk
    assert 0 < log.latency_ms < 5000 and log.serving_path == "onnx"


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"sample_type": "plasma"}, "sample_type", "unknown_category"),
    ({"concentration_ng_ul": "high"}, "concentration_ng_ul", "wrong_type"),
    ({"freeze_thaw_cycles": None}, "freeze_thaw_cycles", "null_not_allowed"),
    ({"days_in_storage": "__missing__"}, "days_in_storage", "missing_field"),
])
def test_invalid_instances_get_a_400_naming_the_instance_and_field(as_engineer, served, change, field, code):
    _endpoint, _deployment, version = served
    bad = {**version.input_example[0], **change}
    bad = {k: v for k, v in bad.items() if v != "__missing__"}
    response = as_engineer({"instances": [version.input_example[0], bad]})
    error = error_of(response, 400, code)
    assert error["details"] == {"instance": 1, "field": field}
    assert field in error["message"]
    logbuffer.flush()
    assert PredictionLog.objects.get().status_code == 400  # refused requests are logged too


@pytest.mark.parametrize(("body", "code"), [
    ("{not json", "malformed_request"),
    ([1, 2], "malformed_request"),
    ({"instances": []}, "validation_failed"),
    ({"instances": "x"}, "validation_failed"),
    ({"instances": [{}], "unit_id": {"a": 1}}, "validation_failed"),
])
def test_malformed_bodies(as_engineer, served, body, code):
    error_of(as_engineer(body), 400, code)


def test_too_many_instances(client, engineer, served, api_key_for):
    _endpoint, _deployment, version = served
    error = error_of(post(client, {"instances": version.input_example[:1] * 21}, api_key_for(engineer)), 400,
                     "too_many_instances")
    assert error["details"]["max_batch_size"] == 20


def test_authentication_and_permissions(client, as_user, engineer, viewer, make_user, served):  # noqa: PLR0917
    endpoint, _deployment, version = served
    body = {"instances": version.input_example[:1]}
    error_of(as_user(None)(body), 401, "not_authenticated")
    error_of(post(client, body, {"HTTP_AUTHORIZATION": "Api-Key tsk_nope.nope"}), 401, "authentication_failed")
    error_of(as_user(viewer)(body), 403, "permission_denied")  # sees it, may not predict
    error_of(as_user(engineer)(body, url="/api/v1/endpoints/nope/predict/"), 404, "not_found")
    outsider = as_user(make_user("Data Scientist", username="outsider"))
    assert outsider(body).status_code == 200
    make_private(endpoint)
    runtime.reset()
    error_of(outsider(body), 404, "not_found")  # may not even see it now
    assert client.get(URL).status_code == 405


def test_session_callers_need_the_csrf_token(engineer, served):
    from django.test import Client

    _endpoint, _deployment, version = served
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(engineer)
    body = json.dumps({"instances": version.input_example[:1]})
    assert browser.post(URL, data=body, content_type="application/json").status_code == 403
    browser.get("/serving/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(URL, data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content


def test_no_healthy_deployment_is_a_503(client, engineer, api_key_for, served):
    make_endpoint(owner=engineer, slug="empty")
    error = error_of(post(client, {"instances": [{}]}, api_key_for(engineer), url="/api/v1/endpoints/empty/predict/"),
                     503, "no_healthy_deployment")
    assert error["details"]["endpoint"] == "empty"


def test_no_database_query_per_request_after_warm_up(client, engineer, served, api_key_for,
                                                     django_assert_num_queries):
    _endpoint, _deployment, version = served
    headers = api_key_for(engineer)
    body = json.dumps({"instances": version.input_example[:2]})
    assert client.post(URL, data=body, content_type="application/json", **headers).status_code == 200
    with django_assert_num_queries(0):
        for i in range(20):
            response = client.post(URL, data=body, content_type="application/json", **headers)
            assert response.status_code == 200
            bad = client.post(URL, data=json.dumps({"instances": [{"x": i}]}), content_type="application/json",
                              **headers)
            assert bad.status_code == 400


def test_sticky_units_and_a_traffic_change_served_within_a_second(client, engineer, api_key_for,
                                                                   django_capture_on_commit_callbacks):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    url = "/api/v1/endpoints/qc-staging/predict/"
    headers = api_key_for(engineer)
    example = v1.input_example[:1]

    def version_for(unit):
        response = post(client, {"instances": example, "unit_id": unit}, headers, url=url)
        assert response.status_code == 200, response.content
        return response.json()["version"]

    assert {version_for(f"S-{i}") for i in range(30)} == {1}
    canary = services.deployment_start(endpoint=endpoint, model_version=v2, strategy="canary",
                                       config={"steps": [50, 100]}, actor=engineer)
    # The test's transaction never commits: run the after-commit stamp bump by hand.
    with django_capture_on_commit_callbacks(execute=True):
        tick_once(canary)
    changed_at = time.monotonic()
    seen = None
    while time.monotonic() - changed_at < 1.0:
        if {version_for(f"S-{i}") for i in range(30)} == {1, 2}:
            seen = time.monotonic() - changed_at
            break
    assert seen is not None, "the new split was not served within a second"
    first = [version_for(f"S-{i}") for i in range(200)]
    assert [version_for(f"S-{i}") for i in range(200)] == first  # sticky
    assert 0.35 < first.count(2) / 200 < 0.65
