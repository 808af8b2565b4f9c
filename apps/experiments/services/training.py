"""Training jobs: create (validated before anything is queued), execute on
a worker, cancel, fan a hyperparameter search out as child jobs, pick the
best child, and reap jobs whose worker died.

A job owns one run. The worker moves the job queued → running → finished or
failed; a user moves it to cancelled (the run becomes ``killed``). While it
trains, the job's ``heartbeat_at`` is refreshed every few seconds by a
thread in the worker process and its progress at each stage; the
``reap_training_jobs`` periodic task fails jobs whose heartbeat stopped (the
worker was killed) or that overran the time limit, so a run is never left
``running`` forever.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import events
from apps.core.errors import InvalidState, NotFound, ValidationFailed
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, snapshot
from apps.experiments import estimators as est
from apps.experiments.choices import TERMINAL_RUN_STATUSES, JobStatus, RunStatus, SearchKind, TaskType
from apps.experiments.models import LatestMetric, Run, RunTag, TrainingJob
from apps.experiments.services.tracking import artifact_log, run_create, run_end, run_log_batch

logger = logging.getLogger(__name__)

TERMINAL_JOB_STATUSES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
HEARTBEAT_INTERVAL_S = 5.0
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


# --- Creating -----------------------------------------------------------------------

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


def training_job_create(*, user, experiment, dataset_version, estimator: str, target_column: str = "",
                        task: str | None = None, hyperparameters: dict | None = None, split: dict | None = None,
                        cv_folds: int = 0, search: dict | None = None, run_name: str = "") -> TrainingJob:
    """Validate a training request and queue it; returns the job with its
    (queued) run. Everything that can be checked without training is checked
    here, so a bad request is a 400 now, not a failed job later."""
    from apps.datasets.features import FeatureSpecError, feature_columns

    require_perm(user, "experiments.add_trainingjob")
    require_perm(user, "experiments.change_experiment", experiment)
    if not has_perm(user, "datasets.view_dataset", dataset_version.dataset):
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
        run = run_create(user=user, experiment=experiment, name=name[:250], dataset_version=dataset_version,
                         status=RunStatus.QUEUED, tags={"estimator": estimator, "task": task})
        job = TrainingJob.objects.create(
            run=run, dataset_version=dataset_version, target_column=target, task=task, estimator=estimator,
            hyperparameters=hyperparameters, search_kind=search_kind, search_space=space,
            search_iterations=n_iter, search_metric=metric, split=split, cv_folds=cv_folds,
            created_by=user, progress_message="Queued", celery_task_id=uuid.uuid4().hex,
        )
        RunTag.objects.create(run=run, key="training_job", value=str(job.pk))
        audit_record(actor=user, action="training_job.created", target=job, after={
            "run": run.pk, "dataset_version": dataset_version.pk, "target_column": target, "task": task,
            "estimator": estimator, "hyperparameters": hyperparameters, "split": split, "cv_folds": cv_folds,
            "search": {"kind": search_kind, "space": space, "n_iter": n_iter, "metric": metric} if search else None,
        })
        transaction.on_commit(partial(_enqueue, job.pk, job.celery_task_id, search_kind != SearchKind.NONE))
    return job


def _enqueue(job_id: int, task_id: str, is_search: bool) -> None:
    from apps.experiments import tasks

    task = tasks.run_training_search if is_search else tasks.run_training_job
    task.apply_async(args=[job_id], task_id=task_id, queue=training_queue())


def training_queue() -> str:
    """The queue training tasks go to (``TRAINING_QUEUE``, ``training`` by default)."""
    return getattr(settings, "TRAINING_QUEUE", "training") or "training"


# --- Cancelling -----------------------------------------------------------------------

def training_job_cancel(*, user, job: TrainingJob) -> TrainingJob:
    """Cancel a queued or running job (and a search's unfinished children).
    Its run becomes ``killed``; a running worker stops at its next
    checkpoint, a queued task is revoked. Cancelling twice is harmless."""
    require_perm(user, "experiments.change_experiment", job.run.experiment)
    revoked: list[str] = []
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.CANCELLED:
            return job
        if job.status in TERMINAL_JOB_STATUSES:
            raise InvalidState(f"Training job {job.pk} already {job.status}.", details={"status": job.status})
        reason = f"Cancelled by {user.get_username()}"
        for child in TrainingJob.objects.select_for_update().filter(parent=job, status__in=ACTIVE_JOB_STATUSES):
            if child.status == JobStatus.QUEUED:
                revoked.append(child.celery_task_id)
            _end_job(child, status=JobStatus.CANCELLED, message=reason, run_status=RunStatus.KILLED, actor=user)
        if job.status == JobStatus.QUEUED:
            revoked.append(job.celery_task_id)
        _end_job(job, status=JobStatus.CANCELLED, message=reason, run_status=RunStatus.KILLED, actor=user)
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


def _end_job(job: TrainingJob, *, status: str, message: str, run_status: str, actor=None, error: str = "") -> None:
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
    run = Run.objects.select_for_update().get(pk=job.run_id)
    if run.status not in TERMINAL_RUN_STATUSES:
        run_end(run=run, status=run_status, reason=error or message, actor=actor)
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
            _end_job(child, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED,
                     error=f"The search failed: {reason}")
        _end_job(job, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED, error=reason)
    return job


# --- Executing (in the worker) ----------------------------------------------------------

class _Heartbeat:
    """Refreshes the job's heartbeat from a thread (with its own database
    connection) while the main thread trains."""

    def __init__(self, job_id: int, interval: float = HEARTBEAT_INTERVAL_S):
        self.job_id = job_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self):
        try:
            while not self._stop.wait(self.interval):
                try:
                    TrainingJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                        heartbeat_at=timezone.now())
                except Exception:  # a missed beat is harmless; the next one retries
                    logger.warning("heartbeat of training job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def _start(job_id: int, worker: str) -> TrainingJob | None:
    """queued → running; None when the job is not queued (cancelled before a
    worker took it, or a duplicate delivery)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().select_related("run").filter(pk=job_id).first()
        if job is None or job.status != JobStatus.QUEUED:
            return None
        run = Run.objects.select_for_update().get(pk=job.run_id)
        if run.status != RunStatus.QUEUED:
            return None
        now = timezone.now()
        before = snapshot(job, JOB_FIELDS)
        job.status = JobStatus.RUNNING
        job.started_at = now
        job.heartbeat_at = now
        job.worker = worker[:200]
        job.progress = 0.01
        job.progress_message = f"Started on {worker}" if worker else "Started"
        job.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "progress", "progress_message"])
        run.status = RunStatus.RUNNING
        run.start_time = now
        run.save(update_fields=["status", "start_time"])
        if worker:
            RunTag.objects.update_or_create(run=run, key="worker", defaults={"value": worker[:8000]})
        audit_record(actor=None, action="training_job.started", target=job, before=before,
                     after=snapshot(job, JOB_FIELDS))
    return job


def _progress(job_id: int, fraction: float, message: str) -> None:
    updated = TrainingJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        progress=round(min(max(fraction, 0.0), 0.99), 4), progress_message=message[:200],
        heartbeat_at=timezone.now())
    if not updated:
        raise TrainingCancelled(job_id)


def _log(job: TrainingJob, *, metrics=(), params=(), tags=()) -> None:
    try:
        run_log_batch(user=job.created_by, run_id=job.run_id, metrics=list(metrics), params=list(params),
                      tags=list(tags))
    except InvalidState:
        raise TrainingCancelled(job.pk)


def _param_rows(job: TrainingJob) -> list[dict]:
    values = {
        "estimator": job.estimator,
        "task": job.task,
        "target_column": job.target_column,
        "dataset_version_id": job.dataset_version_id,
        "cv_folds": job.cv_folds,
        **{f"split.{k}": v for k, v in job.split.items()},
        **est.effective_hyperparameters(job.estimator, job.task, job.hyperparameters),
    }
    return [{"key": k, "value": v} for k, v in values.items()]


def training_job_execute(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """Train, evaluate and store the model of one queued job. Returns early
    (None) when the job is not queued. Failures end the job as failed with
    the reason; a cancel observed at a checkpoint ends the work quietly."""
    job = _start(job_id, worker)
    if job is None:
        return None
    try:
        with _Heartbeat(job.pk):
            outcome = _train(job)
            _store(job, outcome)
    except TrainingCancelled:
        logger.info("training job %s stopped: no longer running", job_id)
        return TrainingJob.objects.get(pk=job_id)
    except Exception as exc:
        training_job_fail(job_id=job_id, reason=_describe_failure(exc))
        if not _expected(exc):
            logger.exception("training job %s failed", job_id)
        return TrainingJob.objects.get(pk=job_id)
    return _finish(job_id)


def _expected(exc: Exception) -> bool:
    from apps.datasets.features import FeatureSpecError
    from apps.experiments.training import TrainingError

    return isinstance(exc, (TrainingError, FeatureSpecError, ValidationFailed))


def _describe_failure(exc: Exception) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return f"The job ran into its time limit ({settings.TRAINING_TIME_LIMIT} s) and was stopped."
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message if _expected(exc) else f"{type(exc).__name__}: {message}"


def _train(job: TrainingJob):
    from threadpoolctl import threadpool_limits

    from apps.datasets.selectors import dataset_version_read_frame
    from apps.experiments.training import Hooks, TrainingSpec, train

    version = job.dataset_version
    _log(job, params=_param_rows(job))
    _progress(job.pk, 0.02, "Reading the dataset version")
    frame = dataset_version_read_frame(version=version)
    spec = TrainingSpec(
        task=job.task, estimator=job.estimator, hyperparameters=job.hyperparameters, target=job.target_column,
        feature_spec=version.dataset.feature_spec or {}, schema=version.schema, test_size=job.split["test_size"],
        validation_size=job.split["validation_size"], seed=job.split["seed"], stratify=job.split["stratify"],
        cv_folds=job.cv_folds,
    )
    hooks = Hooks(progress=partial(_progress, job.pk), log_metrics=lambda metrics: _log(job, metrics=metrics))
    # One thread per task: workers scale with processes, and OpenMP/BLAS
    # pools sized to every core thrash when several tasks share a machine.
    with threadpool_limits(limits=int(settings.TRAINING_THREADS)):
        outcome = train(frame, spec, hooks)
    _log(job, params=[{"key": f"rows.{k}", "value": v} for k, v in outcome.rows.items()])
    return outcome


_CONTENT_TYPES = {".json": "application/json", ".skops": "application/octet-stream"}


def _store(job: TrainingJob, outcome) -> None:
    _progress(job.pk, 0.9, "Storing the model and plots")
    run = Run.objects.select_related("experiment").get(pk=job.run_id)
    for path, data in outcome.artifacts.items():
        suffix = path[path.rfind("."):]
        try:
            artifact_log(user=job.created_by, run=run, fileobj=io.BytesIO(data), path=path,
                         content_type=_CONTENT_TYPES.get(suffix, ""), check_access=False)
        except InvalidState:
            raise TrainingCancelled(job.pk)


def _finish(job_id: int) -> TrainingJob:
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING:
            return job
        _end_job(job, status=JobStatus.FINISHED, message="Finished", run_status=RunStatus.FINISHED)
    return job


# --- Hyperparameter search -------------------------------------------------------------

def training_search_start(*, job_id: int, worker: str = "") -> list[int]:
    """Start a queued search: one child run and job per candidate, then one
    task per child on the ``training`` queue with a chord callback that
    records the best child. Returns the child job ids ([] when the job was
    not queued)."""
    job = _start(job_id, worker)
    if job is None:
        return []
    candidates = est.expand_space(job.search_kind, job.search_space, n_iter=job.search_iterations or 10,
                                  seed=job.split.get("seed", 42))
    with transaction.atomic():
        parent_run = Run.objects.select_related("experiment").get(pk=job.run_id)
        children = []
        for index, candidate in enumerate(candidates, start=1):
            run = run_create(user=job.created_by, experiment=parent_run.experiment, parent=parent_run,
                             name=f"trial {index} of {len(candidates)}", dataset_version=job.dataset_version,
                             status=RunStatus.QUEUED, tags={"estimator": job.estimator, "task": job.task,
                                                            "search_candidate": str(index)})
            child = TrainingJob.objects.create(
                run=run, parent=job, dataset_version=job.dataset_version, target_column=job.target_column,
                task=job.task, estimator=job.estimator, hyperparameters={**job.hyperparameters, **candidate},
                split=job.split, cv_folds=job.cv_folds, created_by=job.created_by, progress_message="Queued",
                celery_task_id=uuid.uuid4().hex,
            )
            RunTag.objects.create(run=run, key="training_job", value=str(child.pk))
            children.append(child)
        _log(job, params=[
            {"key": "estimator", "value": job.estimator}, {"key": "task", "value": job.task},
            {"key": "target_column", "value": job.target_column},
            {"key": "dataset_version_id", "value": job.dataset_version_id},
            {"key": "search.kind", "value": job.search_kind}, {"key": "search.metric", "value": job.search_metric},
            {"key": "search.space", "value": json.dumps(job.search_space, sort_keys=True)[:6000]},
            {"key": "search.candidates", "value": len(children)},
            *[{"key": k, "value": v} for k, v in job.hyperparameters.items()],
        ])
        TrainingJob.objects.filter(pk=job.pk).update(
            progress=0.05, progress_message=f"0 of {len(children)} candidates done", heartbeat_at=timezone.now())
        transaction.on_commit(partial(_launch_chord, job.pk, [(c.pk, c.celery_task_id) for c in children]))
    return [c.pk for c in children]


def _launch_chord(job_id: int, children: list[tuple[int, str]]) -> None:
    from celery import chord

    from apps.experiments import tasks

    queue = training_queue()
    header = [tasks.run_training_job.si(child_id).set(task_id=task_id, queue=queue) for child_id, task_id in children]
    chord(header)(tasks.finish_training_search.si(job_id).set(queue=queue))


def _metric_key(metric: str) -> str:
    return f"{metric}_mean" if metric.startswith("cv_") else metric


def training_search_finish(*, job_id: int) -> TrainingJob:
    """Record the best child of a search on the parent run (tag
    ``best_run_id``, metrics ``best_<key>`` for the best child's evaluation
    metrics, ``search/summary.json`` and a plot) and end the parent: finished
    when at least one candidate finished, failed otherwise. Waits (returns
    unchanged) while a child is still active."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().select_related("run").get(pk=job_id)
        if job.status != JobStatus.RUNNING:
            return job
        children = list(job.children.select_related("run").order_by("id"))
        if any(child.status in ACTIVE_JOB_STATUSES for child in children):
            return job
        key = _metric_key(job.search_metric)
        values = dict(LatestMetric.objects.filter(run__in=[c.run_id for c in children], key=key)
                      .values_list("run_id", "value"))
        summary = [{"job_id": c.pk, "run_id": c.run_id, "status": c.status, "worker": c.worker,
                    "hyperparameters": c.hyperparameters, key: values.get(c.run_id)} for c in children]
        scored = [c for c in children if c.status == JobStatus.FINISHED and c.run_id in values]
        if not scored:
            reasons = "; ".join(sorted({c.error.splitlines()[0] for c in children if c.error}))[:1000]
            _end_job(job, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED,
                     error=f"No candidate of the search finished with {key}. {reasons}".strip())
            return job
        better = max if est.higher_is_better(job.search_metric) else min
        best = better(scored, key=lambda c: values[c.run_id])
        best_metrics = dict(LatestMetric.objects.filter(run_id=best.run_id)
                            .filter(Q(key__startswith="test_") | Q(key__startswith="val_") | Q(key__startswith="cv_"))
                            .values_list("key", "value"))
        _log(job, metrics=[{"key": f"best_{k}", "value": v} for k, v in best_metrics.items()] + [
                 {"key": "candidates_finished", "value": len(scored)},
                 {"key": "candidates_failed", "value": len(children) - len(scored)}],
             tags=[{"key": "best_run_id", "value": str(best.run_id)},
                   {"key": "best_hyperparameters", "value": json.dumps(best.hyperparameters, sort_keys=True)}])
        for path, data in _search_artifacts(summary, key=key, best_run_id=best.run_id).items():
            artifact_log(user=job.created_by, run=job.run, fileobj=io.BytesIO(data), path=path,
                         content_type="application/json", check_access=False)
        _end_job(job, status=JobStatus.FINISHED, message=f"Best: run {best.run_id} ({key} {values[best.run_id]:.4g})",
                 run_status=RunStatus.FINISHED)
    return job


def _search_artifacts(summary: list[dict], *, key: str, best_run_id: int) -> dict[str, bytes]:
    import plotly.graph_objects as go

    from apps.core.charts import figure_dict

    scored = [row for row in summary if row[key] is not None]
    labels = [f"run {row['run_id']}" for row in scored]
    colours = ["#1d7a46" if row["run_id"] == best_run_id else "#1f4e79" for row in scored]
    hover = [json.dumps(row["hyperparameters"], sort_keys=True) for row in scored]
    fig = go.Figure(go.Bar(x=labels, y=[row[key] for row in scored], marker_color=colours, hovertext=hover))
    fig.update_layout(title=f"Search candidates by {key}", xaxis_title="candidate", yaxis_title=key)
    return {
        "search/summary.json": json.dumps({"metric": key, "best_run_id": best_run_id, "candidates": summary},
                                          default=str).encode(),
        "plots/search_results.json": json.dumps(figure_dict(fig, height=360)).encode(),
    }


# --- Reaping ----------------------------------------------------------------------------

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
            training_search_finish(job_id=job.pk)
            changed.append(job.pk)
    return changed


__all__ = [
    "TrainingCancelled",
    "time_limits",
    "training_job_cancel",
    "training_job_create",
    "training_job_execute",
    "training_job_fail",
    "training_jobs_reap",
    "training_search_finish",
    "training_search_start",
]
