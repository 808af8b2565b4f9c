"""``/api/2.0/mlflow/logged-models/*`` and ``runs/outputs`` (MLflow 3's
logged models, what ``mlflow.<flavor>.log_model`` creates).

A logged model here is a directory of its run's artifacts: the model named
``model`` logged from run 42 of experiment 7 has the id ``m-42-model`` and
the artifact location ``mlflow-artifacts:/7/42/artifacts/model``, so its
files are the run's artifacts (the run owner's to write, write-once, under
the run's quota) and registering ``runs:/42/model`` or ``models:/m-42-model``
finds the same files. There is no table of its own: a logged model is
``READY`` once its ``MLmodel`` file is stored, ``PENDING`` before. A model
must be logged inside a run (``source_run_id``). Its tags are run tags
``mlflow.loggedModel.<name>.<key>``; its params are the run's."""

from __future__ import annotations

import re

from apps.experiments import services
from apps.experiments.selectors import visible_experiment_ids
from apps.experiments.services import require_run_write
from apps.mlflow_api import convert
from apps.mlflow_api.api.runs import get_run
from apps.mlflow_api.errors import RESOURCE_ALREADY_EXISTS, MlflowError, invalid, not_found
from apps.mlflow_api.selectors import logged_model_directories

MODEL_ID_RE = re.compile(r"^m-(\d+)-([A-Za-z0-9_.-]{1,100})$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def model_id_for(run_id: int, name: str) -> str:
    return f"m-{run_id}-{name}"


def parse_model_id(user, model_id: str):
    """(run, name) of a logged model id, as the user may see the run."""
    match = MODEL_ID_RE.match(model_id or "")
    if not match:
        raise not_found(f"Logged model {model_id!r} not found.")
    return get_run(user, match.group(1)), match.group(2)


def _tag_prefix(name: str) -> str:
    return f"{convert.LOGGED_MODEL_TAG_PREFIX}{name}."


def logged_model_json(run, name: str, *, ready: bool) -> dict:
    prefix = _tag_prefix(name)
    tags = {k[len(prefix):]: v for k, v in getattr(run, "tag_map", {}).items() if k.startswith(prefix)}
    return {"model": {
        "info": {
            "model_id": model_id_for(run.pk, name),
            "experiment_id": str(run.experiment_id),
            "name": name,
            "artifact_uri": f"{convert.run_artifact_uri(run)}/{name}",
            "creation_timestamp_ms": convert.millis(run.start_time),
            "last_updated_timestamp_ms": convert.millis(run.end_time or run.start_time),
            "source_run_id": str(run.pk),
            "status": "LOGGED_MODEL_READY" if ready else "LOGGED_MODEL_PENDING",
            "status_message": "",
            "tags": convert.key_values(tags),
        },
        "data": {"params": convert.key_values(getattr(run, "param_map", {})), "metrics": []},
    }}


def _ready(run, name: str) -> bool:
    return run.artifacts.filter(path=f"{name}/MLmodel").exists()


def create(request, fields):
    run_id = fields.str("source_run_id")
    if not run_id:
        raise invalid("Log models inside a run (mlflow.start_run()): TracSeq MLOps keeps a model's files with the "
                      "run that produced it.")
    run = get_run(request.user, run_id)
    if fields.str("experiment_id") and fields.str("experiment_id") != str(run.experiment_id):
        raise invalid(f"Run {run.pk} is in experiment {run.experiment_id}, not {fields.str('experiment_id')}.")
    name = fields.str("name") or "model"
    if not NAME_RE.match(name):
        raise invalid(f"Invalid model name {name!r}: use letters, digits, '_', '-' and '.'.")
    require_run_write(request.user, run)
    if run.artifacts.filter(path__startswith=f"{name}/").exists():
        raise MlflowError(f"Run {run.pk} already has a model named {name!r}; log another model under another name "
                          "(artifacts are write-once).", RESOURCE_ALREADY_EXISTS)
    return logged_model_json(run, name, ready=False)


def get(request, fields, model_id: str):
    run, name = parse_model_id(request.user, model_id)
    return logged_model_json(run, name, ready=_ready(run, name))


def finalize(request, fields, model_id: str):
    """``PATCH logged-models/<id>``: the status follows the stored files."""
    return get(request, fields, model_id)


def dispatch(request, fields, model_id: str):
    return (finalize if request.method == "PATCH" else get)(request, fields, model_id)


def set_tags(request, fields, model_id: str):
    run, name = parse_model_id(request.user, model_id)
    tags = [{"key": _tag_prefix(name) + str(t.get("key")), "value": t.get("value", "")}
            for t in fields.list("tags") if isinstance(t, dict)]
    if tags:
        services.run_log_batch(actor=request.user, run_id=run.pk, tags=tags)
    return {}


def delete_tag(request, fields, model_id: str, key: str):
    run, name = parse_model_id(request.user, model_id)
    services.run_tag_delete(actor=request.user, run_id=run.pk, key=_tag_prefix(name) + key)
    return {}


def search(request, fields):
    """Logged models in ``experiment_ids``; the filter may name ``name`` and
    ``source_run_id`` (``=``, joined by AND)."""
    wanted = [int(e) for e in map(str, fields.list("experiment_ids")) if e.isdigit()]
    name = run_id = None
    for clause in [c.strip() for c in re.split(r"\s+and\s+", fields.str("filter"), flags=re.I) if c.strip()]:
        key, op, value = re.match(r"^([\w.]+)\s*(=|==)?\s*(.*)$", clause).groups()
        value = value.strip().strip("'\"")
        if op is None or key.removeprefix("attributes.") not in ("name", "source_run_id"):
            raise invalid(f"Unsupported logged-model filter {clause!r}: use name = '<name>' or "
                          "source_run_id = '<run>'.")
        if key.endswith("name"):
            name = value
        else:
            run_id = value
    experiments = visible_experiment_ids(user=request.user, ids=wanted or None)
    models = []
    for run, directory in logged_model_directories(experiment_ids=experiments, name=name, run_id=run_id):
        models.append(logged_model_json(run, directory, ready=True)["model"])
    return {"models": models}


def log_outputs(request, fields):
    """``runs/outputs``: a logged model is its run's output by construction;
    check that each named model belongs to the run."""
    run = get_run(request.user, fields.str("run_id", required=True))
    for output in fields.list("models"):
        model_id = output.get("model_id") if isinstance(output, dict) else None
        match = MODEL_ID_RE.match(str(model_id or ""))
        if not match or match.group(1) != str(run.pk):
            raise invalid(f"Logged model {model_id!r} is not a model of run {run.pk}.")
    return {}
