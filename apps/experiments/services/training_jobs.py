"""Training jobs: create (validated before anything is queued), cancel, and
end a job with its run.

A job owns one run. The worker (``training_execution``) moves the job
queued → running → finished or failed; a user moves it to cancelled (the run
becomes ``killed``). A hyperparameter search is a job whose children are
jobs too (``hyperparameter_searches``); ``training_reaper`` fails jobs
whose worker died, so a run is never left ``running`` forever.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import InvalidState, NotFound, ValidationFailed
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, snapshot
from apps.experiments import estimators as est
from apps.experiments.choices import JobStatus, RunStatus, SearchKind, TaskType
from apps.experiments.models import RunTag, TrainingJob
from apps.experiments.services.runs import run_create, run_finish

logger = logging.getLogger(__name__)

TERMINAL_JOB_STATUSES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
SPLIT_DEFAULTS = {"test_size": 0.2, "validation_size": 0.1, "seed": 42, "stratify": True}
JOB_FIELDS = ["status", "progress", "error", "worker", "started_at", "finished_at"]


class TrainingCancelled(Exception):
    """The job stopped being ``running`` under the worker (cancelled by a
    user, or failed by the reaper): stop at this checkpoint."""


def _invalid(message: str, field: str, **details) -> ValidationFailed:
    return ValidationFailed(message, details={"field": field, **details})


def time_limits() -> tuple[int, int]:
    """(soft, hard) time limits of one training task, in seconds."""
    hard = int(settings.TRAINING_TIME_LIMIT)
    return max(10, hard - max(30, hard // 10)), hard


def _clean_split(split: dict | None, task: str) -> dict:
    split = dict(split or {})
    unknown = set(split) - set(SPLIT_DEFAULTS)
    if unknown:
        raise _invalid(f"split has no setting {sorted(unknown)[0]!r}; known: {', '.join(SPLIT_DEFAULTS)}",
                       f"split.{sorted(unknown)[0]}")
    clean = {**SPLIT_DEFAULTS, **split}
    for name in ("test_size", "validation_size"):
        value = clean[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(f"split.{name} must be a number", f"split.{name}")
        clean[name] = float(value)
    if not 0.05 <= clean["test_size"] <= 0.5:
        raise _invalid("split.test_size must be between 0.05 and 0.5", "split.test_size")
    if not 0.0 <= clean["validation_size"] <= 0.5:
        raise _invalid("split.validation_size must be between 0 and 0.5", "split.validation_size")
    if clean["test_size"] + clean["validation_size"] > 0.7:
        raise _invalid("test_size + validation_size must leave at least 30 % for training", "split")
    if isinstance(clean["seed"], bool) or not isinstance(clean["seed"], int) or not 0 <= clean["seed"] < 2**32:
        raise _invalid("split.seed must be a whole number between 0 and 2^32-1", "split.seed")
    if not isinstance(clean["stratify"], bool):
        raise _invalid("split.stratify must be true or false", "split.stratify")
    if task == TaskType.REGRESSION:
        clean["stratify"] = False
    return clean


def _infer_task(dataset, schema: dict, target: str) -> str:
    if dataset.task_hint in (TaskType.CLASSIFICATION, TaskType.REGRESSION):
        return dataset.task_hint
    column = next(c for c in schema["columns"] if c["name"] == target)
    return TaskType.REGRESSION if column.get("type") == "float" else TaskType.CLASSIFICATION


def _hyperparameter_error(exc: est.HyperparameterError, prefix: str = "hyperparameters.") -> ValidationFailed:
    field = exc.name if exc.name.startswith(("search", "estimator")) else f"{prefix}{exc.name}"
    return ValidationFailed(f"{field}: {exc.message}", code="invalid_hyperparameter", details={"field": field})


def training_job_create(*, actor, experiment, dataset_version, estimator: str, target_column: str = "",
                        task: str | None = None, hyperparameters: dict | None = None, split: dict | None = None,
                        cv_folds: int = 0, search: dict | None = None, run_name: str = "") -> TrainingJob:
    """Validate a training request and queue it; returns the job with its
    (queued) run. Everything that can be checked without training is checked
    here, so a bad request is a 400 now, not a failed job later."""
    from apps.datasets.features import FeatureSpecError, feature_columns

    require_perm(actor, "experiments.add_trainingjob")
    require_perm(actor, "experiments.change_experiment", experiment)
    if not has_perm(actor, "datasets.view_dataset", dataset_version.dataset):
        raise NotFound("Dataset version not found.")
    if not dataset_version.is_valid:
        reason = f": {dataset_version.status_reason}" if dataset_version.status_reason else ""
        raise ValidationFailed(f"{dataset_version} is {dataset_version.status}, not valid; only valid versions "
                               f"can be trained on{reason}", code="dataset_version_not_valid",
                               details={"field": "dataset_version_id", "status": dataset_version.status})
    dataset = dataset_version.dataset
    schema = dataset_version.schema or {"columns": []}
    names = [c["name"] for c in schema.get("columns", [])]
    target = (target_column or dataset.target_column or "").strip()
    if not target:
        raise _invalid("target_column is required (the dataset has no default target).", "target_column")
    if target not in names:
        raise _invalid(f"{dataset_version} has no column {target!r}.", "target_column", columns=names)
    if task in (None, ""):
        task = _infer_task(dataset, schema, target)
    if task not in TaskType.values:
        raise _invalid("task must be classification or regression.", "task")
    try:
        est.check_estimator(estimator, task)
        hyperparameters = est.validate_hyperparameters(estimator, task, hyperparameters or {})
    except est.HyperparameterError as exc:
        raise _hyperparameter_error(exc)
    split = _clean_split(split, task)
    if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 0 or cv_folds == 1 or cv_folds > 20:
        raise _invalid("cv_folds must be 0 (no cross-validation) or between 2 and 20.", "cv_folds")
    try:
        feature_columns(spec=dataset.feature_spec or {}, schema=schema, target=target)
    except FeatureSpecError as exc:
        raise ValidationFailed(f"The dataset's feature spec does not fit this version: {exc}",
                               code="invalid_feature_spec", details={"field": "feature_spec", "errors": exc.errors})

    search_kind, space, n_iter, metric = SearchKind.NONE, {}, 0, ""
    if search:
        try:
            search_kind = search.get("kind")
            space = est.validate_space(estimator, task, search_kind, search.get("space"))
            n_iter = int(search.get("n_iter") or 10) if search_kind == SearchKind.RANDOM else 0
            metric = est.check_search_metric(task, search.get("metric") or est.default_search_metric(task))
            overlap = set(space) & set(hyperparameters)
            if overlap:
                raise est.HyperparameterError(f"search.space.{sorted(overlap)[0]}",
                                              "is also fixed in hyperparameters; give it in one place")
            candidates = est.expand_space(search_kind, space, n_iter=n_iter or 10, seed=split["seed"])
        except est.HyperparameterError as exc:
            raise _hyperparameter_error(exc)
        if metric.startswith("val_") and split["validation_size"] <= 0:
            raise _invalid(f"search.metric {metric} needs a validation split (split.validation_size > 0).",
                           "search.metric")
        if metric.startswith("cv_") and cv_folds < 2:
            raise _invalid(f"search.metric {metric} needs cross-validation (cv_folds >= 2).", "search.metric")
        if len(candidates) < 2:
            raise _invalid("A search needs at least two candidates.", "search.space")

    name = run_name or (f"{estimator} {search_kind} search" if search_kind != SearchKind.NONE else estimator)
    with transaction.atomic():
        run = run_create(actor=actor, experiment=experiment, name=name[:250], dataset_version=dataset_version,
                         status=RunStatus.QUEUED, tags={"estimator": estimator, "task": task})
        job = TrainingJob.objects.create(
            run=run, dataset_version=dataset_version, target_column=target, task=task, estimator=estimator,
            hyperparameters=hyperparameters, search_kind=search_kind, search_space=space,
            search_iterations=n_iter, search_metric=metric, split=split, cv_folds=cv_folds,
            created_by=actor, progress_message="Queued", celery_task_id=uuid.uuid4().hex,
        )
        RunTag.objects.create(run=run, key="training_job", value=str(job.pk))
        audit_record(actor=actor, action="training_job.created", target=job, after={
            "run": run.pk, "dataset_version": dataset_version.pk, "target_column": target, "task": task,
            "estimator": estimator, "hyperparameters": hyperparameters, "split": split, "cv_folds": cv_folds,
            "search": {"kind": search_kind, "space": space, "n_iter": n_iter, "metric": metric} if search else None,
        })
        transaction.on_commit(partial(_enqueue, job.pk, job.celery_task_id, search_kind != SearchKind.NONE))
    return job


def _enqueue(job_id: int, task_id: str, is_search: bool) -> None:
    from apps.experiments import tasks

    task = tasks.hyperparameter_search_run if is_search else tasks.training_job_run
    task.apply_async(args=[job_id], task_id=task_id, queue=training_queue())


def training_queue() -> str:
    """The queue training tasks go to (``TRAINING_QUEUE``, ``training`` by default)."""
    return getattr(settings, "TRAINING_QUEUE", "training") or "training"


def training_job_cancel(*, actor, job: TrainingJob) -> TrainingJob:
    """Cancel a queued or running job (and a search's unfinished children).
    Its run becomes ``killed``; a running worker stops at its next
    checkpoint, a queued task is revoked. Cancelling twice is harmless."""
    require_perm(actor, "experiments.change_experiment", job.run.experiment)
    revoked: list[str] = []
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.CANCELLED:
            return job
        if job.status in TERMINAL_JOB_STATUSES:
            raise InvalidState(f"Training job {job.pk} already {job.status}.", details={"status": job.status})
        reason = f"Cancelled by {actor.get_username()}"
        for child in TrainingJob.objects.select_for_update().filter(parent=job, status__in=ACTIVE_JOB_STATUSES):
            if child.status == JobStatus.QUEUED:
                revoked.append(child.celery_task_id)
            job_end(child, status=JobStatus.CANCELLED, message=reason, run_status=RunStatus.KILLED, actor=actor)
        if job.status == JobStatus.QUEUED:
            revoked.append(job.celery_task_id)
        job_end(job, status=JobStatus.CANCELLED, message=reason, run_status=RunStatus.KILLED, actor=actor)
        transaction.on_commit(partial(_revoke, [t for t in revoked if t]))
    return job


def _revoke(task_ids: list[str]) -> None:
    """Best effort: the task re-reads its job and returns at once when it is
    cancelled, so a revoke that does not reach the workers changes nothing."""
    if not task_ids:
        return
    try:
        from celery_app import app

        app.control.revoke(task_ids)
    except Exception:  # a broker without broadcast (the filesystem transport) cannot revoke
        logger.info("could not broadcast revoke for %s", task_ids, exc_info=True)


def job_end(job: TrainingJob, *, status: str, message: str, run_status: str, actor=None, error: str = "") -> None:
    """Move a locked, active job to a terminal status and end its run, in the
    caller's transaction."""
    before = snapshot(job, JOB_FIELDS)
    job.status = status
    job.progress_message = message[:200]
    job.error = error or job.error
    job.finished_at = timezone.now()
    if status == JobStatus.FINISHED:
        job.progress = 1.0
    job.save(update_fields=["status", "progress", "progress_message", "error", "finished_at"])
    audit_record(actor=actor, action=f"training_job.{status}", target=job, before=before,
                 after=snapshot(job, JOB_FIELDS), message=(error or message)[:2000])
    run_finish(actor=actor, run=job.run, status=run_status, reason=error or message, training_job=job)
    if job.parent_id:
        _update_search_progress(job.parent_id)
    events.publish(f"experiments.training_job.{status}", {
        "training_job_id": job.pk, "run_id": job.run_id, "parent_id": job.parent_id, "status": status,
        "created_by_id": job.created_by_id, "estimator": job.estimator, "error": (error or "")[:500],
    })


def _update_search_progress(parent_id: int) -> None:
    children = list(TrainingJob.objects.filter(parent_id=parent_id).values_list("status", flat=True))
    done = sum(1 for status in children if status in TERMINAL_JOB_STATUSES)
    if children:
        TrainingJob.objects.filter(pk=parent_id, status=JobStatus.RUNNING).update(
            progress=round(0.05 + 0.9 * done / len(children), 4),
            progress_message=f"{done} of {len(children)} candidates done", heartbeat_at=timezone.now())


def training_job_fail(*, job_id: int, reason: str) -> TrainingJob | None:
    """Fail an active job and its run with ``reason`` (workers, the reaper
    and the task's failure hook call this). A job that already ended is
    left alone."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in ACTIVE_JOB_STATUSES:
            return job
        for child in TrainingJob.objects.select_for_update().filter(parent=job, status__in=ACTIVE_JOB_STATUSES):
            job_end(child, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED,
                     error=f"The search failed: {reason}")
        job_end(job, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED, error=reason)
    return job


__all__ = [
    "ACTIVE_JOB_STATUSES",
    "JOB_FIELDS",
    "TERMINAL_JOB_STATUSES",
    "TrainingCancelled",
    "job_end",
    "time_limits",
    "training_job_cancel",
    "training_job_create",
    "training_job_fail",
    "training_queue",
]
