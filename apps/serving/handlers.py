"""Reactions to other apps' domain events and to worker start-up. Each
handler only enqueues a task (see apps/core/events.py)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def on_model_version_stage_changed(event: str, payload: dict) -> None:
    from apps.serving.tasks import deployments_note_stage_change

    deployments_note_stage_change.delay(payload["version_id"], payload.get("from_stage", ""),
                                        payload.get("to_stage", ""))
    if payload.get("to_stage") == "production" and payload.get("transition_id"):
        from apps.serving.services import rollout_queue
        from apps.serving.tasks import endpoints_follow_registry

        endpoints_follow_registry.apply_async(args=(payload["version_id"], payload["transition_id"]),
                                              queue=rollout_queue())


def on_registry_demo_ready(event: str, payload: dict) -> None:
    from apps.serving.tasks import demo_seed_serving

    demo_seed_serving.delay()


def on_worker_ready(sender=None, **kwargs) -> None:
    """A worker (re)started: rollouts it or a dead predecessor held ticks for
    carry on from their persisted state."""
    from apps.serving.services import rollout_queue
    from apps.serving.tasks import rollouts_resume

    try:
        rollouts_resume.apply_async(queue=rollout_queue())
    except Exception:  # a broker hiccup at start-up must not stop the worker; beat re-sends overdue ticks
        logger.exception("could not enqueue rollouts_resume at worker start")


def connect_worker_signals() -> None:
    from celery.signals import worker_ready

    worker_ready.connect(on_worker_ready, dispatch_uid="serving-rollouts-resume")
