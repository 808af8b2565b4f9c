"""MLflow's REST routes, mounted at ``/api/2.0/mlflow/`` and
``/ajax-api/2.0/mlflow/`` (the prefix MLflow's web UI and some client calls
use), and the proxied artifact routes at ``/api/2.0/mlflow-artifacts/``."""

from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from apps.mlflow_api.api import artifacts, experiments, logged_models, registry, runs
from apps.mlflow_api.api.base import endpoint
from apps.mlflow_api.errors import ENDPOINT_NOT_FOUND, mlflow_error_response

GET, POST, PATCH, DELETE = "GET", "POST", "PATCH", "DELETE"


@csrf_exempt
def unknown_route(request):
    return mlflow_error_response(ENDPOINT_NOT_FOUND, f"{request.method} {request.path} is not an MLflow route served "
                                 "by TracSeq MLOps (see docs/mlflow.md).", 404)

tracking = [
    ("experiments/create", experiments.create, [POST]),
    ("experiments/get", experiments.get, [GET]),
    ("experiments/get-by-name", experiments.get_by_name, [GET]),
    ("experiments/search", experiments.search, [GET, POST]),
    ("experiments/update", experiments.update, [POST]),
    ("experiments/delete", experiments.delete, [POST]),
    ("experiments/restore", experiments.restore, [POST]),
    ("experiments/set-experiment-tag", experiments.set_tag, [POST]),
    ("runs/create", runs.create, [POST]),
    ("runs/get", runs.get, [GET]),
    ("runs/update", runs.update, [POST]),
    ("runs/delete", runs.delete, [POST]),
    ("runs/restore", runs.restore, [POST]),
    ("runs/log-metric", runs.log_metric, [POST]),
    ("runs/log-parameter", runs.log_param, [POST]),
    ("runs/log-batch", runs.log_batch, [POST]),
    ("runs/set-tag", runs.set_tag, [POST]),
    ("runs/delete-tag", runs.delete_tag, [POST]),
    ("runs/search", runs.search, [POST]),
    ("metrics/get-history", runs.metric_history, [GET]),
    ("metrics/get-history-bulk-interval", runs.metric_history_bulk_interval, [GET]),
    ("registered-models/create", registry.model_create, [POST]),
    ("registered-models/get", registry.model_get, [GET]),
    ("registered-models/search", registry.model_search, [GET]),
    ("registered-models/update", registry.model_update, [PATCH]),
    ("registered-models/rename", registry.model_rename, [POST]),
    ("registered-models/delete", registry.model_delete, [DELETE]),
    ("registered-models/set-tag", registry.model_set_tag, [POST]),
    ("registered-models/delete-tag", registry.model_delete_tag, [DELETE]),
    ("registered-models/alias", registry.alias, [GET, POST, DELETE]),
    ("registered-models/get-latest-versions", registry.latest_versions, [GET, POST]),
    ("model-versions/create", registry.version_create, [POST]),
    ("model-versions/get", registry.version_get, [GET]),
    ("model-versions/update", registry.version_update, [PATCH]),
    ("model-versions/delete", registry.version_delete, [DELETE]),
    ("model-versions/search", registry.version_search, [GET]),
    ("model-versions/set-tag", registry.version_set_tag, [POST]),
    ("model-versions/delete-tag", registry.version_delete_tag, [DELETE]),
    ("model-versions/transition-stage", registry.version_transition_stage, [POST]),
    ("model-versions/get-download-uri", registry.version_download_uri, [GET]),
    ("logged-models", logged_models.create, [POST]),
    ("logged-models/search", logged_models.search, [POST]),
    ("logged-models/<str:model_id>", logged_models.dispatch, [GET, PATCH]),
    ("logged-models/<str:model_id>/tags", logged_models.set_tags, [PATCH]),
    ("logged-models/<str:model_id>/tags/<path:key>", logged_models.delete_tag, [DELETE]),
    ("runs/outputs", logged_models.log_outputs, [POST]),
    ("runs/log-inputs", runs.log_inputs, [POST]),
]

routes = [path(route, endpoint(handler, *methods)) for route, handler, methods in tracking]
artifact_routes = [
    path("artifacts", artifacts.ArtifactListView.as_view()),
    re_path(r"^artifacts/(?P<path>.+)$", artifacts.ArtifactView.as_view()),
]
urlpatterns = [
    path("api/2.0/mlflow/", include(routes)),
    path("ajax-api/2.0/mlflow/", include(routes)),
    path("api/2.0/mlflow-artifacts/", include(artifact_routes)),
    # Anything else under MLflow's prefixes answers in MLflow's error shape.
    re_path(r"^(?:ajax-)?api/[23]\.0/mlflow(?:-artifacts)?/", unknown_route),
]
