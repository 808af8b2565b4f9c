"""Who may call the MLflow routes: API keys and JWTs as bearer tokens, Basic
auth against the platform's users (with the login lockout), and the
platform's object permissions on every call."""

import base64

import pytest
from rest_framework.test import APIClient

from apps.mlflow_api.tests.conftest import BASE, Mlflow

pytestmark = pytest.mark.django_db


def _basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_no_credentials_is_unauthenticated():
    response = APIClient().get(BASE + "experiments/search")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_bearer_api_key_and_revocation(scientist, api_key, mlflow):
    assert mlflow.post("experiments/create", name="qc")[0] == 200
    from apps.core.models import ApiKey
    from apps.core.services import _api_key_cache, api_key_revoke

    api_key_revoke(api_key=ApiKey.objects.get(user=scientist), actor=scientist)
    _api_key_cache.clear()
    status, body = mlflow.get("experiments/get-by-name", experiment_name="qc")
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"


def test_bearer_garbage_is_unauthenticated():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer tsk_nope.nope")
    assert client.get(BASE + "experiments/search").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = client.get(BASE + "experiments/search")
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"


def test_bearer_jwt(scientist):
    from rest_framework_simplejwt.tokens import AccessToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(scientist)}")
    status, body = Mlflow(client).post("experiments/create", name="from-jwt")
    assert status == 200, body


def test_basic_auth_and_lockout(scientist, settings):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic("sci", "pw-Secret-123"))
    assert client.get(BASE + "experiments/search").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=_basic("sci", "wrong"))
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert client.get(BASE + "experiments/search").status_code == 401
    # Locked out now, even with the right password.
    client.credentials(HTTP_AUTHORIZATION=_basic("sci", "pw-Secret-123"))
    response = client.get(BASE + "experiments/search")
    assert response.status_code == 429 and response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_ajax_api_prefix_answers_too(mlflow):
    mlflow.post("experiments/create", name="qc")
    response = mlflow.client.get("/ajax-api/2.0/mlflow/experiments/get-by-name", {"experiment_name": "qc"})
    assert response.status_code == 200 and response.json()["experiment"]["name"] == "qc"


def test_unknown_mlflow_route_is_json_404(mlflow):
    response = mlflow.client.get(BASE + "no-such/route")
    assert response.status_code == 404 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_private_experiment_of_someone_else_is_hidden(make_user, mlflow, mlflow_as):
    from apps.core.permissions import make_private
    from apps.experiments.models import Experiment

    experiment_id = mlflow.post("experiments/create", name="secret")[1]["experiment_id"]
    run_id = mlflow.post("runs/create", experiment_id=experiment_id)[1]["run"]["info"]["run_id"]
    make_private(Experiment.objects.get(pk=experiment_id))
    other = mlflow_as(make_user("Data Scientist", username="other"))
    for route, params in [("experiments/get", {"experiment_id": experiment_id}),
                          ("experiments/get-by-name", {"experiment_name": "secret"}),
                          ("runs/get", {"run_id": run_id}),
                          ("metrics/get-history", {"run_id": run_id, "metric_key": "auc"})]:
        status, body = other.get(route, **params)
        assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST", route
    for route, body in [("runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "b"}]}),
                        ("runs/set-tag", {"run_id": run_id, "key": "a", "value": "b"}),
                        ("runs/create", {"experiment_id": experiment_id}),
                        ("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "a", "value": "b"})]:
        status, answer = other.post(route, **body)
        assert status == 404 and answer["error_code"] == "RESOURCE_DOES_NOT_EXIST", route
    assert other.post("runs/search", experiment_ids=[experiment_id])[1] == {"runs": []}
    assert other.post("experiments/search")[1] == {"experiments": []}


def test_colleague_may_read_a_shared_run_but_not_write_to_it(make_user, mlflow, mlflow_as):
    experiment_id = mlflow.post("experiments/create", name="shared")[1]["experiment_id"]
    run_id = mlflow.post("runs/create", experiment_id=experiment_id)[1]["run"]["info"]["run_id"]
    other = mlflow_as(make_user("Data Scientist", username="other"))
    assert other.get("runs/get", run_id=run_id)[0] == 200
    status, body = other.post("runs/log-batch", run_id=run_id, params=[{"key": "a", "value": "b"}])
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
    status, body = other.post("runs/update", run_id=run_id, status="KILLED")
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"


def test_viewer_cannot_create_experiments(make_user, mlflow_as):
    viewer = mlflow_as(make_user("Viewer", username="viewer"))
    status, body = viewer.post("experiments/create", name="nope")
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
