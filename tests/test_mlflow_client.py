"""The real MLflow client against a live server: tests/mlflow_client_script.py
runs in its own virtualenv (the pinned ``mlflow`` of requirements/bench.txt,
never the platform's requirements), logs through the fluent API and
MlflowClient, and what it logged is read back here through the platform's
own API.

The virtualenv is ``$MLFLOW_CLIENT_PYTHON`` (default
``bench/.venvs/mlflow-client/bin/python``, which ``.ci/run`` creates)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest


def skip_or_fail(reason: str):
    """Skip with the reason; under MLOPS_CI=1 (.ci/run) a missing client fails the run instead.
    (The root conftest's helper of the same name cannot be imported by module name: the
    client package's tests have a conftest too.)"""
    if os.environ.get("MLOPS_CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (MLOPS_CI is set, so this cannot be skipped)")
    pytest.skip(reason)


ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "mlflow_client_script.py"
DEFAULT_PYTHON = ROOT / "bench" / ".venvs" / "mlflow-client" / "bin" / "python"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _client_python() -> str:
    python = Path(os.environ.get("MLFLOW_CLIENT_PYTHON") or DEFAULT_PYTHON)
    if not python.exists():
        skip_or_fail(f"no MLflow client virtualenv at {python}: run .ci/run, or set MLFLOW_CLIENT_PYTHON to a python "
                     "with mlflow installed (requirements/bench.txt)")
    probe = subprocess.run([str(python), "-c", "import mlflow"], check=False, capture_output=True, text=True,
                           timeout=120)
    if probe.returncode != 0:
        skip_or_fail(f"{python} cannot import mlflow: {probe.stderr[-500:]}")
    return str(python)


def test_the_mlflow_client_logs_and_reads_back(live_server, make_user, client_for, tmp_path):
    python = _client_python()
    from apps.datasets.generator import generate_submissions

    demo_csv = tmp_path / "lab-submissions.csv"
    generate_submissions(rows=300, seed=11).to_csv(demo_csv, index=False)
    from apps.core.services import api_key_create

    scientist = make_user("Data Scientist", username="mlflow-user")
    key = api_key_create(user=scientist, name="mlflow client").raw_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": live_server.url, "MLFLOW_TRACKING_TOKEN": key,
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "PYTHONPATH": "", "DEMO_CSV": str(demo_csv)})
    result = subprocess.run([python, str(SCRIPT)], check=False, capture_output=True, text=True, env=env,
                            timeout=600, cwd=str(ROOT / "tests"))
    assert result.returncode == 0, f"client script failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    out = json.loads(result.stdout.strip().splitlines()[-1])

    # The same data through the platform's own API.
    api = client_for(scientist)
    parent = api.get(f"/api/v1/runs/{out['parent_run_id']}/").json()
    assert parent["name"] == "parent-search"
    assert parent["status"] == "finished"
    children = api.get("/api/v1/runs/", {"experiment_id": out["experiment_id"], "page_size": 100}).json()
    by_id = {str(run["id"]): run for run in children["results"]}
    assert set(out["child_run_ids"]) <= set(by_id)
    assert all(str(by_id[c]["parent_run_id"]) == out["parent_run_id"] for c in out["child_run_ids"]), by_id
    history = api.get(f"/api/v1/runs/{out['child_run_ids'][1]}/metrics/val_auc/history/").json()
    assert [(p["step"], p["value"]) for p in history["points"]] == [tuple(p) for p in out["history"]]
    artifacts = api.get(f"/api/v1/runs/{out['parent_run_id']}/artifacts/").json()
    assert sorted(a["path"] for a in artifacts) == ["notes.txt", "reports/notes.txt"]

    # The registry through the platform's own API: versions with lineage to
    # their runs, and the stage transition waiting for an approver.
    model = api.get(f"/api/v1/models/{out['registered_model']}/").json()
    assert model["name"] == out["registered_model"]
    from apps.registry.models import ModelVersion, PromotionRequest

    versions = {v.version: v for v in ModelVersion.objects.filter(registered_model__name=out["registered_model"])}
    assert sorted(versions) == [1, 2]
    assert versions[1].source_run_id == int(out["autolog_run_id"])
    assert versions[2].source_run_id == int(out["log_model_run_id"])
    assert all(v.stage == "none" for v in versions.values())
    request = PromotionRequest.objects.get(version=versions[2])
    assert request.status == "pending" and request.target_stage == "production"
    assert request.requested_by == scientist
    # The MLmodel signature (inferred from the input example) in the platform's terms.
    assert "concentration_ng_ul" in {i["name"] for i in versions[2].signature["inputs"]}, versions[2].signature


@pytest.mark.django_db(transaction=False)
def test_mlflow_stays_out_of_the_platform_requirements():
    """The client is a test-only tool: only the bench file pins it."""
    for name in ("base.txt", "dev.txt", "production.txt"):
        path = ROOT / "requirements" / name
        if path.exists():
            lines = [line.split("==")[0].strip().lower() for line in path.read_text().splitlines()]
            assert "mlflow" not in lines and "mlflow-skinny" not in lines, name
