"""Objects in each state the home page and the inbox care about."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.registry import services as registry
from apps.registry.choices import Stage
from apps.serving import services as serving
from apps.serving.models import PredictionLog
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

CANARY = {"steps": [10, 50, 100], "step_seconds": 60, "min_requests": 5, "max_error_rate": 0.1}


def request_promotion(*, people, make_run, registered, stage: str = "staging"):
    version = registry.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    return registry.promotion_request_create(version=version, actor=people.scientist, target_stage=stage,
                                             justification="better on the March data")


def degraded_deployment(*, owner, slug: str = "qc-live"):
    """A production deployment whose live error rate broke its threshold."""
    version = make_model_version(owner=owner, name=f"{slug}-model", stage=Stage.PRODUCTION)
    deployment = deploy(endpoint=make_endpoint(owner=owner, slug=slug), version=version, actor=owner)
    now = timezone.now()
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint_id=deployment.endpoint_id, deployment=deployment,
                      model_version_id=deployment.model_version_id, request_id=f"{slug}-{i}", latency_ms=5.0,
                      status_code=500, created_at=now - timedelta(seconds=1)) for i in range(30)])
    serving.deployments_check_health()
    deployment.refresh_from_db()
    assert deployment.status == "degraded"
    return deployment


def paused_canary(*, owner, slug: str = "qc-canary"):
    name = f"{slug}-model"
    first = make_model_version(owner=owner, name=name, stage=Stage.STAGING)
    candidate = make_model_version(owner=owner, name=name, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=owner, slug=slug, environment="staging")
    deploy(endpoint=endpoint, version=first, actor=owner)
    canary = deploy(endpoint=endpoint, version=candidate, actor=owner, strategy="canary", config=CANARY)
    return serving.deployment_pause(deployment=canary, actor=owner)


def running_job(*, owner, dataset_version, status: str = "running"):
    """A training job as the worker leaves it while it trains."""
    from apps.core.permissions import grant_on_create
    from apps.experiments.models import Experiment, Run, TrainingJob

    with transaction.atomic():
        experiment, created = Experiment.objects.get_or_create(name="home-jobs", defaults={"owner": owner})
        if created:
            grant_on_create(experiment, owner=owner)
        run = Run.objects.create(experiment=experiment, name="rf", status="running", user=owner,
                                 dataset_version=dataset_version, start_time=timezone.now())
        return TrainingJob.objects.create(run=run, dataset_version=dataset_version, target_column="qc_pass",
                                          task="classification", estimator="random_forest", status=status,
                                          created_by=owner, started_at=timezone.now(), progress=0.4)
