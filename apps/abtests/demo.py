"""Demo A/B test: on the production endpoint ``sample-qc``, the serving
champion v1 against the candidate v2, created by ``engineer``, approved by
``qa`` (four eyes: v2 is not in Production), then fed lab traffic from after
a freezer failure (drifted submissions: RIN and DIN fall, far fewer samples
pass) with ground truth for every answer, so the models really differ and
the test page has a result to show.

``seed`` only enqueues ``demo_seed_abtests``; the task retries until the
serving demo has ``sample-qc`` live and out of its rollout and bake. Seeding
twice changes nothing (the test is recognised by its name).
"""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth import get_user_model

from apps.abtests.choices import TestStatus
from apps.abtests.models import ABTest
from apps.abtests.services import ab_test_approve, ab_test_create, ab_test_start, ab_test_stats_update
from apps.core.errors import Conflict
from apps.registry.models import RegisteredModel
from apps.serving import logbuffer
from apps.serving import services as serving
from apps.serving.choices import DeploymentStatus
from apps.serving.models import Endpoint
from apps.serving.runtime import runtime

logger = logging.getLogger(__name__)

MODEL_NAME = "sample-qc"
ENDPOINT_SLUG = "sample-qc"
TEST_NAME = "v2 against v1 after the freezer failure"
TRAFFIC_ROWS = 800
TRAFFIC_SEED = 4200
WAITING = "waiting"
READY = "ready"


def seed(context: dict, *, password: str, stdout=None) -> None:
    from apps.abtests.tasks import demo_seed_abtests

    demo_seed_abtests.delay()
    if stdout:
        stdout.write(f"  A/B test: {TEST_NAME!r} on {ENDPOINT_SLUG} with drifted lab traffic, once the serving "
                     "demo is live")


def _traffic(endpoint: Endpoint, *, rows: int, seed: int) -> dict:
    """Drifted lab submissions through the prediction service, sticky per
    sample, and the ground truth of every answer."""
    from apps.datasets.generator import generate_submissions
    from apps.serving.services.health import json_value

    frame = generate_submissions(rows=rows, seed=seed, scenario="freezer_failure")
    runtime.refresh(force=True)
    route = runtime.route(endpoint.slug)
    feedback, failed = [], 0
    for record in frame.to_dict("records"):
        instance = {k: json_value(v) for k, v in record.items() if k not in ("qc_pass", "turnaround_hours")}
        request_id = f"demo-ab-{uuid.uuid4().hex[:20]}"
        try:
            serving.predict(route=route, payload={"instances": [instance], "unit_id": instance["sample_id"]},
                            request_id=request_id)
        except serving.PredictionFailed:
            failed += 1
            continue
        feedback.append({"request_id": request_id, "index": 0, "label": int(record["qc_pass"])})
    logbuffer.flush()
    joined = serving.feedback_record(endpoint=endpoint, items=feedback) if feedback else {"joined": 0}
    return {"answered": len(feedback), "failed": failed, "feedback": joined["joined"]}


def seed_abtests() -> str:
    """Bring the demo test to its target state; ``WAITING`` until the
    endpoint can hold a split (served, no rollout or bake running)."""
    if ABTest.objects.filter(name=TEST_NAME).exclude(status=TestStatus.DRAFT).exists():
        return READY
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["engineer", "qa"])}
    model = RegisteredModel.objects.filter(name=MODEL_NAME).first()
    endpoint = Endpoint.objects.filter(slug=ENDPOINT_SLUG).first()
    if len(users) < 2 or model is None or endpoint is None:
        return WAITING
    v1, v2 = model.versions.filter(version=1).first(), model.versions.filter(version=2).first()
    live = endpoint.deployments.filter(status__in=(DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED))
    if v1 is None or v2 is None or not live.filter(model_version=v1).exists() or any(
            d.rollout_active or d.baking for d in live):
        return WAITING
    test = ABTest.objects.filter(name=TEST_NAME).first() or ab_test_create(
        endpoint=endpoint, name=TEST_NAME, actor=users["engineer"], primary_metric="accuracy",
        secondary_metrics=["positive_rate", "latency_ms"], guardrail_metrics=["error_rate"],
        engine="frequentist", minimum_detectable_effect=0.05,
        hypothesis="After the freezer failure fewer samples pass; v2 tells them apart better than v1.",
        arms=[{"model_version": v1, "weight": 50}, {"model_version": v2, "weight": 50}])
    try:
        test = ab_test_start(ab_test=test, actor=users["engineer"])
        if test.status == TestStatus.PENDING_APPROVAL:
            test = ab_test_approve(ab_test=test, actor=users["qa"])
    except Conflict:  # a rollout started meanwhile: try again later
        return WAITING
    outcome = _traffic(endpoint, rows=TRAFFIC_ROWS, seed=TRAFFIC_SEED)
    while ab_test_stats_update(ab_test_id=test.pk).get("more"):
        pass
    logger.info("demo A/B test %s: %s", test.pk, outcome)
    return READY


__all__ = ["READY", "WAITING", "seed", "seed_abtests"]
