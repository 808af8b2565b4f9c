"""Production endpoints follow the registry's Production version: an approval
rolls the new version out, a registry rollback moves the endpoint at once, a
manual endpoint is flagged stale and announced."""

import json

import pytest
from django.db import transaction

from apps.core.models import AuditEvent, WebhookDelivery, WebhookSubscription
from apps.registry.choices import Stage, TransitionKind
from apps.registry.models import StageTransition
from apps.registry.services.stages import lock_model, move_to_stage
from apps.serving import handlers, services
from apps.serving.api.serializers import EndpointSerializer
from apps.serving.models import Deployment
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version, run_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver(make_user):
    return make_user("Approver", username="approver_t")


@pytest.fixture
def serving_v1(engineer):
    """A production endpoint serving v1 (Production) of sample-qc, and v2 in Staging."""
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer)
    first = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert first.traffic_weight == 100
    return endpoint, first, v1, v2


def _enter_production(version, actor, kind=TransitionKind.APPROVAL) -> StageTransition:
    with transaction.atomic():
        model = lock_model(version.registered_model)
        move_to_stage(model=model, version=version, to_stage=Stage.PRODUCTION, kind=kind, actor=actor,
                      reason="reviewed")
    return StageTransition.objects.filter(version=version, to_stage=Stage.PRODUCTION).latest("id")


def _follow(transition):
    return services.endpoints_follow_registry(model_version_id=transition.version_id, transition_id=transition.pk)


def test_approving_a_version_rolls_it_out_as_a_canary_in_the_approvers_name(engineer, approver, serving_v1):
    endpoint, first, _v1, v2 = serving_v1
    transition = _enter_production(v2, approver)
    assert _follow(transition) == {endpoint.slug: "started"}
    follower = Deployment.objects.get(endpoint=endpoint, model_version=v2)
    assert (follower.strategy, follower.created_by, follower.registry_transition) == ("canary", approver, transition)
    created = AuditEvent.objects.get(action="deployment.created", object_id=str(follower.pk))
    assert created.actor == approver and "Follows the registry" in created.message
    assert AuditEvent.objects.get(action="endpoint.followed_registry").actor == approver
    # The old deployment serves on during the canary instead of being flagged degraded.
    services.deployments_note_stage_change(model_version_id=first.model_version_id, from_stage="production",
                                           to_stage="archived")
    first.refresh_from_db()
    assert first.status == "healthy"
    run_rollout(follower)
    follower.refresh_from_db()
    assert follower.rollout_state in ("progressing", "paused", "completed")
    # A redelivered event starts nothing twice.
    assert _follow(transition) == {endpoint.slug: "duplicate"}
    assert Deployment.objects.filter(endpoint=endpoint, model_version=v2).count() == 1


def test_the_stage_change_event_enqueues_the_follow_on_the_rollouts_queue(monkeypatch, approver, serving_v1):
    _endpoint, _first, _v1, v2 = serving_v1
    sent = []
    monkeypatch.setattr("apps.serving.tasks.endpoints_follow_registry.apply_async",
                        lambda args, queue: sent.append((args, queue)))
    monkeypatch.setattr("apps.serving.tasks.deployments_note_stage_change.delay", lambda *a: None)
    transition = _enter_production(v2, approver)
    handlers.on_model_version_stage_changed("registry.model_version.stage_changed", {
        "version_id": v2.pk, "from_stage": "staging", "to_stage": "production", "kind": "approval",
        "transition_id": transition.pk})
    assert sent == [((v2.pk, transition.pk), "rollouts")]


def test_a_manual_endpoint_stays_and_is_flagged_stale_with_an_event(engineer, approver, serving_v1):
    endpoint, first, _v1, v2 = serving_v1
    services.endpoint_update(endpoint=endpoint, actor=engineer, follow_mode="manual")
    WebhookSubscription.objects.create(name="ops", url="https://hooks.example.org/x", events=[],
                                       created_by=engineer, secret="s" * 32)
    transition = _enter_production(v2, approver)
    assert _follow(transition) == {endpoint.slug: "stale"}
    assert not Deployment.objects.filter(model_version=v2).exists()
    first.refresh_from_db()
    assert first.traffic_weight == 100
    data = json.loads(WebhookDelivery.objects.get(event="endpoint.stale_version").body)["data"]
    assert (data["endpoint"], data["serving_versions"], data["production_version"]) == (endpoint.slug, [1], 2)
    assert AuditEvent.objects.filter(action="endpoint.stale_version", object_id=str(endpoint.pk)).count() == 1
    assert EndpointSerializer(endpoint).data["stale_versions"] == [1]
    assert _follow(transition) == {endpoint.slug: "stale"}
    assert WebhookDelivery.objects.filter(event="endpoint.stale_version").count() == 1, "announced once per move"


def test_a_registry_rollback_moves_the_endpoint_at_once(engineer, approver, serving_v1):
    endpoint, _first, v1, v2 = serving_v1
    run_rollout(Deployment.objects.get(pk=_follow_and_get(_enter_production(v2, approver), endpoint).pk))
    services.deployment_promote(deployment=Deployment.objects.get(model_version=v2), actor=engineer)
    from apps.registry.services import registered_model_rollback

    restored = registered_model_rollback(registered_model=v1.registered_model, actor=engineer, reason="v2 is off")
    assert restored == v1
    back = StageTransition.objects.filter(version=v1, to_stage=Stage.PRODUCTION, kind="rollback").get()
    assert _follow(back) == {endpoint.slug: "started"}
    follower = Deployment.objects.filter(endpoint=endpoint, model_version=v1).latest("id")
    assert (follower.strategy, follower.created_by) == ("immediate", engineer)
    run_rollout(follower)
    follower.refresh_from_db()
    assert (follower.rollout_state, follower.traffic_weight) == ("completed", 100)


def _follow_and_get(transition, endpoint):
    _follow(transition)
    return Deployment.objects.get(endpoint=endpoint, registry_transition=transition)


def test_follow_mode_is_validated_and_audited(engineer, serving_v1):
    from apps.core.errors import ValidationFailed

    endpoint, *_ = serving_v1
    with pytest.raises(ValidationFailed):
        services.endpoint_update(endpoint=endpoint, actor=engineer, follow_mode="sometimes")
    with pytest.raises(ValidationFailed):
        services.endpoint_update(endpoint=endpoint, actor=engineer, follow_strategy="yolo")
    services.endpoint_update(endpoint=endpoint, actor=engineer, follow_mode="manual", follow_strategy="rolling",
                             bake_minutes=30)
    endpoint.refresh_from_db()
    assert (endpoint.follow_mode, endpoint.follow_strategy, endpoint.bake_minutes) == ("manual", "rolling", 30)
    event = AuditEvent.objects.filter(action="endpoint.updated").latest("id")
    assert event.after["follow_mode"] == "manual" and event.before["follow_mode"] == "auto"
