"""What every transition of a deployment does, shared by the rollout state
machine (``rollouts.py``), the health checks (``health.py``), the bake
(``bake.py``) and following the registry (``following.py``): lock the
endpoint and its live deployments, save the changed fields, record the
transition (timeline, audit, webhooks, domain event), move the rollout state
and schedule the next tick. Private to ``apps.serving.services``."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import NotFound
from apps.core.services import audit_record, snapshot
from apps.serving.choices import ACTIVE_ROLLOUT_STATES, DeploymentStatus
from apps.serving.models import Deployment, Endpoint, RolloutEvent
from apps.serving.runtime import bump_routing_stamp

logger = logging.getLogger(__name__)

DEPLOYMENT_AUDIT_FIELDS = ["status", "rollout_state", "traffic_weight", "rollout_step", "paused_reason",
                           "status_reason"]
LIVE_STATUSES = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)
# Transitions published as domain events (``serving.deployment.<kind>``) for
# the apps above and the inbox: the ones somebody has to look at.
PUBLISHED_KINDS = ("degraded", "rolled_back", "paused", "failed")
# How long after the last request window a healthy deployment is judged (degraded / recovered).
HEALTH_WINDOW = timedelta(minutes=5)


# --- Helpers ---------------------------------------------------------------------------

def _emit_webhook(deployment: Deployment, event: str, payload: dict) -> None:
    """``deployment.<kind>``, scoped to the deployed model: what webhooks
    receive (the in-process twin is ``serving.deployment.<kind>``)."""
    model = deployment.model_version.registered_model
    events.publish(f"deployment.{event}", payload, subject=model, envelope={"registered_model": model.name})


def deployment_payload(deployment: Deployment, **extra) -> dict:
    """The JSON body of deployment webhooks (``data`` of the envelope)."""
    version = deployment.model_version
    return {
        "deployment_id": deployment.pk, "endpoint": deployment.endpoint.slug,
        "environment": deployment.endpoint.environment, "model": version.registered_model.name,
        "version": version.version, "model_version_id": version.pk, "strategy": deployment.strategy,
        "status": deployment.status, "rollout_state": deployment.rollout_state,
        "traffic_weight": deployment.traffic_weight, "rollout_step": deployment.rollout_step, **extra,
    }


def _record(deployment: Deployment, *, kind: str, actor, message: str, before: dict | None, data: dict | None = None,
            webhook: bool = True) -> None:
    """Timeline event + audit event + webhooks for one transition (inside its transaction)."""
    RolloutEvent.objects.create(deployment=deployment, kind=kind, message=message,
                                traffic_weight=deployment.traffic_weight, data=data or {},
                                actor=actor if getattr(actor, "is_authenticated", False) else None)
    audit_record(actor=actor, action=f"deployment.{kind}", target=deployment, before=before,
                 after=snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS), message=message)
    if webhook:
        _emit_webhook(deployment, kind, deployment_payload(deployment, message=message, **(data or {})))
    if kind in PUBLISHED_KINDS:
        events.publish(f"serving.deployment.{kind}", deployment_payload(deployment, message=message, **(data or {})),
                       webhooks=False)


def rollout_queue() -> str:
    return getattr(settings, "SERVING_ROLLOUT_QUEUE", "rollouts") or "rollouts"


def send_tick(deployment_id: int, seq: int, countdown: float = 0.0) -> None:
    from apps.serving.tasks import rollout_tick

    rollout_tick.apply_async(args=(deployment_id, seq), countdown=max(0.0, countdown), queue=rollout_queue())


def _schedule_tick(deployment: Deployment) -> None:
    """Send the tick for the deployment's current state after commit."""
    if deployment.next_check_at is None or deployment.rollout_state not in ACTIVE_ROLLOUT_STATES:
        return
    countdown = (deployment.next_check_at - timezone.now()).total_seconds()
    transaction.on_commit(partial(send_tick, deployment.pk, deployment.rollout_seq, countdown))


def _scale_down_later(deployment: Deployment) -> None:
    def run():
        from apps.serving.backends import get_backend

        try:
            get_backend().scale_down(deployment)
        except Exception:  # the routing change is what matters; a backend hiccup is logged for operators
            logger.exception("scaling down deployment %s failed", deployment.pk)

    transaction.on_commit(run)


def _lock(deployment_id: int) -> tuple[Deployment, list[Deployment]]:
    """Lock the endpoint, then the deployment and its live siblings."""
    endpoint_id = Deployment.objects.filter(pk=deployment_id).values_list("endpoint_id", flat=True).first()
    if endpoint_id is None:
        raise NotFound(f"No deployment {deployment_id}.")
    Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    deployment = (Deployment.objects.select_for_update(of=("self",))
                  .select_related("endpoint", "model_version__registered_model").get(pk=deployment_id))
    others = list(Deployment.objects.select_for_update(of=("self",))
                  .select_related("endpoint", "model_version__registered_model")
                  .filter(endpoint_id=endpoint_id, status__in=LIVE_STATUSES).exclude(pk=deployment_id)
                  .order_by("id"))
    return deployment, others


def _save(deployment: Deployment, *fields: str) -> None:
    deployment.save(update_fields=[*fields, "updated_at"])


def _set_weights(deployment: Deployment, others: list[Deployment], weight: float) -> None:
    """Give ``deployment`` ``weight`` % and share the rest among the baseline
    deployments in proportion to their weights before the rollout."""
    baseline = {int(k): float(v) for k, v in (deployment.rollout_baseline or {}).items()}
    total = sum(baseline.values())
    remaining = max(0.0, 100.0 - weight)
    deployment.traffic_weight = float(weight)
    _save(deployment, "traffic_weight")
    for other in others:
        share = baseline.get(other.pk, 0.0)
        new_weight = round(remaining * share / total, 6) if total else 0.0
        if other.traffic_weight != new_weight:
            other.traffic_weight = new_weight
            _save(other, "traffic_weight")
    transaction.on_commit(bump_routing_stamp)


def _bump(deployment: Deployment, *, state: str, next_check_in: float | None) -> None:
    deployment.rollout_state = state
    deployment.rollout_seq += 1
    deployment.next_check_at = (timezone.now() + timedelta(seconds=next_check_in)
                                if next_check_in is not None else None)
    _save(deployment, "rollout_state", "rollout_seq", "next_check_at")


def _check_interval(deployment: Deployment, remaining: float) -> float:
    interval = float(deployment.config.get("check_interval_s", 10))
    return max(0.0, min(interval, remaining))

