"""A training job on the worker: start it, train and evaluate the pipeline
(``apps.experiments.fitting``), store the model and plots, finish it.

While it trains, the job's ``heartbeat_at`` is refreshed every few seconds
by a thread in the worker process and its progress at each stage; a cancel
(or the reaper) observed at a checkpoint stops the work quietly.
"""

from __future__ import annotations

import io
import logging
import threading
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import InvalidState, ValidationFailed
from apps.core.services import audit_record, snapshot
from apps.experiments import estimators as est
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.models import Run, RunTag, TrainingJob
from apps.experiments.services.artifacts import artifact_log
from apps.experiments.services.metrics import run_log_batch
from apps.experiments.services.training_jobs import JOB_FIELDS, TrainingCancelled, job_end, training_job_fail

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0
_CONTENT_TYPES = {".json": "application/json", ".skops": "application/octet-stream"}


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


def job_start(job_id: int, worker: str) -> TrainingJob | None:
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


def job_log(job: TrainingJob, *, metrics=(), params=(), tags=()) -> None:
    try:
        run_log_batch(actor=job.created_by, run_id=job.run_id, metrics=list(metrics), params=list(params),
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
    job = job_start(job_id, worker)
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
    from apps.experiments.fitting import TrainingError

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
    from apps.experiments.fitting import Hooks, TrainingSpec, train

    version = job.dataset_version
    job_log(job, params=_param_rows(job))
    _progress(job.pk, 0.02, "Reading the dataset version")
    frame = dataset_version_read_frame(version=version)
    spec = TrainingSpec(
        task=job.task, estimator=job.estimator, hyperparameters=job.hyperparameters, target=job.target_column,
        feature_spec=version.dataset.feature_spec or {}, schema=version.schema, test_size=job.split["test_size"],
        validation_size=job.split["validation_size"], seed=job.split["seed"], stratify=job.split["stratify"],
        cv_folds=job.cv_folds,
    )
    hooks = Hooks(progress=partial(_progress, job.pk), log_metrics=lambda metrics: job_log(job, metrics=metrics))
    # One thread per task: workers scale with processes, and OpenMP/BLAS
    # pools sized to every core thrash when several tasks share a machine.
    with threadpool_limits(limits=int(settings.TRAINING_THREADS)):
        outcome = train(frame, spec, hooks)
    job_log(job, params=[{"key": f"rows.{k}", "value": v} for k, v in outcome.rows.items()])
    return outcome


def _store(job: TrainingJob, outcome) -> None:
    _progress(job.pk, 0.9, "Storing the model and plots")
    run = Run.objects.select_related("experiment").get(pk=job.run_id)
    for path, data in outcome.artifacts.items():
        suffix = path[path.rfind("."):]
        try:
            artifact_log(actor=job.created_by, run=run, fileobj=io.BytesIO(data), path=path,
                         content_type=_CONTENT_TYPES.get(suffix, ""), check_access=False)
        except InvalidState:
            raise TrainingCancelled(job.pk)


def _finish(job_id: int) -> TrainingJob:
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING:
            return job
        job_end(job, status=JobStatus.FINISHED, message="Finished", run_status=RunStatus.FINISHED)
    return job


__all__ = [
    "job_log",
    "job_start",
    "training_job_execute",
]
