"""Registry background work: the demo models. (Webhook deliveries are
sent by ``apps.core.tasks.webhook_delivery_send``.)"""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, queue="default", max_retries=120, soft_time_limit=240, time_limit=300)
def demo_models_seed(self) -> str:
    """Build the demo registry once the worker has trained the demo runs;
    retries every 5 s (for up to 10 minutes) until they exist."""
    from apps.registry import demo

    outcome = demo.seed_models()
    if outcome == demo.WAITING:
        raise self.retry(countdown=5)
    return outcome
