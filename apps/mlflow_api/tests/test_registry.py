"""The MLflow registry routes: registered models, versions from a run's
MLmodel directory (skops only, read through the trusted-class loader),
aliases, latest versions, and stage transitions that become promotion
requests instead of moving the stage."""

import json

import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SIGNATURE = {"inputs": json.dumps([{"type": "double", "name": "concentration", "required": True},
                                   {"type": "long", "name": "read_count", "required": False},
                                   {"type": "string", "name": "kit", "required": True}]),
             "outputs": json.dumps([{"type": "long", "name": "qc_pass", "required": True}])}


def _mlmodel(fmt="skops", data="model.skops"):
    import yaml

    return yaml.safe_dump({"artifact_path": "model", "flavors": {
        "python_function": {"loader_module": "mlflow.sklearn", "model_path": data},
        "sklearn": {"pickled_model": data, "serialization_format": fmt, "sklearn_version": "1.9.1"}},
        "signature": SIGNATURE}).encode()


def _skops_model() -> bytes:
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1])
    return sio.dumps(model)


def _put(mlflow, uri, path, data):
    response = mlflow.client.generic("PUT", f"{ARTIFACTS}/{uri}/{path}", data,
                                     content_type="application/octet-stream")
    assert response.status_code == 200, response.content


@pytest.fixture
def logged_run(mlflow):
    """A finished run with an MLmodel directory as mlflow.sklearn.log_model writes it."""

    def _log(fmt="skops", model_bytes=None, name="qc"):
        experiment_id = mlflow.post("experiments/create", name=name)[1]["experiment_id"]
        info = mlflow.post("runs/create", experiment_id=experiment_id)[1]["run"]["info"]
        uri = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
        data_name = "model.skops" if fmt == "skops" else "model.pkl"
        _put(mlflow, uri, "model/MLmodel", _mlmodel(fmt, data_name))
        _put(mlflow, uri, f"model/{data_name}", model_bytes if model_bytes is not None else _skops_model())
        mlflow.post("runs/update", run_id=info["run_id"], status="FINISHED")
        return info["run_id"]

    return _log


def _register(mlflow, run_id, name="sample-qc"):
    status, body = mlflow.post("registered-models/create", name=name)
    assert status == 200, body
    return mlflow.post("model-versions/create", name=name, source=f"runs:/{run_id}/model", run_id=run_id)


def test_register_an_mlflow_logged_skops_model(mlflow, logged_run):
    run_id = logged_run()
    status, body = _register(mlflow, run_id)
    assert status == 200, body
    version = body["model_version"]
    assert version["version"] == "1" and version["current_stage"] == "None" and version["run_id"] == run_id
    assert version["source"] == f"runs:/{run_id}/model"
    from apps.registry.models import ModelVersion

    stored = ModelVersion.objects.get(registered_model__name="sample-qc", version=1)
    assert stored.source_run_id == int(run_id)
    # The MLmodel signature, translated into the platform's column specs.
    assert stored.signature["inputs"] == [{"name": "concentration", "type": "float", "nullable": False},
                                          {"name": "read_count", "type": "integer", "nullable": True},
                                          {"name": "kit", "type": "text", "nullable": False}]
    assert stored.signature["target"] == "qc_pass"
    from apps.registry.services import model_version_load

    assert model_version_load(version=stored).predict([[0.0, 1.0]]).tolist() == [0]
    status, body = mlflow.get("model-versions/get", name="sample-qc", version="1")
    assert status == 200 and body["model_version"]["version"] == "1"


def test_a_pickled_mlmodel_is_refused_with_how_to_log_skops(mlflow, logged_run):
    import pickle

    run_id = logged_run(fmt="cloudpickle", model_bytes=pickle.dumps({"not": "loaded"}))
    status, body = _register(mlflow, run_id)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "serialization_format='skops'" in body["message"]
    from apps.registry.models import ModelVersion

    assert not ModelVersion.objects.exists()


def test_a_skops_file_naming_an_untrusted_class_is_refused(mlflow, logged_run):
    from sklearn.preprocessing import FunctionTransformer

    run_id = logged_run(model_bytes=sio.dumps(FunctionTransformer(func=print)))
    status, body = _register(mlflow, run_id)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    from apps.registry.models import ModelVersion

    assert not ModelVersion.objects.exists()


def test_registered_model_routes(mlflow, logged_run):
    run_id = logged_run()
    _register(mlflow, run_id)
    status, body = mlflow.post("registered-models/create", name="sample-qc")
    assert status == 400 and body["error_code"] == "RESOURCE_ALREADY_EXISTS"
    status, body = mlflow.post("registered-models/create", name="Not A Slug")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert mlflow.get("registered-models/get", name="nope")[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    body = mlflow.get("registered-models/get", name="sample-qc")[1]["registered_model"]
    assert [v["version"] for v in body["latest_versions"]] == ["1"]
    response = mlflow.client.patch("/api/2.0/mlflow/registered-models/update",
                                   {"name": "sample-qc", "description": "QC pass/fail"}, format="json")
    assert response.status_code == 200 and response.json()["registered_model"]["description"] == "QC pass/fail"
    assert mlflow.post("registered-models/set-tag", name="sample-qc", key="team", value="qc")[0] == 200
    body = mlflow.get("registered-models/search", filter="name LIKE 'sample%'")[1]
    assert [m["name"] for m in body["registered_models"]] == ["sample-qc"]
    assert {"key": "team", "value": "qc"} in body["registered_models"][0]["tags"]
    assert mlflow.post("registered-models/rename", name="sample-qc", new_name="x")[1]["error_code"] == \
        "NOT_IMPLEMENTED"


def test_aliases_and_latest_versions(mlflow, logged_run):
    run_id = logged_run()
    _register(mlflow, run_id)
    assert mlflow.post("registered-models/alias", name="sample-qc", alias="challenger", version="1")[0] == 200
    status, body = mlflow.get("registered-models/alias", name="sample-qc", alias="challenger")
    assert status == 200 and body["model_version"]["aliases"] == ["challenger"]
    response = mlflow.client.delete("/api/2.0/mlflow/registered-models/alias",
                                    {"name": "sample-qc", "alias": "challenger"}, format="json")
    assert response.status_code == 200
    status, body = mlflow.get("registered-models/alias", name="sample-qc", alias="challenger")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    body = mlflow.post("registered-models/get-latest-versions", name="sample-qc", stages=["None"])[1]
    assert [v["version"] for v in body["model_versions"]] == ["1"]
    body = mlflow.post("registered-models/get-latest-versions", name="sample-qc", stages=["Production"])[1]
    assert body["model_versions"] == []
    body = mlflow.get("model-versions/search", filter=f"run_id = '{run_id}'")[1]
    assert [v["name"] for v in body["model_versions"]] == ["sample-qc"]


def test_transition_stage_asks_for_approval_and_never_moves_the_stage(mlflow, logged_run):
    run_id = logged_run()
    _register(mlflow, run_id)
    status, body = mlflow.post("model-versions/transition-stage", name="sample-qc", version="1", stage="Production",
                               archive_existing_versions=True)
    assert status == 200, body
    version = body["model_version"]
    assert version["current_stage"] == "None"
    assert "pending approval" in version["status_message"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags["tracseq.promotion_request"].endswith("Production pending approval")
    from apps.registry.models import ModelVersion, PromotionRequest

    request = PromotionRequest.objects.get()
    assert request.status == "pending" and request.target_stage == "production"
    assert ModelVersion.objects.get().stage == "none"
    # Asking again while one is pending is refused; so is a direct archive.
    status, body = mlflow.post("model-versions/transition-stage", name="sample-qc", version="1", stage="Staging")
    assert status == 400
    status, body = mlflow.post("model-versions/transition-stage", name="sample-qc", version="1", stage="Archived")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert ModelVersion.objects.get().stage == "none"


def test_someone_elses_private_model_is_hidden(make_user, mlflow, mlflow_as, logged_run):
    from apps.core.permissions import make_private
    from apps.registry.models import RegisteredModel

    _register(mlflow, logged_run())
    make_private(RegisteredModel.objects.get(name="sample-qc"))
    other = mlflow_as(make_user("Data Scientist", username="other"))
    assert other.get("registered-models/get", name="sample-qc")[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert other.get("model-versions/get", name="sample-qc", version="1")[0] == 404
    status, body = other.post("model-versions/transition-stage", name="sample-qc", version="1", stage="Production")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert other.get("registered-models/search")[1] == {"registered_models": []}


def test_registering_someone_elses_run_needs_change_rights_on_the_model(make_user, mlflow, mlflow_as, logged_run):
    run_id = logged_run()
    mlflow.post("registered-models/create", name="sample-qc")
    other = mlflow_as(make_user("Data Scientist", username="other"))
    status, body = other.post("model-versions/create", name="sample-qc", source=f"runs:/{run_id}/model")
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"


def test_source_must_be_the_runs_model_directory(mlflow, logged_run):
    run_id = logged_run()
    mlflow.post("registered-models/create", name="sample-qc")
    status, body = mlflow.post("model-versions/create", name="sample-qc", source=f"runs:/{run_id}/other")
    assert status == 400 and "'model'" in body["message"]
    status, body = mlflow.post("model-versions/create", name="sample-qc", source="s3://bucket/model")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    status, body = mlflow.post("model-versions/create", name="sample-qc", source="runs:/999999/model")
    assert status == 404


