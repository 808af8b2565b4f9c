"""MLflow 3's logged models (directories of their run's artifacts), run
outputs and dataset inputs, in process."""

import json

import pytest

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run(mlflow):
    experiment_id = mlflow.post("experiments/create", name="qc")[1]["experiment_id"]
    return mlflow.post("runs/create", experiment_id=experiment_id)[1]["run"]["info"]


def test_logged_model_lives_in_its_run(mlflow, run):
    status, body = mlflow.post("logged-models", experiment_id=run["experiment_id"], name="model",
                               source_run_id=run["run_id"])
    assert status == 200, body
    info = body["model"]["info"]
    assert info["model_id"] == f"m-{run['run_id']}-model"
    assert info["artifact_uri"] == f"{run['artifact_uri']}/model"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    uri = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    response = mlflow.client.generic("PUT", f"{ARTIFACTS}/{uri}/MLmodel", b"flavors: {}",
                                     content_type="text/plain")
    assert response.status_code == 200
    response = mlflow.client.patch(f"/api/2.0/mlflow/logged-models/{info['model_id']}",
                                   {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"}, format="json")
    assert response.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    response = mlflow.client.patch(f"/api/2.0/mlflow/logged-models/{info['model_id']}/tags",
                                   {"tags": [{"key": "mlflow.modelVersions", "value": "[]"}]}, format="json")
    assert response.status_code == 200
    body = mlflow.get(f"logged-models/{info['model_id']}")[1]
    assert body["model"]["info"]["tags"] == [{"key": "mlflow.modelVersions", "value": "[]"}]
    # The logged model's tags are not the run's.
    tags = {t["key"] for t in mlflow.get("runs/get", run_id=run["run_id"])[1]["run"]["data"]["tags"]}
    assert not any(k.startswith("mlflow.loggedModel.") for k in tags)
    found = mlflow.post("logged-models/search", experiment_ids=[run["experiment_id"]], filter="name = 'model'")[1]
    assert [m["info"]["model_id"] for m in found["models"]] == [info["model_id"]]
    assert mlflow.post("runs/outputs", run_id=run["run_id"],
                       models=[{"model_id": info["model_id"], "step": 0}])[0] == 200
    # The same name again is refused: a run's artifacts are write-once.
    status, body = mlflow.post("logged-models", name="model", source_run_id=run["run_id"])
    assert status == 400 and body["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_logged_model_needs_a_run_and_a_writer(make_user, mlflow, mlflow_as, run):
    status, body = mlflow.post("logged-models", experiment_id=run["experiment_id"], name="model")
    assert status == 400 and "inside a run" in body["message"]
    other = mlflow_as(make_user("Data Scientist", username="other"))
    status, body = other.post("logged-models", name="model", source_run_id=run["run_id"])
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
    assert mlflow.get("logged-models/m-999999-model")[0] == 404
    assert mlflow.get("logged-models/not-an-id")[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    status, body = mlflow.post("runs/outputs", run_id=run["run_id"], models=[{"model_id": "m-1-elsewhere"}])
    assert status == 400


def test_dataset_inputs_show_as_the_runs_inputs(mlflow, run):
    dataset = {"name": "lab-submissions", "digest": "abc123", "source_type": "local", "source": "{}",
               "schema": json.dumps({"mlflow_colspec": [{"name": "rin", "type": "double"}]})}
    status, body = mlflow.post("runs/log-inputs", run_id=run["run_id"],
                               datasets=[{"dataset": dataset, "tags": [{"key": "mlflow.data.context",
                                                                        "value": "train"}]}])
    assert status == 200, body
    got = mlflow.get("runs/get", run_id=run["run_id"])[1]["run"]
    assert got["inputs"]["dataset_inputs"] == [{"dataset": dataset, "tags": [{"key": "mlflow.data.context",
                                                                               "value": "train"}]}]
    assert not any(t["key"].startswith("mlflow.datasetInput.") for t in got["data"]["tags"])
    status, body = mlflow.post("runs/log-inputs", run_id=run["run_id"], datasets=[{"dataset": {"name": "x"}}])
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
