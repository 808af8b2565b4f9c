"""Demo serving: the production endpoint ``sample-qc`` serving the approved
model, the staging endpoint ``sample-qc-staging`` with a canary of v2 in
progress, and a burst of simulated lab traffic (with ground truth for part
of it) so the endpoint charts have something to show.

The registry's demo models are trained by the worker after ``seed_demo``
returns, so ``seed`` only enqueues ``demo_seed_serving``; that task (also
enqueued when the registry publishes ``registry.demo.ready``) retries until
``sample-qc`` has a Production version and a v2 in Staging, then calls
``seed_serving``. Every step checks what exists first: seeding twice
changes nothing.
"""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth import get_user_model
from django.core.cache import cache

from apps.registry.choices import Stage
from apps.registry.models import RegisteredModel
from apps.registry.stages import stages_servable_in
from apps.serving import logbuffer, services
from apps.serving.choices import DeploymentStatus, Strategy
from apps.serving.models import Deployment, Endpoint, PredictionLog
from apps.serving.runtime import runtime

logger = logging.getLogger(__name__)

MODEL_NAME = "sample-qc"
PRODUCTION_SLUG = "sample-qc"
STAGING_SLUG = "sample-qc-staging"
# Long steps, so the canary is visibly mid-rollout when someone opens the page.
CANARY_CONFIG = {"steps": [10, 25, 50, 100], "step_seconds": 3600, "min_requests": 50, "check_interval_s": 60}
TRAFFIC_ROWS = {PRODUCTION_SLUG: 240, STAGING_SLUG: 360}
FEEDBACK_SHARE = 0.6
DEMO_REQUEST_PREFIX = "demo-"
WAITING = "waiting"
READY = "ready"


def seed(context: dict, *, password: str, stdout=None) -> None:
    from apps.serving.tasks import demo_seed_serving

    demo_seed_serving.delay()
    context["serving"] = {"endpoints": [PRODUCTION_SLUG, STAGING_SLUG]}
    if stdout:
        stdout.write(f"  serving: endpoints {PRODUCTION_SLUG} (Production v1) and {STAGING_SLUG} (canary of v2) "
                     "with simulated lab traffic, once the registry's demo models exist")


def _endpoint(*, slug: str, environment: str, owner, description: str) -> Endpoint:
    endpoint = Endpoint.objects.filter(slug=slug).first()
    if endpoint is None:
        endpoint = services.endpoint_create(actor=owner, slug=slug, name=slug, environment=environment,
                                            description=description)
    return endpoint


def _deploy_now(*, endpoint: Endpoint, version, actor, strategy: str = Strategy.IMMEDIATE,
                config: dict | None = None) -> Deployment:
    """Start a deployment and run its health check here (this runs in the
    worker anyway), so traffic can follow at once."""
    deployment = services.deployment_start(endpoint=endpoint, model_version=version, strategy=strategy,
                                           config=config, actor=actor)
    services.rollout_tick(deployment_id=deployment.pk, seq=deployment.rollout_seq)
    deployment.refresh_from_db()
    return deployment


def _simulate_traffic(*, endpoint: Endpoint, rows: int, seed: int) -> dict:
    """Lab submissions through the same prediction service as the API, then
    ground truth for part of them."""
    from apps.datasets.generator import generate_submissions
    from apps.serving.services.health import json_value

    frame = generate_submissions(rows=rows, seed=seed)
    runtime.refresh(force=True)
    route = runtime.route(endpoint.slug)
    answered, failed, feedback = 0, 0, []
    for position, record in enumerate(frame.to_dict("records")):
        instance = {key: json_value(value) for key, value in record.items() if key not in ("qc_pass",
                                                                                            "turnaround_hours")}
        request_id = f"{DEMO_REQUEST_PREFIX}{uuid.uuid4().hex[:24]}"
        try:
            services.predict(route=route, payload={"instances": [instance], "unit_id": instance["sample_id"]},
                             request_id=request_id)
        except services.PredictionFailed:
            failed += 1
            continue
        answered += 1
        if position % 10 < FEEDBACK_SHARE * 10:
            feedback.append({"request_id": request_id, "index": 0, "label": int(record["qc_pass"])})
    logbuffer.flush()
    joined = services.feedback_record(endpoint=endpoint, items=feedback) if feedback else {"joined": 0}
    return {"answered": answered, "failed": failed, "feedback": joined["joined"]}


def seed_serving() -> str:
    """Bring the serving demo to its target state; ``WAITING`` until the
    registry's demo model has a Production version and a v2 in Staging."""
    engineer = get_user_model().objects.filter(username="engineer").first()
    model = RegisteredModel.objects.filter(name=MODEL_NAME).first()
    if engineer is None or model is None:
        return WAITING
    production = model.versions.filter(stage=Stage.PRODUCTION).first()
    candidate = model.versions.filter(version=2).first()
    if production is None or candidate is None or candidate.stage not in stages_servable_in("staging"):
        return WAITING
    # Two copies of this task (seed_demo's and the registry event's) may run at once.
    if not cache.add("serving:demo-seed-lock", "1", timeout=600):
        return WAITING
    try:
        live = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)
        prod = _endpoint(slug=PRODUCTION_SLUG, environment="production", owner=engineer,
                         description="Library-prep QC prediction for every submitted sample (LIMS calls this).")
        if not prod.deployments.filter(status__in=live).exists():
            _deploy_now(endpoint=prod, version=production, actor=engineer)
        staging = _endpoint(slug=STAGING_SLUG, environment="staging", owner=engineer,
                            description="Staging: new QC models are canaried here before Production.")
        if not staging.deployments.filter(status__in=live).exists():
            _deploy_now(endpoint=staging, version=production, actor=engineer)
        if candidate.pk != production.pk and not staging.deployments.filter(model_version=candidate).exists():
            _deploy_now(endpoint=staging, version=candidate, actor=engineer, strategy=Strategy.CANARY,
                        config=CANARY_CONFIG)
        for offset, endpoint in enumerate((prod, staging)):
            if PredictionLog.objects.filter(endpoint=endpoint, request_id__startswith=DEMO_REQUEST_PREFIX).exists():
                continue
            outcome = _simulate_traffic(endpoint=endpoint, rows=TRAFFIC_ROWS[endpoint.slug], seed=4100 + offset)
            logger.info("demo traffic on %s: %s", endpoint.slug, outcome)
    finally:
        cache.delete("serving:demo-seed-lock")
    return READY


__all__ = ["READY", "WAITING", "seed", "seed_serving"]
