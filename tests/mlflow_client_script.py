"""Run by tests/test_mlflow_client.py with the real ``mlflow`` client, in its
own virtualenv (never the platform's), against a live server:
MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN point it at the platform.
Prints one JSON object of what it logged and read back; any failed check
exits non-zero with a traceback."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def expect_error(code: str, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except MlflowException as exc:  # RestException, or the client's rewording of one
        assert exc.error_code == code, (exc.error_code, str(exc))
        return str(exc)
    raise AssertionError(f"{call.__name__} did not raise {code}")


def tracking(client: MlflowClient, out: dict) -> None:
    experiment = mlflow.set_experiment("mlflow-client-qc")
    out["experiment_id"] = experiment.experiment_id
    workdir = Path(tempfile.mkdtemp())
    (workdir / "notes.txt").write_text("confusion matrix goes here\n")
    with mlflow.start_run(run_name="parent-search") as parent:
        mlflow.log_params({"search": "grid", "folds": 5})
        mlflow.set_tags({"team": "qc", "dataset": "lab-submissions"})
        children = []
        for depth, aucs in [(3, [0.61, 0.70, 0.74]), (5, [0.65, 0.79, 0.86]), (8, [0.66, 0.80, 0.83])]:
            with mlflow.start_run(run_name=f"depth-{depth}", nested=True) as child:
                mlflow.log_params({"max_depth": depth, "criterion": "gini"})
                for step, auc in enumerate(aucs):
                    mlflow.log_metrics({"val_auc": auc, "loss": 1 - auc}, step=step)
                mlflow.set_tag("kind", "tree")
                children.append(child.info.run_id)
        mlflow.log_artifact(str(workdir / "notes.txt"))
        mlflow.log_artifact(str(workdir / "notes.txt"), artifact_path="reports")
    out["parent_run_id"] = parent.info.run_id
    out["child_run_ids"] = children

    finished = client.get_run(parent.info.run_id)
    assert finished.info.status == "FINISHED", finished.info.status
    assert finished.data.params == {"search": "grid", "folds": "5"}, finished.data.params
    assert finished.data.tags["team"] == "qc"
    assert finished.info.run_name == "parent-search"
    child = client.get_run(children[1])
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.metrics == {"val_auc": 0.86, "loss": 1 - 0.86}, child.data.metrics

    history = client.get_metric_history(children[1], "val_auc")
    out["history"] = [(m.step, m.value) for m in history]
    assert out["history"] == [(0, 0.65), (1, 0.79), (2, 0.86)], out["history"]

    runs = client.search_runs([experiment.experiment_id], filter_string="metrics.val_auc > 0.8 and tags.kind = 'tree'",
                              order_by=["metrics.val_auc DESC"])
    out["search"] = [r.info.run_id for r in runs]
    assert out["search"] == [children[1], children[2]], out["search"]
    runs = client.search_runs([experiment.experiment_id], filter_string="params.max_depth = '3'")
    assert [r.info.run_id for r in runs] == [children[0]]
    runs = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in runs] == [parent.info.run_id, *children], [r.info.run_id for r in runs]
    frame = mlflow.search_runs([experiment.experiment_id], filter_string="tags.mlflow.parentRunId = "
                               f"'{parent.info.run_id}'")
    assert sorted(frame["run_id"]) == sorted(children), frame

    artifacts = sorted(a.path for a in client.list_artifacts(parent.info.run_id))
    assert artifacts == ["notes.txt", "reports"], artifacts
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "reports")] == ["reports/notes.txt"]
    local = client.download_artifacts(parent.info.run_id, "reports/notes.txt", str(workdir / "down"))
    assert Path(local).read_text() == "confusion matrix goes here\n"
    out["artifacts"] = artifacts

    # MLflow's error semantics, through the client's exceptions.
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_run, "987654321")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")
    assert client.get_experiment_by_name("no-such-experiment") is None
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, "mlflow-client-qc")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_param("lr", "0.1")  # the same value again is fine
        expect_error("INVALID_PARAMETER_VALUE", client.log_param, run.info.run_id, "lr", "0.2")


def main() -> int:
    client = MlflowClient()
    out: dict = {"mlflow_version": mlflow.__version__}
    tracking(client, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    assert os.environ.get("MLFLOW_TRACKING_URI"), "set MLFLOW_TRACKING_URI"
    sys.exit(main())
