"""Validation through a real Celery worker process on the real broker."""

import os
import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets import services
from apps.datasets.generator import generate_submissions
from apps.datasets.models import DatasetVersion
from apps.datasets.tasks import dataset_version_validate


def _status(pk):
    return DatasetVersion.objects.filter(pk=pk).values_list("status", flat=True).first()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_through_the_api_is_validated_by_a_worker(live_worker, make_user, client_for):
    user = make_user("Data Scientist", username="worker-sci")
    api = client_for(user)
    dataset = api.post("/api/v1/datasets/", {"name": "worker-submissions", "target_column": "qc_pass",
                                             "task_hint": "classification"}).json()
    api.post(f"/api/v1/datasets/{dataset['id']}/expectations/",
             {"kind": "allowed_categories", "column": "qc_pass", "params": {"values": ["0", "1"]}}, format="json")
    content = generate_submissions(rows=800, seed=21).to_csv(index=False).encode()
    response = api.post(f"/api/v1/datasets/{dataset['id']}/versions/",
                        {"file": SimpleUploadedFile("worker.csv", content)}, format="multipart")
    assert response.status_code == 201, response.json()
    version_id = response.json()["id"]

    live_worker.wait_for(lambda: _status(version_id) in ("valid", "invalid"), timeout=120,
                         what="the worker to validate the upload")
    detail = api.get(f"/api/v1/dataset-versions/{version_id}/").json()
    assert detail["status"] == "valid", detail["status_reason"]
    assert detail["row_count"] == 800 and detail["progress"] == 1.0
    assert {c["name"] for c in detail["schema"]["columns"]} >= {"sample_id", "qc_pass", "rin"}
    assert detail["quality_report"]["class_balance"]["target"] == "qc_pass"
    assert detail["quality_report"]["score"] == detail["quality_score"]
    assert detail["expectation_results"][0]["passed"] is True


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_validation_leaves_the_version_revalidatable(live_worker, worker_factory,
                                                                           make_user, client_for, monkeypatch):
    user = make_user("Data Scientist", username="kill-sci")
    dataset = services.dataset_create(actor=user, name="killed-validation", target_column="qc_pass")
    # Large enough that validation takes a second or more even on a quiet machine.
    content = generate_submissions(rows=250_000, seed=8).to_csv(index=False).encode()
    # Enqueue by hand, on a queue only the doomed worker reads.
    monkeypatch.setattr("apps.datasets.services.versions._enqueue_validation", lambda version_id: None)
    version = services.dataset_version_upload(dataset=dataset, actor=user, file=SimpleUploadedFile("big.csv", content),
                                              filename="big.csv").version
    monkeypatch.undo()
    doomed = worker_factory("doomed", queues="doomed", concurrency=1)
    dataset_version_validate.apply_async((version.pk,), queue="doomed")
    doomed.wait_for(lambda: DatasetVersion.objects.filter(pk=version.pk, status="validating",
                                                          progress__gt=0.03).exists(),
                    timeout=120, interval=0.01, what="the validation to be under way")
    os.killpg(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(timeout=20)
    assert _status(version.pk) == "validating", "the killed worker left the version mid-way"

    response = client_for(user).post(f"/api/v1/dataset-versions/{version.pk}/revalidate/")
    assert response.status_code == 202
    live_worker.wait_for(lambda: _status(version.pk) in ("valid", "invalid"), timeout=240,
                         what="the re-validation to finish")
    version.refresh_from_db()
    assert version.status == "valid", version.status_reason
    assert version.row_count == 250_000
