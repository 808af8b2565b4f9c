"""Registry background work: webhook deliveries and the demo models."""

from __future__ import annotations

from celery import shared_task

from apps.registry import services


@shared_task(bind=True, queue="default", max_retries=None, soft_time_limit=60, time_limit=90)
def deliver_webhook(self, delivery_id: int, claim: str | None = None) -> str:
    """One attempt of a webhook delivery; retried with exponential backoff
    while the service says so (it counts attempts and stops at
    WEBHOOK_MAX_ATTEMPTS). ``claim`` comes from the sweep's hand-out."""
    outcome = services.webhook_delivery_attempt(delivery_id=delivery_id, claim=claim)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, kwargs={"claim": None})
    return outcome.status


@shared_task(queue="default", soft_time_limit=50, time_limit=60)
def webhook_delivery_sweep() -> int:
    """Beat: send the deliveries whose task was lost (worker or broker
    restart) or whose retry is overdue. Returns how many were handed out."""
    return len(services.webhook_delivery_sweep())


@shared_task(bind=True, queue="default", max_retries=120, soft_time_limit=240, time_limit=300)
def demo_models_seed(self) -> str:
    """Build the demo registry once the worker has trained the demo runs;
    retries every 5 s (for up to 10 minutes) until they exist."""
    from apps.registry import demo

    outcome = demo.seed_models()
    if outcome == demo.WAITING:
        raise self.retry(countdown=5)
    return outcome
