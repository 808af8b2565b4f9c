"""The proxied artifact routes: upload, list, download, write-once paths,
the per-run quota, and user content served as an attachment."""

import pytest

pytestmark = pytest.mark.django_db

ROOT = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run_uri(mlflow):
    experiment_id = mlflow.post("experiments/create", name="qc")[1]["experiment_id"]
    info = mlflow.post("runs/create", experiment_id=experiment_id)[1]["run"]["info"]
    return info["artifact_uri"].removeprefix("mlflow-artifacts:/")


def _put(mlflow, path, data: bytes, content_type="application/octet-stream"):
    return mlflow.client.generic("PUT", f"{ROOT}/{path}", data, content_type=content_type)


def test_upload_list_download(mlflow, run_uri):
    assert _put(mlflow, f"{run_uri}/notes.txt", b"hello").status_code == 200
    assert _put(mlflow, f"{run_uri}/model/MLmodel", b"flavors: {}", "text/plain").status_code == 200
    assert _put(mlflow, f"{run_uri}/model/data/x.bin", b"\x00\x01").status_code == 200
    listing = mlflow.client.get(ROOT, {"path": run_uri}).json()
    assert listing == {"files": [{"path": "model", "is_dir": True},
                                 {"path": "notes.txt", "is_dir": False, "file_size": 5}]}
    listing = mlflow.client.get(ROOT, {"path": f"{run_uri}/model"}).json()
    assert listing == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 11},
                                 {"path": "data", "is_dir": True}]}
    assert mlflow.client.get(ROOT, {"path": f"{run_uri}/empty"}).json() == {}
    response = mlflow.client.get(f"{ROOT}/{run_uri}/notes.txt")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello"


def test_html_artifact_is_served_as_an_inert_attachment(mlflow, run_uri):
    _put(mlflow, f"{run_uri}/report.html", b"<script>alert(1)</script>", "text/html")
    response = mlflow.client.get(f"{ROOT}/{run_uri}/report.html")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_paths_are_write_once_and_checked(mlflow, run_uri):
    assert _put(mlflow, f"{run_uri}/a.txt", b"1").status_code == 200
    response = _put(mlflow, f"{run_uri}/a.txt", b"2")
    assert response.status_code == 400 and response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    response = _put(mlflow, f"{run_uri}/../x.txt", b"2")
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    response = mlflow.client.get(f"{ROOT}/{run_uri}/missing.txt")
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    experiment_id, run_id, _ = run_uri.split("/")
    response = _put(mlflow, f"{int(experiment_id) + 1}/{run_id}/artifacts/a.txt", b"1")
    assert response.status_code == 404


def test_run_quota_applies(mlflow, run_uri, settings):
    settings.RUN_ARTIFACT_QUOTA_BYTES = 10
    assert _put(mlflow, f"{run_uri}/a.bin", b"x" * 8).status_code == 200
    response = _put(mlflow, f"{run_uri}/b.bin", b"x" * 8)
    assert response.status_code == 413 and response.json()["error_code"] == "RESOURCE_EXHAUSTED"


def test_only_the_run_owner_uploads_and_strangers_see_nothing(make_user, mlflow, mlflow_as, run_uri):
    from apps.core.permissions import make_private
    from apps.experiments.models import Experiment

    _put(mlflow, f"{run_uri}/a.txt", b"1")
    colleague = mlflow_as(make_user("Data Scientist", username="colleague"))
    response = _put(colleague, f"{run_uri}/b.txt", b"1")
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
    assert colleague.client.get(f"{ROOT}/{run_uri}/a.txt").status_code == 200
    make_private(Experiment.objects.get(pk=run_uri.split("/")[0]))
    assert colleague.client.get(f"{ROOT}/{run_uri}/a.txt").status_code == 404
    assert colleague.client.get(ROOT, {"path": run_uri}).status_code == 404
