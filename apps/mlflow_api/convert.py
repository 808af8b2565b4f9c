"""The platform's objects in MLflow's JSON shapes (``mlflow.protos.service``
and ``model_registry``). Ids are the platform's integer primary keys written
as strings; times are milliseconds since the Unix epoch.

Run names and nesting are columns here, tags in MLflow: ``mlflow.runName``
and ``mlflow.parentRunId`` are read from and written to the columns, never
stored as tags, so renaming in either world shows in both."""

from __future__ import annotations

from datetime import datetime

from apps.experiments.choices import RunStatus

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
SYSTEM_TAGS = {RUN_NAME_TAG, PARENT_RUN_TAG}

TO_MLFLOW_STATUS = {
    RunStatus.RUNNING: "RUNNING",
    RunStatus.QUEUED: "SCHEDULED",
    RunStatus.FINISHED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.KILLED: "KILLED",
}
FROM_MLFLOW_STATUS = {value: key for key, value in TO_MLFLOW_STATUS.items()}


def millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def key_values(mapping: dict) -> list[dict]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def artifact_root(experiment_id: int) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(run) -> str:
    return f"{artifact_root(run.experiment_id)}/{run.pk}/artifacts"


def experiment_json(experiment) -> dict:
    tags = dict(experiment.tags or {})
    if experiment.description and NOTE_TAG not in tags:
        tags[NOTE_TAG] = experiment.description
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": artifact_root(experiment.pk),
        "lifecycle_stage": "active",
        "creation_time": millis(experiment.created_at),
        "last_update_time": millis(experiment.updated_at),
        "tags": key_values(tags),
    }


def run_info_json(run) -> dict:
    return {
        "run_id": str(run.pk),
        "run_uuid": str(run.pk),
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user.get_username() if run.user_id else "",
        "status": TO_MLFLOW_STATUS.get(run.status, "RUNNING"),
        "start_time": millis(run.start_time),
        "end_time": millis(run.end_time),
        "artifact_uri": run_artifact_uri(run),
        "lifecycle_stage": "active",
    }


def run_json(run, latest_metrics: list | None = None) -> dict:
    """A run with ``param_map`` and ``tag_map`` attached (``attach_details``);
    ``latest_metrics`` are its LatestMetric rows (step and time included)."""
    tags = {k: v for k, v in run.tag_map.items() if k not in SYSTEM_TAGS}
    tags[RUN_NAME_TAG] = run.name
    if run.parent_id:
        tags[PARENT_RUN_TAG] = str(run.parent_id)
    if latest_metrics is None:
        metrics = [{"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in run.metric_map.items()]
    else:
        metrics = [metric_json(m) for m in latest_metrics]
    return {
        "info": run_info_json(run),
        "data": {"metrics": metrics, "params": key_values(run.param_map), "tags": key_values(tags)},
        "inputs": {"dataset_inputs": []},
    }


def metric_json(point) -> dict:
    if isinstance(point, dict):
        return {"key": point["key"], "value": point["value"], "timestamp": millis(point["timestamp"]),
                "step": point["step"]}
    return {"key": point.key, "value": point.value, "timestamp": millis(point.timestamp), "step": point.step}
