"""Reads of training jobs, scoped through their run's experiment."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm
from apps.experiments.models import TrainingJob


def training_job_list(*, user) -> QuerySet:
    qs = TrainingJob.objects.select_related("run", "created_by").order_by("-created_at", "-id")
    return filter_visible(user, qs, via="run__experiment")


def training_job_get(*, user, pk) -> TrainingJob:
    """One job (with ``child_list`` for a search), or 404 when the user may
    not see its experiment."""
    try:
        job = TrainingJob.objects.select_related("run", "run__experiment", "created_by",
                                                 "dataset_version__dataset").get(pk=pk)
    except (TrainingJob.DoesNotExist, ValueError, TypeError):
        raise NotFound("Training job not found.")
    if not has_perm(user, "experiments.view_experiment", job.run.experiment):
        raise NotFound("Training job not found.")
    job.child_list = list(job.children.order_by("id"))
    return job


__all__ = ["training_job_get", "training_job_list"]
