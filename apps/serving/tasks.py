"""Serving tasks: thin wrappers around services, on the ``rollouts`` queue
(rollout ticks, health checks of the live deployments) and ``default``
(feedback joins, log retention, the demo)."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.serving import services

logger = logging.getLogger(__name__)


@shared_task(queue="rollouts", acks_late=True, soft_time_limit=540, time_limit=600)
def rollout_tick(deployment_id: int, seq: int) -> str:
    """One step of a rollout's state machine (health check, traffic step,
    analysis). Idempotent: a tick for a state that moved on does nothing."""
    return services.rollout_tick(deployment_id=deployment_id, seq=seq)


@shared_task(queue="rollouts", soft_time_limit=50, time_limit=60)
def rollouts_resume(due_only: bool = False) -> int:
    """Re-send the tick of every active rollout (worker start), or only of
    those whose tick is overdue (periodic safety net)."""
    return services.rollouts_resume(due_only=due_only)


@shared_task(queue="rollouts", soft_time_limit=100, time_limit=120)
def deployments_check_health() -> dict:
    """Each minute (beat): baking deployments that break their thresholds
    are rolled back first, then the others are marked degraded or healthy."""
    return {**services.deployments_check_bake(), **services.deployments_check_health()}


@shared_task(queue="rollouts", acks_late=True, soft_time_limit=100, time_limit=120)
def endpoints_follow_registry(model_version_id: int, transition_id: int) -> dict:
    """Move production endpoints to a version that entered Production.
    Idempotent per transition, so a redelivered message starts nothing twice."""
    return services.endpoints_follow_registry(model_version_id=model_version_id, transition_id=transition_id)


@shared_task(queue="rollouts", soft_time_limit=100, time_limit=120)
def deployments_note_stage_change(model_version_id: int, from_stage: str, to_stage: str) -> int:
    return services.deployments_note_stage_change(model_version_id=model_version_id, from_stage=from_stage,
                                                  to_stage=to_stage)


@shared_task(queue="default", soft_time_limit=100, time_limit=120)
def feedback_join_pending() -> int:
    return services.feedback_join_pending()


@shared_task(queue="default", soft_time_limit=1700, time_limit=1800)
def prediction_logs_prune(days: int | None = None) -> int:
    """Delete prediction logs older than ``SERVING_LOG_RETENTION_DAYS`` (30)."""
    return services.prediction_logs_prune(days=days)


@shared_task(bind=True, queue="default", max_retries=120, soft_time_limit=240, time_limit=300)
def demo_seed_serving(self) -> str:
    """Build the serving part of the demo once the registry's demo models
    exist; retries every 15 s until they do (training runs in the worker)."""
    from apps.serving import demo

    outcome = demo.seed_serving()
    if outcome == "waiting":
        raise self.retry(countdown=15)
    return outcome
