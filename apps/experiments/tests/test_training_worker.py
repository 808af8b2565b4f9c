"""Training through real Celery worker processes on the real broker: a job
submitted through the API, a search split across two workers, a cancel
observed by a running worker, and a worker killed mid-job."""

import json
import os
import signal
import uuid
from datetime import timedelta

import pandas as pd
import pytest
from django.test import override_settings
from django.utils import timezone

from apps.core.modelio import loads
from apps.core.storage import open_artifact
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.models import Artifact, LatestMetric, Run, RunTag, TrainingJob
from apps.experiments.services import training_jobs_reap
from apps.experiments.tests.conftest import make_lab_version

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EVALUATION_KEYS = {"test_accuracy", "test_precision", "test_recall", "test_f1", "test_roc_auc", "test_log_loss",
                   "val_accuracy", "val_roc_auc", "training_duration_s"}


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)


@pytest.fixture
def own_queue(worker_factory):
    """A training queue of this test's own, so that the session's worker
    (which serves every standard queue) cannot take these jobs; returns a
    function starting a worker on it."""
    queue = f"training-{uuid.uuid4().hex[:8]}"
    with override_settings(TRAINING_QUEUE=queue):
        yield lambda name: worker_factory(name, queues=queue, concurrency=1, extra_env={"TRAINING_QUEUE": queue})


def _submit(api, experiment, version, **extra):
    body = {"experiment_id": experiment.pk, "dataset_version_id": version.pk, "target_column": "qc_pass",
            "estimator": "random_forest", **extra}
    response = api.post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _artifact(run_id, path) -> bytes:
    with open_artifact(Artifact.objects.get(run_id=run_id, path=path).file) as handle:
        return handle.read()


def test_a_job_submitted_through_the_api_is_trained_by_a_worker(live_worker, api, scientist, experiment):
    version = make_lab_version(scientist, rows=400)
    job = _submit(api, experiment, version, estimator="hist_gradient_boosting",
                  hyperparameters={"max_iter": 40, "learning_rate": 0.1}, cv_folds=3)
    done = live_worker.wait_for(
        lambda: TrainingJob.objects.filter(pk=job["id"], status__in=["finished", "failed"]).first(),
        timeout=180, what="the training job to finish")
    assert done.status == JobStatus.FINISHED, done.error
    assert done.worker.startswith("session@")
    body = api.get(f"/api/v1/training-jobs/{job['id']}/").json()
    assert body["status"] == "finished" and body["progress"] == 1.0 and body["run_status"] == "finished"

    run = api.get(f"/api/v1/runs/{job['run_id']}/").json()
    assert run["status"] == "finished" and run["artifacts_count"] >= 7
    assert set(run["metrics"]) >= EVALUATION_KEYS
    assert run["metrics"]["test_roc_auc"] > 0.6
    assert run["params"]["estimator"] == "hist_gradient_boosting" and run["params"]["max_iter"] == "40"
    assert run["tags"]["worker"] == done.worker
    history = api.get(f"/api/v1/runs/{job['run_id']}/metrics/iteration_val_log_loss/history/").json()
    assert history["total"] == 40 and history["points"][0]["step"] == 1

    model = loads(_artifact(run["id"], "model/model.skops"))
    frame = pd.DataFrame(json.loads(_artifact(run["id"], "model/input_example.json")))
    assert set(model.predict(frame)) <= {0, 1}
    assert model.predict_proba(frame).shape == (5, 2)
    for path in ("plots/confusion_matrix.json", "plots/roc_curve.json"):
        figure = json.loads(_artifact(run["id"], path))
        assert figure["data"] and figure["layout"]["title"]["text"]


def test_two_workers_share_a_search(own_queue, api, scientist, experiment):
    version = make_lab_version(scientist, rows=300)
    first = own_queue("w1")
    own_queue("w2")
    job = _submit(api, experiment, version, hyperparameters={"n_estimators": 150},
                  search={"kind": "grid", "space": {"max_depth": [2, 4, 6, 8, None], "min_samples_leaf": [1, 5]}})
    done = first.wait_for(
        lambda: TrainingJob.objects.filter(pk=job["id"], status__in=["finished", "failed"]).first(),
        timeout=400, what="the search to finish")
    assert done.status == JobStatus.FINISHED, done.error
    children = TrainingJob.objects.filter(parent_id=job["id"])
    assert children.count() == 10
    assert set(children.values_list("status", flat=True)) == {"finished"}
    hosts = set(RunTag.objects.filter(run__parent_id=job["run_id"], key="worker").values_list("value", flat=True))
    prefixes = {host.split("@")[0] for host in hosts}
    assert {"w1", "w2"} <= prefixes, hosts
    best = RunTag.objects.get(run_id=job["run_id"], key="best_run_id").value
    scores = dict(LatestMetric.objects.filter(run__parent_id=job["run_id"], key="val_roc_auc")
                  .values_list("run_id", "value"))
    assert scores[int(best)] == max(scores.values())
    assert Run.objects.get(pk=job["run_id"]).status == RunStatus.FINISHED


def _slow_job(api, experiment, version):
    # Many trees and 5 folds: long enough to act on while it trains.
    return _submit(api, experiment, version, hyperparameters={"n_estimators": 1500}, cv_folds=5)


def test_cancelling_a_running_job_stops_the_worker_at_a_checkpoint(own_queue, api, scientist, experiment):
    version = make_lab_version(scientist, rows=300)
    worker = own_queue("canceller")
    job = _slow_job(api, experiment, version)
    worker.wait_for(lambda: TrainingJob.objects.filter(pk=job["id"], status="running").exists(),
                    timeout=120, what="the job to start")
    response = api.post(f"/api/v1/training-jobs/{job['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Run.objects.get(pk=job["run_id"]).status == RunStatus.KILLED
    worker.wait_for(lambda: f"training job {job['id']} stopped" in worker.log(), timeout=180,
                    what="the worker to stop the cancelled job")
    assert TrainingJob.objects.get(pk=job["id"]).status == JobStatus.CANCELLED
    assert not Artifact.objects.filter(run_id=job["run_id"], path="model/model.skops").exists()


def test_a_worker_killed_mid_job_leaves_the_run_failed_after_the_reaper(own_queue, api, scientist, experiment):
    version = make_lab_version(scientist, rows=300)
    worker = own_queue("doomed")
    job = _slow_job(api, experiment, version)
    started = worker.wait_for(lambda: TrainingJob.objects.filter(pk=job["id"], status="running").first(),
                              timeout=120, what="the job to start")
    # The heartbeat thread keeps the job alive while it trains.
    worker.wait_for(lambda: TrainingJob.objects.get(pk=job["id"]).heartbeat_at
                    > started.started_at + timedelta(seconds=4), timeout=60, what="a heartbeat")
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=30)
    # Nothing beats any more: within the timeout the job is still running...
    assert training_jobs_reap() == []
    assert TrainingJob.objects.get(pk=job["id"]).status == JobStatus.RUNNING
    # ...and once the timeout has passed the reaper fails it.
    from django.conf import settings

    later = timezone.now() + timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT + 1)
    assert training_jobs_reap(now=later) == [job["id"]]
    failed = TrainingJob.objects.get(pk=job["id"])
    assert failed.status == JobStatus.FAILED and "stopped responding" in failed.error
    run = Run.objects.get(pk=job["run_id"])
    assert run.status == RunStatus.FAILED and "doomed@" in run.status_reason
