"""Writes of the serving app, split by subdomain and re-exported here:
``from apps.serving import services; services.deployment_start(...)``."""

from apps.serving.services._transition import deployment_payload, rollout_queue, send_tick
from apps.serving.services.bake import deployments_check_bake
from apps.serving.services.deployments import (
    check_version_allowed,
    deployment_build,
    deployment_dry_run,
    deployment_start,
    deployments_note_stage_change,
    model_version_resolve,
)
from apps.serving.services.endpoints import (
    clean_endpoint_config,
    endpoint_create,
    endpoint_delete,
    endpoint_update,
)
from apps.serving.services.following import (
    STALE_EVENT,
    endpoint_announce_stale,
    endpoints_follow_registry,
    stale_deployments,
)
from apps.serving.services.health import HealthResult, deployment_health_check, deployments_check_health
from apps.serving.services.manifests import deployment_manifests_apply, deployment_manifests_render
from apps.serving.services.predictions import (
    PredictionFailed,
    ServiceUnavailable,
    feedback_join_pending,
    feedback_record,
    predict,
    prediction_logs_prune,
)
from apps.serving.services.rollouts import (
    deployment_pause,
    deployment_promote,
    deployment_resume,
    deployment_rollback,
    rollout_tick,
    rollouts_resume,
)
from apps.serving.services.splits import (
    endpoint_split_end,
    endpoint_split_guard,
    endpoint_split_held,
    endpoint_split_start,
    split_arm_for,
    split_router,
)

__all__ = [
    "STALE_EVENT",
    "HealthResult",
    "PredictionFailed",
    "ServiceUnavailable",
    "check_version_allowed",
    "clean_endpoint_config",
    "deployment_build",
    "deployment_dry_run",
    "deployment_health_check",
    "deployment_manifests_apply",
    "deployment_manifests_render",
    "deployment_pause",
    "deployment_payload",
    "deployment_promote",
    "deployment_resume",
    "deployment_rollback",
    "deployment_start",
    "deployments_check_bake",
    "deployments_check_health",
    "deployments_note_stage_change",
    "endpoint_announce_stale",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_split_end",
    "endpoint_split_guard",
    "endpoint_split_held",
    "endpoint_split_start",
    "endpoint_update",
    "endpoints_follow_registry",
    "feedback_join_pending",
    "feedback_record",
    "model_version_resolve",
    "predict",
    "prediction_logs_prune",
    "rollout_queue",
    "rollout_tick",
    "rollouts_resume",
    "send_tick",
    "split_arm_for",
    "split_router",
    "stale_deployments",
]
