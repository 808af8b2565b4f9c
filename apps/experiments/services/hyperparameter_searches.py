"""Hyperparameter searches: a search job fans out as one child run and job
per candidate of its search space (a Celery chord on the ``training``
queue), and its callback records the best child on the parent run."""

from __future__ import annotations

import io
import json
import uuid
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.experiments import estimators as est
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.models import LatestMetric, Run, RunTag, TrainingJob
from apps.experiments.services.artifacts import artifact_log
from apps.experiments.services.runs import run_create
from apps.experiments.services.training_execution import job_log, job_start
from apps.experiments.services.training_jobs import ACTIVE_JOB_STATUSES, job_end, training_queue


def hyperparameter_search_start(*, job_id: int, worker: str = "") -> list[int]:
    """Start a queued search: one child run and job per candidate, then one
    task per child on the ``training`` queue with a chord callback that
    records the best child. Returns the child job ids ([] when the job was
    not queued)."""
    job = job_start(job_id, worker)
    if job is None:
        return []
    candidates = est.expand_space(job.search_kind, job.search_space, n_iter=job.search_iterations or 10,
                                  seed=job.split.get("seed", 42))
    with transaction.atomic():
        parent_run = Run.objects.select_related("experiment").get(pk=job.run_id)
        children = []
        for index, candidate in enumerate(candidates, start=1):
            run = run_create(actor=job.created_by, experiment=parent_run.experiment, parent=parent_run,
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
        job_log(job, params=[
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
    header = [tasks.training_job_run.si(child_id).set(task_id=task_id, queue=queue) for child_id, task_id in children]
    chord(header)(tasks.hyperparameter_search_finish.si(job_id).set(queue=queue))


def _metric_key(metric: str) -> str:
    return f"{metric}_mean" if metric.startswith("cv_") else metric


def hyperparameter_search_finish(*, job_id: int) -> TrainingJob:
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
            job_end(job, status=JobStatus.FAILED, message="Failed", run_status=RunStatus.FAILED,
                     error=f"No candidate of the search finished with {key}. {reasons}".strip())
            return job
        better = max if est.higher_is_better(job.search_metric) else min
        best = better(scored, key=lambda c: values[c.run_id])
        best_metrics = dict(LatestMetric.objects.filter(run_id=best.run_id)
                            .filter(Q(key__startswith="test_") | Q(key__startswith="val_") | Q(key__startswith="cv_"))
                            .values_list("key", "value"))
        job_log(job, metrics=[{"key": f"best_{k}", "value": v} for k, v in best_metrics.items()] + [
                 {"key": "candidates_finished", "value": len(scored)},
                 {"key": "candidates_failed", "value": len(children) - len(scored)}],
             tags=[{"key": "best_run_id", "value": str(best.run_id)},
                   {"key": "best_hyperparameters", "value": json.dumps(best.hyperparameters, sort_keys=True)}])
        for path, data in _search_artifacts(summary, key=key, best_run_id=best.run_id).items():
            artifact_log(actor=job.created_by, run=job.run, fileobj=io.BytesIO(data), path=path,
                         content_type="application/json", check_access=False)
        job_end(job, status=JobStatus.FINISHED, message=f"Best: run {best.run_id} ({key} {values[best.run_id]:.4g})",
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


__all__ = [
    "hyperparameter_search_finish",
    "hyperparameter_search_start",
]
