"""The platform's objects in MLflow's JSON shapes (``mlflow.protos.service``
and ``model_registry``). Ids are the platform's integer primary keys written
as strings; times are milliseconds since the Unix epoch.

Run names and nesting are columns here, tags in MLflow: ``mlflow.runName``
and ``mlflow.parentRunId`` are read from and written to the columns, never
stored as tags, so renaming in either world shows in both."""

from __future__ import annotations

import json
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


DATASET_INPUT_PREFIX = "mlflow.datasetInput."
LOGGED_MODEL_TAG_PREFIX = "mlflow.loggedModel."
_DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")
_TAG_LIMIT = 8000


def dataset_input_tag(dataset: dict, tags: list) -> dict:
    """A dataset input of ``runs/log-inputs`` as one run tag."""
    digest = "".join(c for c in str(dataset["digest"]) if c.isalnum() or c in "-_.")[:100] or "dataset"
    kept = {k: str(dataset[k]) for k in _DATASET_FIELDS if dataset.get(k) is not None}
    value = {"dataset": kept, "tags": [t for t in tags if isinstance(t, dict)]}
    text = json.dumps(value)
    for heavy in ("profile", "schema", "source"):
        if len(text) <= _TAG_LIMIT:
            break
        kept.pop(heavy, None)
        text = json.dumps(value)
    return {"key": DATASET_INPUT_PREFIX + digest, "value": text[:_TAG_LIMIT]}


def dataset_inputs(tag_map: dict) -> list[dict]:
    inputs = []
    for key, value in tag_map.items():
        if key.startswith(DATASET_INPUT_PREFIX):
            try:
                inputs.append(json.loads(value))
            except ValueError:
                continue
    return inputs


def run_json(run, latest_metrics: list | None = None) -> dict:
    """A run with ``param_map`` and ``tag_map`` attached (``attach_details``);
    ``latest_metrics`` are its LatestMetric rows (step and time included)."""
    tags = {k: v for k, v in run.tag_map.items()
            if k not in SYSTEM_TAGS and not k.startswith((DATASET_INPUT_PREFIX, LOGGED_MODEL_TAG_PREFIX))}
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
        "inputs": {"dataset_inputs": dataset_inputs(run.tag_map)},
    }


def metric_json(point) -> dict:
    if isinstance(point, dict):
        return {"key": point["key"], "value": point["value"], "timestamp": millis(point["timestamp"]),
                "step": point["step"]}
    return {"key": point.key, "value": point.value, "timestamp": millis(point.timestamp), "step": point.step}


# --- Registry -----------------------------------------------------------------------

TO_MLFLOW_STAGE = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
FROM_MLFLOW_STAGE = {value.lower(): key for key, value in TO_MLFLOW_STAGE.items()}
PROMOTION_TAG = "tracseq.promotion_request"


def version_source(version) -> str:
    if version.source_run_id:
        return f"runs:/{version.source_run_id}/model"
    return f"tracseq:/registry/{version.registered_model.name}/{version.version}"


def model_version_json(version, *, pending=None) -> dict:
    """``pending`` is the version's pending promotion request, if any: MLflow
    has no such state, so it shows as a tag and in ``status_message``."""
    tags = dict(version.tags or {})
    status_message = ""
    if pending is not None:
        target = TO_MLFLOW_STAGE.get(pending.target_stage, pending.target_stage)
        tags[PROMOTION_TAG] = f"{pending.pk}: {target} pending approval"
        status_message = (f"Promotion request {pending.pk} to {target} is pending approval; the stage changes "
                          "only when an approver other than the requester approves it.")
    return {
        "name": version.registered_model.name,
        "version": str(version.version),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.stage_changed_at or version.created_at),
        "user_id": version.created_by.get_username() if version.created_by_id else "",
        "current_stage": TO_MLFLOW_STAGE.get(version.stage, "None"),
        "description": version.description,
        "source": version_source(version),
        "run_id": str(version.source_run_id) if version.source_run_id else "",
        "status": "READY",
        "status_message": status_message,
        "tags": key_values(tags),
        "aliases": sorted(a.alias for a in version.aliases.all()),
    }


def registered_model_json(model, *, latest: list | None = None) -> dict:
    return {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
        "user_id": model.owner.get_username() if model.owner_id else "",
        "description": model.description,
        "latest_versions": latest or [],
        "tags": key_values(dict(model.tags or {})),
        "aliases": [{"alias": a.alias, "version": str(a.version.version)}
                    for a in model.aliases.select_related("version").order_by("alias")],
    }
