"""``/api/2.0/mlflow/experiments/*`` over the experiments app's services."""

from __future__ import annotations

from apps.experiments import selectors, services
from apps.mlflow_api import convert
from apps.mlflow_api.errors import NOT_IMPLEMENTED, MlflowError, invalid, not_found
from apps.mlflow_api.selectors import EXPERIMENT_SEARCH_LIMIT, experiment_search

DEFAULT_EXPERIMENT_ID = "0"


def get_experiment(user, experiment_id):
    """The experiment ``experiment_id`` names, as the user may see it."""
    if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
        raise not_found("There is no Default experiment (id 0) on TracSeq MLOps: choose one with "
                        "mlflow.set_experiment('<name>') or MLFLOW_EXPERIMENT_NAME.")
    if not str(experiment_id).isdigit():
        raise not_found(f"No experiment with id={experiment_id!r}.")
    return selectors.experiment_get(user=user, pk=int(experiment_id))


def _tags(fields) -> dict:
    tags = {}
    for item in fields.list("tags"):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise invalid("Each tag is an object with a key and a value.")
        tags[item["key"]] = item.get("value", "")
    return tags


def create(request, fields):
    name = fields.str("name", required=True)
    tags = _tags(fields)
    description = tags.pop(convert.NOTE_TAG, "")
    experiment = services.experiment_create(actor=request.user, name=name, description=description, tags=tags)
    return {"experiment_id": str(experiment.pk)}


def get(request, fields):
    experiment = get_experiment(request.user, fields.str("experiment_id", required=True))
    return {"experiment": convert.experiment_json(experiment)}


def get_by_name(request, fields):
    experiment = selectors.experiment_get_by_name(user=request.user, name=fields.str("experiment_name",
                                                                                      required=True))
    return {"experiment": convert.experiment_json(experiment)}


def search(request, fields):
    max_results = fields.int("max_results", default=1000)
    if not 1 <= max_results <= EXPERIMENT_SEARCH_LIMIT:
        raise invalid(f"max_results must be between 1 and {EXPERIMENT_SEARCH_LIMIT}.")
    view_type = fields.str("view_type", default="ACTIVE_ONLY").upper()
    if view_type == "DELETED_ONLY":
        return {"experiments": []}  # experiments are never soft-deleted here
    token = fields.str("page_token")
    offset = int(token) if token.isdigit() else 0
    if token and not token.isdigit():
        raise invalid("Invalid page_token.")
    rows, more = experiment_search(user=request.user, filter_string=fields.str("filter"),
                                   order_by=fields.list("order_by"), offset=offset, max_results=max_results)
    body = {"experiments": [convert.experiment_json(e) for e in rows]}
    if more:
        body["next_page_token"] = str(offset + max_results)
    return body


def update(request, fields):
    experiment = get_experiment(request.user, fields.str("experiment_id", required=True))
    new_name = fields.str("new_name")
    if new_name:
        services.experiment_rename(actor=request.user, experiment=experiment, name=new_name)
    return {}


def set_tag(request, fields):
    experiment = get_experiment(request.user, fields.str("experiment_id", required=True))
    key = fields.str("key", required=True)
    value = fields.get("value", "")
    if key == convert.NOTE_TAG:
        services.experiment_update(actor=request.user, experiment=experiment, description=str(value))
    else:
        services.experiment_tag_set(actor=request.user, experiment=experiment, key=key, value=value)
    return {}


def delete(request, fields):
    experiment = get_experiment(request.user, fields.str("experiment_id", required=True))
    raise MlflowError(f"Experiment {experiment.pk} was not deleted: experiments on TracSeq MLOps are kept with "
                      "their runs for the audit trail (no soft delete).", NOT_IMPLEMENTED)


def restore(request, fields):
    """Experiments are never deleted here, so each one is already active."""
    get_experiment(request.user, fields.str("experiment_id", required=True))
    return {}
