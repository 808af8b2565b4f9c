"""``/api/2.0/mlflow/logged-models/*`` (MLflow 3's logged models).

Not stored yet: the client asks ``logged-models/search`` whenever it lists
or downloads a run's artifacts (to add the artifacts of a model logged from
the run), and an empty answer lets it carry on with the run's own artifacts.
Creating a logged model (``mlflow.<flavor>.log_model``) answers
``NOT_IMPLEMENTED``; see docs/mlflow.md."""

from __future__ import annotations

from apps.mlflow_api.errors import NOT_IMPLEMENTED, MlflowError


def search(request, fields):
    return {"models": []}


def create(request, fields):
    raise MlflowError("Logged models (mlflow.<flavor>.log_model) are not supported yet: log the model's files "
                      "with mlflow.log_artifacts, or register a platform training run.", NOT_IMPLEMENTED)
