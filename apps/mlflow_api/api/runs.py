"""``/api/2.0/mlflow/runs/*`` and ``metrics/get-history`` over the
experiments app's services: every write is ``run_create``, ``run_log_batch``,
``run_finish``, ``run_update`` or ``run_tag_delete``, so permissions, limits
and audit are the platform's own."""

from __future__ import annotations

import secrets

from django.db import transaction

from apps.core.errors import NotFound
from apps.experiments import selectors, services
from apps.experiments.choices import RunStatus
from apps.mlflow_api import convert
from apps.mlflow_api.api.experiments import get_experiment
from apps.mlflow_api.errors import NOT_IMPLEMENTED, MlflowError, invalid, not_found
from apps.mlflow_api.search import translate, translate_order_by
from apps.mlflow_api.selectors import latest_metrics

# MLflow's own limits for one log-batch call (mlflow.utils.validation).
MAX_ENTITIES_PER_BATCH = 1000
RUN_SEARCH_PAGE_LIMIT = 1000
_ADJECTIVES = ["amber", "bold", "brisk", "calm", "clever", "eager", "gentle", "keen", "lucid", "merry", "nimble",
               "quiet", "rapid", "sunny", "tidy", "vivid"]
_NOUNS = ["ant", "bee", "crane", "deer", "finch", "fox", "gecko", "heron", "lynx", "moth", "otter", "owl", "seal",
          "slug", "wren", "yak"]


def generated_run_name() -> str:
    """A readable name for a run started without one, as MLflow's server gives."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


def get_run(user, run_id):
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    return selectors.run_get(user=user, pk=int(run_id))


def run_body(run) -> dict:
    return convert.run_json(run, latest_metrics([run.pk]).get(run.pk, []))


def _key_value_list(fields, name: str) -> list[dict]:
    items = fields.list(name)
    for item in items:
        if not isinstance(item, dict):
            raise invalid(f"Each of {name} is an object with a key and a value.")
    return items


def create(request, fields):
    experiment = get_experiment(request.user, fields.str("experiment_id", required=True))
    tags = {item.get("key"): item.get("value", "") for item in _key_value_list(fields, "tags")}
    name = fields.str("run_name") or tags.get(convert.RUN_NAME_TAG) or generated_run_name()
    parent = None
    parent_id = tags.pop(convert.PARENT_RUN_TAG, None)
    tags.pop(convert.RUN_NAME_TAG, None)
    if parent_id:
        parent = get_run(request.user, parent_id)
    run = services.run_create(actor=request.user, experiment=experiment, name=name, parent=parent, tags=tags,
                              start_time=fields.int("start_time"))
    return {"run": run_body(selectors.run_get(user=request.user, pk=run.pk))}


def get(request, fields):
    run_id = fields.str("run_id") or fields.str("run_uuid")
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    return {"run": run_body(get_run(request.user, run_id))}


def update(request, fields):
    run = get_run(request.user, fields.str("run_id") or fields.str("run_uuid", required=True))
    status = fields.str("status").upper()
    name = fields.get("run_name")
    if name is not None:
        services.run_update(actor=request.user, run=run, name=str(name))
    if status and status not in convert.FROM_MLFLOW_STATUS:
        raise invalid(f"Invalid status {status!r}.")
    target = convert.FROM_MLFLOW_STATUS.get(status)
    if target in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED):
        services.run_finish(actor=request.user, run=run, status=target, end_time=fields.int("end_time"))
    elif target is not None and target != run.status:
        raise invalid(f"Run {run.pk} is {convert.TO_MLFLOW_STATUS[run.status]}; a run cannot be set back to "
                      f"{status}.")
    return {"run_info": convert.run_info_json(get_run(request.user, run.pk))}


def delete(request, fields):
    run = get_run(request.user, fields.str("run_id", required=True))
    raise MlflowError(f"Run {run.pk} was not deleted: runs on TracSeq MLOps are kept for lineage and the audit "
                      "trail (no soft delete).", NOT_IMPLEMENTED)


def restore(request, fields):
    get_run(request.user, fields.str("run_id", required=True))
    return {}


def _apply_run_name_tag(request, run_id, tags: list[dict]) -> list[dict]:
    """Tags with ``mlflow.runName`` (and ``mlflow.parentRunId``) taken out:
    the first renames the run, the second cannot change after creation."""
    kept = []
    for tag in tags:
        if tag.get("key") == convert.RUN_NAME_TAG:
            run = get_run(request.user, run_id)
            services.run_update(actor=request.user, run=run, name=str(tag.get("value", "")))
        elif tag.get("key") != convert.PARENT_RUN_TAG:
            kept.append(tag)
    return kept


def log_batch(request, fields):
    run_id = fields.str("run_id", required=True)
    metrics = _key_value_list(fields, "metrics")
    params = _key_value_list(fields, "params")
    tags = _key_value_list(fields, "tags")
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise invalid(f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, params and "
                      f"tags in total; got {total}.")
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    with transaction.atomic():
        tags = _apply_run_name_tag(request, run_id, tags)
        services.run_log_batch(actor=request.user, run_id=int(run_id), metrics=metrics, params=params, tags=tags)
    return {}


def log_metric(request, fields):
    run_id = fields.str("run_id") or fields.str("run_uuid", required=True)
    metric = {"key": fields.get("key"), "value": fields.get("value"), "timestamp": fields.get("timestamp"),
              "step": fields.int("step", default=0)}
    if isinstance(metric["value"], str):
        try:
            metric["value"] = float(metric["value"])
        except ValueError:
            raise invalid(f"Invalid metric value {metric['value']!r}.")
    if isinstance(metric["timestamp"], str):
        metric["timestamp"] = fields.int("timestamp")
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    services.run_log_batch(actor=request.user, run_id=int(run_id), metrics=[metric])
    return {}


def log_param(request, fields):
    run_id = fields.str("run_id") or fields.str("run_uuid", required=True)
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    services.run_log_batch(actor=request.user, run_id=int(run_id),
                           params=[{"key": fields.get("key"), "value": fields.get("value")}])
    return {}


def set_tag(request, fields):
    run_id = fields.str("run_id") or fields.str("run_uuid", required=True)
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    with transaction.atomic():
        tags = _apply_run_name_tag(request, run_id, [{"key": fields.get("key"), "value": fields.get("value", "")}])
        if tags:
            services.run_log_batch(actor=request.user, run_id=int(run_id), tags=tags)
    return {}


def delete_tag(request, fields):
    run = get_run(request.user, fields.str("run_id", required=True))
    services.run_tag_delete(actor=request.user, run_id=run.pk, key=fields.str("key", required=True))
    return {}


def search(request, fields):
    requested = [str(e) for e in fields.list("experiment_ids")]
    if not requested:
        raise invalid("Give experiment_ids to search in.")
    # Ids that cannot exist here (MLflow's Default experiment "0", strings)
    # match nothing, as unknown experiments do in MLflow.
    experiment_ids = [int(e) for e in requested if e.isdigit() and e != "0"]
    if not experiment_ids:
        return {"runs": []}
    if fields.str("run_view_type", default="ACTIVE_ONLY").upper() == "DELETED_ONLY":
        return {"runs": []}  # runs are never soft-deleted here
    max_results = fields.int("max_results", default=1000)
    if max_results < 1 or max_results > 50_000:
        raise invalid("max_results must be between 1 and 50000.")
    page = selectors.run_search(
        user=request.user, experiment_ids=experiment_ids,
        filter_string=translate(fields.str("filter")), order_by=translate_order_by(fields.list("order_by")),
        max_results=min(max_results, RUN_SEARCH_PAGE_LIMIT), page_token=fields.str("page_token") or None,
    )
    metrics = latest_metrics([run.pk for run in page.runs])
    body = {"runs": [convert.run_json(run, metrics.get(run.pk, [])) for run in page.runs]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


def metric_history(request, fields):
    run = get_run(request.user, fields.str("run_id") or fields.str("run_uuid", required=True))
    key = fields.str("metric_key", required=True)
    try:
        history = selectors.metric_history(run=run, key=key)
    except NotFound:
        return {"metrics": []}  # MLflow answers a metric never logged with an empty history
    return {"metrics": [convert.metric_json({"key": key, **point}) for point in history["points"]]}


def log_inputs(request, fields):
    """``runs/log-inputs``: each dataset input is kept as a run tag
    ``mlflow.datasetInput.<digest>`` (its name, digest, source and context;
    schema and profile only while they fit a tag) and shown back as the
    run's ``inputs``. Model inputs need nothing: a logged model is its run's."""
    run_id = fields.str("run_id", required=True)
    tags = []
    for entry in fields.list("datasets"):
        dataset = entry.get("dataset") if isinstance(entry, dict) else None
        if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("digest"):
            raise invalid("Each dataset input has a dataset with a name and a digest.")
        tags.append(convert.dataset_input_tag(dataset, entry.get("tags") or []))
    if len(tags) > 100:
        raise invalid("At most 100 dataset inputs per call.")
    if not str(run_id).isdigit():
        raise not_found(f"Run with id={run_id!r} not found.")
    if tags:
        services.run_log_batch(actor=request.user, run_id=int(run_id), tags=tags)
    return {}


BULK_INTERVAL_MAX_RUNS = 100
BULK_INTERVAL_MAX_POINTS = 2500


def metric_history_bulk_interval(request, fields):
    """``metrics/get-history-bulk-interval`` (what MLflow's charts ask for):
    each run's history of one metric, reduced to ``max_results`` points
    with the platform's downsampling (first, last and extremes kept), then
    cut to ``start_step``..``end_step`` when given."""
    run_ids = [str(r) for r in fields.list("run_ids")]
    if not run_ids or len(run_ids) > BULK_INTERVAL_MAX_RUNS:
        raise invalid(f"Give 1 to {BULK_INTERVAL_MAX_RUNS} run_ids.")
    key = fields.str("metric_key", required=True)
    max_results = fields.int("max_results", default=320)
    if not 1 <= max_results <= BULK_INTERVAL_MAX_POINTS:
        raise invalid(f"max_results must be between 1 and {BULK_INTERVAL_MAX_POINTS}.")
    start, end = fields.int("start_step"), fields.int("end_step")
    metrics = []
    for run_id in run_ids:
        run = get_run(request.user, run_id)
        try:
            history = selectors.metric_history(run=run, key=key, max_points=max_results)
        except NotFound:
            continue
        for point in history["points"]:
            if (start is None or point["step"] >= start) and (end is None or point["step"] <= end):
                metrics.append({**convert.metric_json({"key": key, **point}), "run_id": str(run.pk)})
    return {"metrics": metrics}
