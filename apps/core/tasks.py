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
