"""Reaping: the periodic ``training_jobs_reap`` fails running jobs whose
worker went silent or overran the time limit, and finishes searches whose
chord callback never came."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.experiments.choices import JobStatus, SearchKind
from apps.experiments.models import TrainingJob
from apps.experiments.services.hyperparameter_searches import hyperparameter_search_finish
from apps.experiments.services.training_jobs import ACTIVE_JOB_STATUSES, time_limits, training_job_fail


def training_jobs_reap(*, now=None) -> list[int]:
    """Fail running jobs whose worker went silent (no heartbeat for
    ``TRAINING_HEARTBEAT_TIMEOUT`` seconds) or that overran the task's hard
    time limit, and finish searches whose children all ended but whose
    chord callback never came. Returns the ids of the jobs it changed."""
    now = now or timezone.now()
    silent_since = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    overdue_since = now - timedelta(seconds=time_limits()[1] + 60)
    changed = []
    stuck = TrainingJob.objects.filter(status=JobStatus.RUNNING, search_kind=SearchKind.NONE).filter(
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
        | Q(started_at__lt=overdue_since))
    for job in stuck:
        last = job.heartbeat_at or job.started_at
        if job.started_at and job.started_at < overdue_since:
            reason = (f"The job overran its time limit ({time_limits()[1]} s) on worker {job.worker or '?'} "
                      "and was stopped.")
        else:
            reason = (f"The worker ({job.worker or 'unknown'}) stopped responding: no heartbeat since "
                      f"{last:%Y-%m-%d %H:%M:%S} UTC. It was probably killed or ran out of memory.")
        if training_job_fail(job_id=job.pk, reason=reason) is not None:
            changed.append(job.pk)
    searches = TrainingJob.objects.filter(status=JobStatus.RUNNING).exclude(search_kind=SearchKind.NONE)
    for job in searches:
        if job.children.filter(status__in=ACTIVE_JOB_STATUSES).exists():
            continue
        last_end = job.children.order_by("-finished_at").values_list("finished_at", flat=True).first()
        if last_end is None and (job.heartbeat_at or job.started_at) < silent_since:
            training_job_fail(job_id=job.pk, reason="The search stopped before it created its candidates.")
            changed.append(job.pk)
        elif last_end is not None and last_end < now - timedelta(seconds=60):
            # The chord callback never ran (a child task was lost): finish here.
            hyperparameter_search_finish(job_id=job.pk)
            changed.append(job.pk)
    return changed


__all__ = [
    "training_jobs_reap",
]
