"""Lineage across the apps through the API and the lineage registry
(apps/core/lineage.py): each app above datasets registers the links it
knows in its ``AppConfig.ready()``, and a dataset version's lineage lists
what the reader may view and counts the rest."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from apps.core import lineage as lineage_links
from apps.core.permissions import grant_on_create, make_private
from apps.datasets.generator import generate_submissions
from apps.datasets.models import DatasetVersion
from apps.experiments.models import Experiment, Run, TrainingJob
from apps.registry.models import ModelVersion, RegisteredModel
from apps.serving.models import Deployment, Endpoint

pytestmark = pytest.mark.django_db


def test_each_app_above_datasets_registers_the_links_it_knows():
    assert set(lineage_links.links_from(DatasetVersion)) == {"runs", "training_jobs", "model_versions"}
    assert set(lineage_links.links_from(Run)) == {"model_versions"}
    assert set(lineage_links.links_from(ModelVersion)) == {"deployments"}
    assert lineage_links.link(DatasetVersion, "runs").of(DatasetVersion()).model is Run
    assert lineage_links.link(DatasetVersion, "training_jobs").of(DatasetVersion()).model is TrainingJob
    assert lineage_links.link(Run, "model_versions").of(Run()).model is ModelVersion
    assert lineage_links.link(ModelVersion, "deployments").of(ModelVersion()).model is Deployment
    assert lineage_links.link(Deployment, "anything") is None


def test_lineage_lists_runs_model_versions_and_deployments_the_user_may_see(make_user, client_for):
    scientist = make_user("Data Scientist", username="sci")
    api = client_for(scientist)
    dataset = api.post("/api/v1/datasets/", {"name": "submissions", "task_hint": "classification",
                                             "target_column": "qc_pass"}, format="json").json()
    lab_csv = generate_submissions(rows=300, seed=11).to_csv(index=False).encode()

    def upload(name, content, **extra):
        return api.post(f"/api/v1/datasets/{dataset['id']}/versions/",
                        {"file": SimpleUploadedFile(name, content), **extra}, format="multipart")

    parent_id = upload("s.csv", lab_csv).json()["id"]
    version = DatasetVersion.objects.get(pk=parent_id)
    child_id = upload("t.csv", lab_csv.replace(b"\n", b"\r\n"), parent=parent_id).json()["id"]
    empty = api.get(f"/api/v1/dataset-versions/{parent_id}/lineage/").json()
    assert empty["runs"] == [] and empty["model_versions"] == [] and empty["deployments"] == []
    assert [c["id"] for c in empty["children"]] == [child_id]

    with transaction.atomic():
        experiment = Experiment.objects.create(name="qc", owner=scientist)
        grant_on_create(experiment, owner=scientist)
        secret = Experiment.objects.create(name="secret", owner=scientist)
        grant_on_create(secret, owner=scientist)
        make_private(secret)
        run = Run.objects.create(experiment=experiment, user=scientist, dataset_version=version, name="lr",
                                 start_time=timezone.now())
        Run.objects.create(experiment=secret, user=scientist, dataset_version=version, name="hidden",
                           start_time=timezone.now())
        model = RegisteredModel.objects.create(name="sample-qc", owner=scientist, task_type="classification")
        grant_on_create(model, owner=scientist)
        model_version = ModelVersion.objects.create(registered_model=model, version=1, source_run=run,
                                                    artifact="x", sha256="0" * 64, created_by=scientist)
        endpoint = Endpoint.objects.create(slug="qc", name="QC", owner=scientist)
        grant_on_create(endpoint, owner=scientist)
        deployment = Deployment.objects.create(endpoint=endpoint, model_version=model_version,
                                               created_by=scientist)

    lineage = api.get(f"/api/v1/dataset-versions/{parent_id}/lineage/").json()
    assert {r["name"] for r in lineage["runs"]} == {"lr", "hidden"}
    assert lineage["model_versions"] == [{"id": model_version.pk, "model": "sample-qc", "version": 1,
                                          "stage": "none", "stage_label": "No stage", "source_run_id": run.pk}]
    assert lineage["deployments"] == [{"id": deployment.pk, "model_version_id": model_version.pk,
                                       "status": deployment.status, "name": str(deployment), "endpoint": "qc",
                                       "model": "sample-qc", "version": 1, "traffic_weight": 0.0}]

    colleague = client_for(make_user("Data Scientist", username="colleague"))
    seen = colleague.get(f"/api/v1/dataset-versions/{parent_id}/lineage/").json()
    assert [r["name"] for r in seen["runs"]] == ["lr"], "runs of a private experiment stay hidden"
    assert seen["hidden"] == {"runs": 1, "model_versions": 0, "deployments": 0}, "counted, never named"
    assert lineage["hidden"] == {"runs": 0, "model_versions": 0, "deployments": 0}
