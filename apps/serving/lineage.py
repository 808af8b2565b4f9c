"""The lineage this app provides to the apps below it (registered in
``ServingConfig.ready()``, see ``apps.core.lineage``): the deployments of a
model version, checked through their endpoint."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.lineage import LineageLink, LineageProvider
from apps.serving.models import Deployment


def _describe_deployment(deployment: Deployment) -> dict:
    model_version = deployment.model_version
    return {"id": deployment.pk, "name": str(deployment), "model_version_id": deployment.model_version_id,
            "model": model_version.registered_model.name, "version": model_version.version,
            "endpoint": deployment.endpoint.slug, "environment": deployment.endpoint.environment,
            "status": deployment.status, "strategy": deployment.strategy,
            "traffic_weight": deployment.traffic_weight, "rollout_state": deployment.rollout_state,
            "created_at": deployment.created_at}


def _model_version_deployments(model_versions: QuerySet) -> QuerySet[Deployment]:
    return Deployment.objects.filter(model_version__in=model_versions.values("pk"))


PROVIDER = LineageProvider(app_label="serving", links=(
    LineageLink(source="registry.ModelVersion", name="deployments", objects=_model_version_deployments,
                permission_via="endpoint", describe=_describe_deployment,
                select_related=("endpoint", "model_version__registered_model"), ordering=("-created_at", "-pk")),
))

__all__ = ["PROVIDER"]
