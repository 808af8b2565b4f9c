"""Training jobs without a worker: request validation through the API, the
task function called directly, cancelling, the reaper and search
finishing. The end-to-end runs through a real worker are in
test_training_worker.py."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.modelio import loads
from apps.core.storage import open_artifact
from apps.experiments import tasks
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.models import Artifact, LatestMetric, Metric, Param, Run, RunTag, TrainingJob
from apps.experiments.services import (
    hyperparameter_search_finish,
    hyperparameter_search_start,
    training_job_cancel,
    training_job_create,
    training_jobs_reap,
)

pytestmark = pytest.mark.django_db

CLASSIFICATION_KEYS = {f"{split}_{m}" for split in ("test", "val")
                       for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")}


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)


def _submit(api, experiment, version, **extra):
    body = {"experiment_id": experiment.pk, "dataset_version_id": version.pk, "target_column": "qc_pass",
            "task": "classification", "estimator": "random_forest", "hyperparameters": {"n_estimators": 20},
            **extra}
    return api.post("/api/v1/training-jobs/", body, format="json")


def test_submit_returns_a_queued_job_with_its_run(api, experiment, lab_version):
    response = _submit(api, experiment, lab_version, split={"test_size": 0.25, "seed": 3})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["progress"] == 0 and body["run_id"]
    assert body["split"] == {"test_size": 0.25, "validation_size": 0.1, "seed": 3, "stratify": True}
    run = Run.objects.get(pk=body["run_id"])
    assert run.status == RunStatus.QUEUED and run.dataset_version_id == lab_version.pk
    assert api.get(f"/api/v1/training-jobs/{body['id']}/").json()["run_status"] == "queued"


@pytest.mark.parametrize("extra, field", [
    ({"estimator": "xgboost"}, "estimator"),
    ({"hyperparameters": {"n_trees": 5}}, "hyperparameters.n_trees"),
    ({"hyperparameters": {"n_estimators": "many"}}, "hyperparameters.n_estimators"),
    ({"estimator": "logistic_regression", "task": "regression"}, "estimator"),
    ({"target_column": "no_such_column"}, "target_column"),
    ({"split": {"test_size": 0.9}}, "split.test_size"),
    ({"split": {"holdout": 0.2}}, "split.holdout"),
    ({"cv_folds": 1}, "cv_folds"),
    ({"search": {"kind": "grid", "space": {"max_depth": [2, "deep"]}}}, "search.space.max_depth[1]"),
    ({"search": {"kind": "grid", "space": {"n_estimators": [5, 10]}}}, "search.space.n_estimators"),
    ({"search": {"kind": "grid", "space": {"max_depth": [2, 3]}, "metric": "val_rmse"}}, "search.metric"),
    ({"search": {"kind": "grid", "space": {"max_depth": [2, 3]}}, "split": {"validation_size": 0}}, "search.metric"),
])
def test_bad_requests_are_400_naming_the_field_and_queue_nothing(api, experiment, lab_version, extra, field):
    response = _submit(api, experiment, lab_version, **extra)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["field"] == field
    assert not TrainingJob.objects.exists()


def test_only_valid_dataset_versions_are_trained_on(api, experiment, lab_version):
    lab_version.status = "invalid"
    lab_version.status_reason = "qc_pass has values outside 0/1"
    lab_version.save()
    response = _submit(api, experiment, lab_version)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "dataset_version_not_valid"
    assert "qc_pass has values outside 0/1" in error["message"]


def test_viewer_cannot_submit(client_for, make_user, experiment, lab_version):
    response = _submit(client_for(make_user("Viewer")), experiment, lab_version)
    assert response.status_code == 403


def test_task_function_trains_evaluates_and_stores_everything(scientist, experiment, lab_version):
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="gradient_boosting", hyperparameters={"n_estimators": 15},
                              cv_folds=3)
    assert tasks.training_job_run.run(job.pk) == "finished"
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED and job.progress == 1.0 and job.finished_at
    run = job.run
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.end_time
    latest = dict(LatestMetric.objects.filter(run=run).values_list("key", "value"))
    assert set(latest) >= CLASSIFICATION_KEYS
    assert 0.5 < latest["test_roc_auc"] <= 1.0 and latest["training_duration_s"] > 0
    assert {"cv_roc_auc_mean", "cv_roc_auc_std"} <= set(latest)
    assert Metric.objects.filter(run=run, key="cv_accuracy").count() == 3
    assert Metric.objects.filter(run=run, key="iteration_val_log_loss").count() == 15
    assert Metric.objects.filter(run=run, key="iteration_train_loss").count() == 15
    params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    assert params["estimator"] == "gradient_boosting" and params["n_estimators"] == "15"
    assert params["split.seed"] == "42" and params["cv_folds"] == "3" and params["rows.test"] == "60"
    paths = set(Artifact.objects.filter(run=run).values_list("path", flat=True))
    assert {"model/model.skops", "model/signature.json", "model/input_example.json", "evaluation/test_indices.json",
            "plots/confusion_matrix.json", "plots/roc_curve.json", "plots/feature_importance.json"} <= paths

    def read(path):
        with open_artifact(Artifact.objects.get(run=run, path=path).file) as handle:
            return handle.read()

    model = loads(read("model/model.skops"))
    example = json.loads(read("model/input_example.json"))
    import pandas as pd

    predictions = model.predict(pd.DataFrame(example))
    assert len(example) == 5 and set(predictions) <= {0, 1}
    signature = json.loads(read("model/signature.json"))
    assert signature["classes"] == [0, 1] and signature["target"] == "qc_pass"
    assert "turnaround_hours" not in {i["name"] for i in signature["inputs"]}
    test_indices = json.loads(read("evaluation/test_indices.json"))
    assert len(test_indices) == 60 and len(set(test_indices)) == 60
    assert json.loads(read("plots/roc_curve.json"))["data"][0]["type"] == "scatter"
    # Running the task again does nothing: the job is no longer queued.
    assert tasks.training_job_run.run(job.pk) == "skipped"


def test_regression_job(scientist, experiment, lab_version):
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="ridge", target_column="turnaround_hours", task="regression")
    tasks.training_job_run.run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED, job.error
    latest = set(LatestMetric.objects.filter(run=job.run).values_list("key", flat=True))
    assert {"test_rmse", "test_mae", "test_r2", "val_rmse", "val_mae", "val_r2", "training_duration_s"} <= latest
    paths = set(Artifact.objects.filter(run=job.run).values_list("path", flat=True))
    assert "plots/residuals.json" in paths and "plots/confusion_matrix.json" not in paths
    # SVG, not WebGL: plotly's WebGL layer needs eval, which the pages' CSP refuses.
    with open_artifact(Artifact.objects.get(run=job.run, path="plots/residuals.json").file) as handle:
        residuals = json.loads(handle.read())
    assert {trace["type"] for trace in residuals["data"]} == {"scatter"}


def test_training_failure_fails_job_and_run_with_the_reason(scientist, experiment, lab_version):
    # sample_id is unique per row: 300 "classes" are refused as a label.
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="logistic_regression", target_column="sample_id", task="classification")
    assert tasks.training_job_run.run(job.pk) == "failed"
    job.refresh_from_db()
    run = Run.objects.get(pk=job.run_id)
    assert job.status == JobStatus.FAILED and "300 classes" in job.error
    assert run.status == RunStatus.FAILED and run.status_reason == job.error
    assert not Artifact.objects.filter(run=run).exists()


def test_cancelling_a_queued_job_kills_its_run_and_the_task_skips_it(scientist, experiment, lab_version):
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest")
    training_job_cancel(actor=scientist, job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    run = Run.objects.get(pk=job.run_id)
    assert run.status == RunStatus.KILLED and "Cancelled by sci" in run.status_reason
    assert tasks.training_job_run.run(job.pk) == "skipped"
    assert training_job_cancel(actor=scientist, job=job).status == JobStatus.CANCELLED


def test_cancel_through_the_api(api, experiment, lab_version):
    job = _submit(api, experiment, lab_version).json()
    response = api.post(f"/api/v1/training-jobs/{job['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["run_status"] == "killed"


def test_a_cancel_observed_at_a_checkpoint_stops_training(scientist, experiment, lab_version, monkeypatch):
    from apps.experiments.services import training_execution

    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest", hyperparameters={"n_estimators": 10})
    real_progress = training_execution._progress

    def progress_then_cancel(job_id, fraction, message):
        if fraction >= 0.5:
            training_job_cancel(actor=scientist, job=TrainingJob.objects.get(pk=job_id))
        real_progress(job_id, fraction, message)

    monkeypatch.setattr(training_execution, "_progress", progress_then_cancel)
    tasks.training_job_run.run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert Run.objects.get(pk=job.run_id).status == RunStatus.KILLED
    assert not Artifact.objects.filter(run_id=job.run_id, path="model/model.skops").exists()


def test_reaper_fails_jobs_whose_worker_went_silent(scientist, experiment, lab_version):
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest")
    beat = timezone.now() - timedelta(minutes=10)
    TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=beat, heartbeat_at=beat,
                                                 worker="w1@host")
    Run.objects.filter(pk=job.run_id).update(status=RunStatus.RUNNING)
    fresh = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                                estimator="random_forest")
    TrainingJob.objects.filter(pk=fresh.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(),
                                                   heartbeat_at=timezone.now())
    assert training_jobs_reap() == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "w1@host" in job.error and "stopped responding" in job.error
    run = Run.objects.get(pk=job.run_id)
    assert run.status == RunStatus.FAILED and run.status_reason == job.error
    assert TrainingJob.objects.get(pk=fresh.pk).status == JobStatus.RUNNING
    # Past the hard time limit even a beating job is failed.
    later = timezone.now() + timedelta(hours=3)
    TrainingJob.objects.filter(pk=fresh.pk).update(heartbeat_at=later)
    assert training_jobs_reap(now=later) == [fresh.pk]
    assert "time limit" in TrainingJob.objects.get(pk=fresh.pk).error


def test_search_creates_children_and_records_the_best(scientist, experiment, lab_version, monkeypatch):
    from apps.experiments.services import hyperparameter_searches

    launched = []
    monkeypatch.setattr(hyperparameter_searches, "_launch_chord", lambda job_id, children: launched.append(children))
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest", hyperparameters={"n_estimators": 10},
                              search={"kind": "grid", "space": {"max_depth": [1, 3, None]}})
    from django.db import transaction

    with transaction.atomic():
        pass
    children = hyperparameter_search_start(job_id=job.pk, worker="w@h")
    assert len(children) == 3
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    for child_id in children:
        tasks.training_job_run.run(child_id)
    child_runs = Run.objects.filter(parent_id=job.run_id)
    assert child_runs.count() == 3 and set(child_runs.values_list("status", flat=True)) == {"finished"}
    depths = sorted(TrainingJob.objects.filter(parent=job).values_list("hyperparameters__max_depth", flat=True),
                    key=str)
    assert depths == [1, 3, None]
    finished = hyperparameter_search_finish(job_id=job.pk)
    assert finished.status == JobStatus.FINISHED
    scores = dict(LatestMetric.objects.filter(run__parent_id=job.run_id, key="val_roc_auc")
                  .values_list("run_id", "value"))
    best_run = max(scores, key=scores.get)
    tags = dict(RunTag.objects.filter(run_id=job.run_id).values_list("key", "value"))
    assert tags["best_run_id"] == str(best_run)
    parent_metrics = dict(LatestMetric.objects.filter(run_id=job.run_id).values_list("key", "value"))
    assert parent_metrics["best_val_roc_auc"] == scores[best_run]
    assert {"search/summary.json", "plots/search_results.json"} <= set(
        Artifact.objects.filter(run_id=job.run_id).values_list("path", flat=True))
    assert Run.objects.get(pk=job.run_id).status == RunStatus.FINISHED
    detail = hyperparameter_searches.TrainingJob.objects.get(pk=job.pk)
    assert detail.progress == 1.0


def test_job_list_has_a_fixed_query_count(api, experiment, lab_version, django_assert_num_queries):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        _submit(api, experiment, lab_version)
    api.get("/api/v1/training-jobs/")
    # The test client's request_started signal empties the query log, and
    # captured_queries slices the live log: count before the next request.
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        api.get("/api/v1/training-jobs/")
    baseline = len(ctx.captured_queries)
    for _ in range(3):
        _submit(api, experiment, lab_version)
    with django_assert_num_queries(baseline):
        assert api.get("/api/v1/training-jobs/").json()["count"] == 5


def test_job_list_is_scoped_to_visible_experiments(api, client_for, make_user, experiment, lab_version):
    from apps.core.permissions import make_private

    _submit(api, experiment, lab_version)
    make_private(experiment)
    outsider = client_for(make_user("Data Scientist", username="outsider"))
    assert outsider.get("/api/v1/training-jobs/").json()["count"] == 0
    assert api.get("/api/v1/training-jobs/").json()["count"] == 1
