"""The bake after a completed rollout: the previous deployment stays ready and
is restored on its own when the new version breaks its thresholds, until the
bake ends. The clock is passed in (``now=``), never slept on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import events
from apps.core.models import AuditEvent, WebhookDelivery, WebhookSubscription
from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.models import Deployment, PredictionLog
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


def _log(deployment, n: int, *, status: int = 200, at=None) -> None:
    at = at or timezone.now()
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint_id=deployment.endpoint_id, deployment=deployment,
                      model_version_id=deployment.model_version_id, request_id=f"b{deployment.pk}-{i}-{status}",
                      latency_ms=5.0, status_code=status, created_at=at) for i in range(n)])


@pytest.fixture
def replaced(engineer, settings):
    """v1 served a staging endpoint; an immediate deployment of v2 just replaced it."""
    settings.DEPLOYMENT_BAKE_MINUTES = 15
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    first = deploy(endpoint=endpoint, version=v1, actor=engineer)
    second = deploy(endpoint=endpoint, version=v2, actor=engineer)
    first.refresh_from_db()
    return first, second


def test_an_immediate_deployment_bakes_with_the_previous_one_ready(replaced):
    first, second = replaced
    assert (second.status, second.rollout_state, second.traffic_weight) == ("healthy", "completed", 100)
    assert second.previous_deployment == first and second.config["bake_minutes"] == 15
    assert second.bake_until - second.finished_at == timedelta(minutes=15) and second.baked_at is None
    assert (first.status, first.traffic_weight) == ("superseded", 0)


def test_breaking_the_error_rate_during_the_bake_restores_the_previous_deployment(engineer, replaced,
                                                                                  django_capture_on_commit_callbacks):
    first, second = replaced
    WebhookSubscription.objects.create(name="ops", url="https://hooks.example.org/x", events=[],
                                       created_by=engineer, secret="s" * 32)
    seen = []

    def listener(event, payload):
        seen.append(payload)

    _log(second, 30, status=500)
    now = timezone.now() + timedelta(minutes=1)
    events.subscribe("serving.deployment.rolled_back", listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = services.deployments_check_bake(now=now)
    finally:
        events.unsubscribe("serving.deployment.rolled_back", listener)
    assert result == {"rolled_back": 1, "baked": 0}
    assert [(p["deployment_id"], p["automatic"], p["bake"]) for p in seen] == [(second.pk, True, True)]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.status, second.rollout_state, second.traffic_weight) == ("rolled_back", "rolled_back", 0)
    assert (first.status, first.traffic_weight) == ("healthy", 100)
    assert "error rate" in second.status_reason
    audit = AuditEvent.objects.get(action="deployment.rolled_back", object_id=str(second.pk))
    assert audit.actor is None and "during its bake" in audit.message
    assert WebhookDelivery.objects.filter(event="deployment.rolled_back").exists()
    assert [e.kind for e in first.events.all()][-1] == "restored"
    assert services.deployments_check_bake(now=now) == {"rolled_back": 0, "baked": 0}


def test_after_the_bake_a_breach_only_marks_it_degraded(replaced):
    first, second = replaced
    after = second.bake_until + timedelta(seconds=1)
    assert services.deployments_check_bake(now=after) == {"rolled_back": 0, "baked": 1}
    second.refresh_from_db()
    assert second.baked_at is not None and second.events.last().kind == "baked"
    _log(second, 30, status=500)
    assert services.deployments_check_bake(now=timezone.now() + timedelta(seconds=1)) == {"rolled_back": 0,
                                                                                           "baked": 0}
    assert services.deployments_check_health() == {"degraded": 1, "recovered": 0}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.status, second.traffic_weight) == ("degraded", 100)
    assert (first.status, first.traffic_weight) == ("superseded", 0)


def test_the_bake_never_restores_a_version_the_registry_rolled_back_from(replaced):
    first, second = replaced
    type(first.model_version).objects.filter(pk=first.model_version_id).update(rolled_back_at=timezone.now())
    _log(second, 30, status=500)
    assert services.deployments_check_bake(now=timezone.now() + timedelta(seconds=1))["rolled_back"] == 0
    second.refresh_from_db()
    assert second.traffic_weight == 100


def test_a_zero_bake_scales_the_previous_deployment_down_at_once(engineer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    endpoint = make_endpoint(owner=engineer, slug="qc-nobake", environment="staging")
    endpoint = services.endpoint_update(endpoint=endpoint, actor=engineer, bake_minutes=0)
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    second = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert second.bake_until is None and second.previous_deployment is None
    assert Deployment.objects.filter(endpoint=endpoint, status="superseded").count() == 1
