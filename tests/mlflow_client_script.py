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


def registry(client: MlflowClient, out: dict, csv_path: str) -> None:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(csv_path)
    target = frame.pop("qc_pass").astype(int)
    features = frame.select_dtypes("number").drop(columns=["turnaround_hours"], errors="ignore").fillna(0.0)
    name = "sample-qc-mlflow"
    mlflow.set_experiment("mlflow-client-registry")

    # autolog around a fit, saving the model with skops: registrable.
    mlflow.sklearn.autolog(serialization_format="skops")
    with mlflow.start_run(run_name="autolog-logistic") as autologged:
        LogisticRegression(C=0.5, max_iter=2000).fit(features, target)
    mlflow.sklearn.autolog(disable=True)
    run = client.get_run(autologged.info.run_id)
    assert run.data.params["C"] == "0.5", run.data.params
    assert [d.dataset.name for d in run.inputs.dataset_inputs], run.inputs
    assert "training_accuracy_score" in run.data.metrics, run.data.metrics
    assert "model" in [a.path for a in client.list_artifacts(autologged.info.run_id)]
    out["autolog_run_id"] = autologged.info.run_id
    out["autolog_params"] = run.data.params
    version = mlflow.register_model(f"runs:/{autologged.info.run_id}/model", name)
    assert version.version == "1" and version.current_stage == "None", version

    # autolog's default format is cloudpickle: logged, but never registered.
    mlflow.sklearn.autolog()
    with mlflow.start_run(run_name="autolog-pickle") as pickled:
        LogisticRegression(max_iter=500).fit(features, target)
    mlflow.sklearn.autolog(disable=True)
    message = expect_error("INVALID_PARAMETER_VALUE", mlflow.register_model, f"runs:/{pickled.info.run_id}/model",
                           name)
    assert "skops" in message, message

    # log_model, then register the logged model by its models:/ URI.
    forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(features, target)
    with mlflow.start_run(run_name="log-model") as logged:
        info = mlflow.sklearn.log_model(forest, name="model", input_example=features.head(3),
                                        skops_trusted_types=["sklearn.tree._tree.Tree"])
    assert info.model_uri.startswith("models:/"), info.model_uri
    second = mlflow.register_model(info.model_uri, name)
    assert second.version == "2" and second.run_id == logged.info.run_id, second
    loaded = mlflow.sklearn.load_model(f"models:/{name}/2")
    assert list(loaded.predict(features.head(5))) == list(forest.predict(features.head(5)))

    client.set_registered_model_alias(name, "challenger", second.version)
    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    latest = client.get_latest_versions(name, stages=["None"])
    assert [v.version for v in latest] == ["2"], latest
    moved = client.transition_model_version_stage(name, second.version, "Production")
    assert moved.current_stage == "None", moved.current_stage  # asked, not moved: an approver decides
    assert "pending approval" in moved.tags["tracseq.promotion_request"], moved.tags
    assert client.get_model_version(name, "2").current_stage == "None"
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_registered_model, name)
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, "no-such-model")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_model_version, name, "99")
    out["registered_model"] = name
    out["versions"] = [version.version, second.version]
    out["log_model_run_id"] = logged.info.run_id


def main() -> int:
    client = MlflowClient()
    out: dict = {"mlflow_version": mlflow.__version__}
    tracking(client, out)
    if os.environ.get("DEMO_CSV"):
        registry(client, out, os.environ["DEMO_CSV"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    assert os.environ.get("MLFLOW_TRACKING_URI"), "set MLFLOW_TRACKING_URI"
    sys.exit(main())
