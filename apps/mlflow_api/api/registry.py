"""``/api/2.0/mlflow/registered-models/*`` and ``model-versions/*`` over the
registry's services. Stage transitions become promotion requests: an MLflow
client may ask, never move a stage itself (four eyes and the quality gates
stay in force); the answer shows the version in its current stage with the
pending request."""

from __future__ import annotations

from apps.core.errors import NotFound
from apps.experiments.selectors import run_get
from apps.mlflow_api import convert
from apps.mlflow_api.api.artifacts import resolve as resolve_artifact_path
from apps.mlflow_api.api.logged_models import parse_model_id
from apps.mlflow_api.api.runs import get_run
from apps.mlflow_api.errors import NOT_IMPLEMENTED, MlflowError, invalid, not_found
from apps.mlflow_api.selectors import registered_model_search
from apps.mlflow_api.services import mlflow_model_version_create
from apps.registry import selectors, services
from apps.registry.choices import ModelTaskType

TASK_TYPE_TAG = "task_type"
DEFAULT_JUSTIFICATION = "Requested through the MLflow API (transition-model-version-stage)."


def _model(request, fields, key: str = "name"):
    return selectors.registered_model_get(user=request.user, name=fields.str(key, required=True), annotated=False)


def _version(request, fields):
    model = _model(request, fields)
    number = fields.str("version", required=True)
    if not number.isdigit():
        raise not_found(f"{model.name} has no version {number!r}.")
    return selectors.model_version_get(user=request.user, registered_model=model, version=int(number))


def _pending(versions) -> dict:
    """Pending promotion request of each version (one query)."""
    return selectors.promotion_requests_pending(versions=versions)


def _versions_json(versions) -> list[dict]:
    pending = _pending(versions)
    return [convert.model_version_json(v, pending=pending.get(v.pk)) for v in versions]


def _latest(request, model, stages=None) -> list[dict]:
    """The newest version in each stage (all stages unless named)."""
    wanted = [convert.FROM_MLFLOW_STAGE.get(s.lower()) for s in stages or []]
    if None in wanted:
        raise invalid(f"Invalid stage in {stages!r}: use None, Staging, Production or Archived.")
    newest = {}
    for version in selectors.model_version_list(user=request.user, registered_model=model):
        if (not wanted or version.stage in wanted) and version.stage not in newest:
            newest[version.stage] = version
    return _versions_json(sorted(newest.values(), key=lambda v: v.version))


def _tags(fields) -> dict:
    return {str(t.get("key")): str(t.get("value", "")) for t in fields.list("tags") if isinstance(t, dict)}


# --- Registered models ---------------------------------------------------------------

def model_create(request, fields):
    tags = _tags(fields)
    task_type = tags.pop(TASK_TYPE_TAG, ModelTaskType.CLASSIFICATION)
    model = services.registered_model_create(actor=request.user, name=fields.str("name", required=True),
                                             task_type=task_type, description=fields.str("description"), tags=tags)
    return {"registered_model": convert.registered_model_json(model)}


def model_get(request, fields):
    model = _model(request, fields)
    return {"registered_model": convert.registered_model_json(model, latest=_latest(request, model))}


def model_search(request, fields):
    max_results = fields.int("max_results", default=100)
    if not 1 <= max_results <= 1000:
        raise invalid("max_results must be between 1 and 1000.")
    token = fields.str("page_token")
    if token and not token.isdigit():
        raise invalid("Invalid page_token.")
    offset = int(token or 0)
    rows, more = registered_model_search(user=request.user, filter_string=fields.str("filter"),
                                         order_by=fields.list("order_by"), offset=offset, max_results=max_results)
    body = {"registered_models": [convert.registered_model_json(m, latest=_latest(request, m)) for m in rows]}
    if more:
        body["next_page_token"] = str(offset + max_results)
    return body


def model_update(request, fields):
    model = _model(request, fields)
    if fields.get("description") is not None:
        model = services.registered_model_update(registered_model=model, actor=request.user,
                                                 description=fields.str("description"))
    return {"registered_model": convert.registered_model_json(model)}


def model_rename(request, fields):
    model = _model(request, fields)
    raise MlflowError(f"Registered model {model.name} was not renamed: model names are fixed on TracSeq MLOps "
                      "(deployments, webhooks and the audit trail refer to them).", NOT_IMPLEMENTED)


def model_delete(request, fields):
    model = _model(request, fields)
    raise MlflowError(f"Registered model {model.name} was not deleted: registered models and their versions are "
                      "kept for lineage and the audit trail.", NOT_IMPLEMENTED)


def model_set_tag(request, fields):
    model = _model(request, fields)
    tags = {**model.tags, fields.str("key", required=True): str(fields.get("value", ""))}
    services.registered_model_update(registered_model=model, actor=request.user, tags=tags)
    return {}


def model_delete_tag(request, fields):
    model = _model(request, fields)
    key = fields.str("key", required=True)
    if key not in model.tags:
        raise not_found(f"Registered model {model.name} has no tag {key!r}.")
    services.registered_model_update(registered_model=model, actor=request.user,
                                     tags={k: v for k, v in model.tags.items() if k != key})
    return {}


def alias_set(request, fields):
    model = _model(request, fields)
    number = fields.int("version", required=True)
    services.model_alias_set(registered_model=model, alias=fields.str("alias", required=True), version_number=number,
                             actor=request.user)
    return {}


def alias_delete(request, fields):
    model = _model(request, fields)
    services.model_alias_delete(registered_model=model, alias=fields.str("alias", required=True), actor=request.user)
    return {}


def alias_get(request, fields):
    model = _model(request, fields)
    alias = fields.str("alias", required=True)
    found = model.aliases.filter(alias=alias).select_related("version").first()
    if found is None:
        raise not_found(f"Registered model {model.name} has no alias {alias!r}.")
    version = selectors.model_version_get(user=request.user, registered_model=model, version=found.version.version)
    return {"model_version": _versions_json([version])[0]}


def alias(request, fields):
    """``registered-models/alias``: GET reads, POST sets, DELETE removes."""
    handler = {"GET": alias_get, "POST": alias_set, "DELETE": alias_delete}[request.method]
    return handler(request, fields)


def latest_versions(request, fields):
    model = _model(request, fields)
    return {"model_versions": _latest(request, model, fields.list("stages"))}


# --- Model versions ------------------------------------------------------------------

def _source_run(request, fields):
    """(run, path in the run) of a version's ``source``: ``runs:/<run>/<path>``
    or ``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>``."""
    source = fields.str("source", required=True)
    if source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").strip("/").partition("/")
        return get_run(request.user, run_id), path
    if source.startswith("models:/"):
        run, name = parse_model_id(request.user, source.removeprefix("models:/").strip("/"))
        return run, name
    if source.startswith("mlflow-artifacts:"):
        return resolve_artifact_path(request.user, source.removeprefix("mlflow-artifacts:").lstrip("/"))
    if fields.str("run_id"):
        raise invalid(f"Unsupported source {source!r}: use runs:/{fields.str('run_id')}/model.")
    raise invalid(f"Unsupported source {source!r}: register a run's model as runs:/<run_id>/model.")


def version_create(request, fields):
    model = _model(request, fields)
    run, path = _source_run(request, fields)
    version = mlflow_model_version_create(actor=request.user, registered_model=model,
                                          run=run_get(user=request.user, pk=run.pk), path=path,
                                          description=fields.str("description"))
    tags = _tags(fields)
    if tags:
        version = services.model_version_update(version=version, actor=request.user, tags=tags)
    return {"model_version": _versions_json([version])[0]}


def version_get(request, fields):
    return {"model_version": _versions_json([_version(request, fields)])[0]}


def version_update(request, fields):
    version = _version(request, fields)
    if fields.get("description") is not None:
        version = services.model_version_update(version=version, actor=request.user,
                                                description=fields.str("description"))
    return {"model_version": _versions_json([version])[0]}


def version_delete(request, fields):
    version = _version(request, fields)
    raise MlflowError(f"Version {version.version} of {version.registered_model.name} was not deleted: versions are "
                      "kept for lineage and the audit trail; archive it through a promotion instead.",
                      NOT_IMPLEMENTED)


def version_set_tag(request, fields):
    version = _version(request, fields)
    tags = {**version.tags, fields.str("key", required=True): str(fields.get("value", ""))}
    services.model_version_update(version=version, actor=request.user, tags=tags)
    return {}


def version_delete_tag(request, fields):
    version = _version(request, fields)
    key = fields.str("key", required=True)
    if key not in version.tags:
        raise not_found(f"Version {version.version} of {version.registered_model.name} has no tag {key!r}.")
    services.model_version_update(version=version, actor=request.user,
                                  tags={k: v for k, v in version.tags.items() if k != key})
    return {}


def version_search(request, fields):
    """``name = '<model>'`` and/or ``run_id = '<run>'``, joined by AND."""
    qs = selectors.model_version_list(user=request.user)
    for clause in [c.strip() for c in fields.str("filter").replace(" AND ", " and ").split(" and ") if c.strip()]:
        key, _, value = clause.partition("=")
        key, value = key.strip().removeprefix("attributes."), value.strip().strip("'\"")
        if key == "name":
            qs = qs.filter(registered_model__name=value)
        elif key in ("run_id", "source_run_id"):
            qs = qs.filter(source_run_id=int(value)) if value.isdigit() else qs.none()
        else:
            raise invalid(f"Unsupported model version filter {clause!r}: use name = '<model>' or run_id = '<run>'.")
    max_results = fields.int("max_results", default=1000)
    if not 1 <= max_results <= 10_000:
        raise invalid("max_results must be between 1 and 10000.")
    return {"model_versions": _versions_json(list(qs[:max_results]))}


def version_transition_stage(request, fields):
    version = _version(request, fields)
    stage = fields.str("stage", required=True)
    target = convert.FROM_MLFLOW_STAGE.get(stage.lower())
    if target not in ("staging", "production"):
        raise invalid(f"Stage {stage!r} cannot be requested here: ask for Staging or Production; they become a "
                      "promotion request that an approver decides (archiving follows a new Production version).")
    services.promotion_request_create(version=version, actor=request.user, target_stage=target,
                                      justification=fields.str("comment") or DEFAULT_JUSTIFICATION)
    version = selectors.model_version_get(user=request.user, registered_model=version.registered_model,
                                          version=version.version)
    return {"model_version": _versions_json([version])[0]}


def version_download_uri(request, fields):
    version = _version(request, fields)
    if not version.source_run_id:
        raise NotFound(f"Version {version.version} of {version.registered_model.name} was uploaded, not logged "
                       "from a run; download it from /api/v1/models/.")
    return {"artifact_uri": convert.run_artifact_uri(version.source_run) + "/model"}
