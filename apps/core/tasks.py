from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(queue="default", soft_time_limit=20, time_limit=30)
def ping(payload: str = "pong") -> str:
    """A trivial task: proves a worker consumes the broker and writes results."""
    return payload


@shared_task(queue="default", soft_time_limit=240, time_limit=300)
def prune_task_results(days: int = 14) -> int:
    from django_celery_results.models import TaskResult

    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = TaskResult.objects.filter(date_done__lt=cutoff).delete()
    return deleted


@shared_task(bind=True, queue="default", max_retries=None, soft_time_limit=60, time_limit=90)
def webhook_delivery_send(self, delivery_id: int, claim: str | None = None) -> str:
    """One attempt of a webhook delivery; retried with exponential backoff
    while the service says so (it counts attempts and stops at
    WEBHOOK_MAX_ATTEMPTS). Idempotent: the attempt claims the delivery row
    first, so a duplicate or late task sends nothing twice. ``claim`` comes
    from the sweep's hand-out."""
    from apps.core.webhooks.delivery import webhook_delivery_attempt

    outcome = webhook_delivery_attempt(delivery_id=delivery_id, claim=claim)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, kwargs={"claim": None})
    return outcome.status


@shared_task(queue="default", soft_time_limit=50, time_limit=60)
def webhook_delivery_sweep() -> int:
    """Beat: send the deliveries whose task was lost (worker or broker
    restart) or whose retry is overdue. Returns how many were handed out."""
    from apps.core.webhooks import delivery

    return len(delivery.webhook_delivery_sweep())
