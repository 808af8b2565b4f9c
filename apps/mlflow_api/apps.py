from django.apps import AppConfig


class MlflowApiConfig(AppConfig):
    """MLflow's REST API over the platform's experiments and registry, so that
    code written for MLflow logs here by setting ``MLFLOW_TRACKING_URI``.
    It owns no tables: every call goes through the services and selectors of
    the apps below it (see docs/mlflow.md)."""

    name = "apps.mlflow_api"
    label = "mlflow_api"
    verbose_name = "MLflow-compatible API"
