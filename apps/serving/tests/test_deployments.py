"""Deployments and the rollout state machine, driven tick by tick as the
rollouts worker would (the worker itself: test_rollout_worker.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import Conflict, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.core.models import AuditEvent, WebhookDelivery, WebhookSubscription
from apps.registry.choices import Stage
from apps.serving import logbuffer, services
from apps.serving.models import Deployment, PredictionLog
from apps.serving.runtime import runtime
from apps.serving.tests.factories import (
    backdate_step,
    deploy,
    fit_nan_intolerant_pipeline,
    json_records,
    lab_frame,
    make_endpoint,
    make_model_version,
    tick_once,
)

pytestmark = pytest.mark.django_db


def _weights(endpoint):
    return {d.model_version.version: d.traffic_weight
            for d in Deployment.objects.filter(endpoint=endpoint, status__in=("deploying", "healthy", "degraded"))
            .select_related("model_version")}


def _log(deployment, n: int, *, status: int = 200, latency: float = 5.0) -> None:
    now = timezone.now()
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint_id=deployment.endpoint_id, deployment=deployment,
                      model_version_id=deployment.model_version_id, request_id=f"r{deployment.pk}-{i}-{status}",
                      latency_ms=latency, status_code=status, created_at=now) for i in range(n)])


@pytest.fixture
def versions(engineer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    return v1, v2


# --- Admission -------------------------------------------------------------------------

def test_production_endpoint_refuses_a_version_not_in_production(engineer, versions):
    _v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, environment="production")
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v2, actor=engineer)
    assert caught.value.code == "version_not_allowed"
    assert "only serves versions in Production" in caught.value.message
    assert not Deployment.objects.exists()


def test_staging_endpoint_takes_staging_or_production_but_not_unapproved(engineer, versions):
    v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    v3 = make_model_version(owner=engineer, stage=Stage.NONE, seed=13)
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v3, actor=engineer)
    assert caught.value.code == "version_not_allowed"
    assert deploy(endpoint=endpoint, version=v1, actor=engineer).status == "healthy"
    assert deploy(endpoint=endpoint, version=v2, actor=engineer).status == "healthy"


def test_config_is_validated_with_the_field_named(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    with pytest.raises(ValidationFailed) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v1, strategy="canary",
                                  config={"steps": [50, 20, 100]}, actor=engineer)
    assert caught.value.details["fields"] == {"config.steps": ["Steps must increase, e.g. [10, 25, 50, 100]."]}
    with pytest.raises(ValidationFailed):
        services.deployment_start(endpoint=endpoint, model_version=v1, strategy="canary",
                                  config={"bogus": 1}, actor=engineer)


def test_deploying_needs_the_deploy_right(scientist, engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    with pytest.raises(PermissionDenied):
        services.deployment_start(endpoint=endpoint, model_version=v1, actor=scientist)


def test_one_rollout_at_a_time(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    services.deployment_start(endpoint=endpoint, model_version=v1, actor=engineer)
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v1, actor=engineer)
    assert caught.value.code == "rollout_in_progress"


# --- Immediate and the health check ----------------------------------------------------------

def test_immediate_deployment_is_health_checked_compiled_and_takes_all_traffic(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert (deployment.status, deployment.rollout_state, deployment.traffic_weight) == ("healthy", "completed", 100)
    assert deployment.serving_path == "onnx"
    assert "matches scikit-learn" in deployment.serving_path_reason
    assert deployment.compiled_artifact and len(deployment.compiled_sha256) == 64
    health = deployment.health
    assert health["ok"] and health["sha256_ok"] and health["smoke_latency_ms"] < health["latency_budget_ms"]
    assert [e.kind for e in deployment.events.all()] == ["created", "health_checked", "promoted"]
    actions = set(AuditEvent.objects.filter(object_type="serving.deployment").values_list("action", flat=True))
    assert {"deployment.created", "deployment.health_checked", "deployment.promoted"} <= actions


def test_a_version_onnx_cannot_express_is_served_by_sklearn_and_says_why(engineer, settings):
    # LabelSpreading is no class the platform trains: it loads only when trusted by its exact name.
    settings.MODEL_TRUSTED_TYPES = ["sklearn.semi_supervised._label_propagation.LabelSpreading"]
    version = make_model_version(owner=engineer, stage=Stage.PRODUCTION, estimator="label_spreading")
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=version, actor=engineer)
    assert (deployment.status, deployment.serving_path, deployment.compiled_artifact) == ("healthy", "sklearn", "")
    assert "conversion failed" in deployment.serving_path_reason
    assert deployment.health["compile"]["attempts"][0]["ok"] is False
    answer = services.predict(route=runtime.route(endpoint.slug), payload={"instances": version.input_example})
    assert answer["serving_path"] == "sklearn" and len(answer["predictions"]) == len(version.input_example)


def test_a_version_whose_onnx_and_sklearn_paths_disagree_fails_the_health_check(engineer, versions,
                                                                                monkeypatch):
    """The compiled file the runtime will serve must answer like the
    scikit-learn fallback on the verification rows (within 1e-5)."""
    from apps.serving.services import health

    class DriftingOnnx(health.OnnxPredictor):
        def raw_outputs(self, columns, n):
            raw = super().raw_outputs(columns, n).copy()
            raw[:, 0] += 0.01
            raw[:, 1] -= 0.01
            return raw

    monkeypatch.setattr(health, "OnnxPredictor", DriftingOnnx)
    v1, _ = versions
    deployment = deploy(endpoint=make_endpoint(owner=engineer), version=v1, actor=engineer)
    assert (deployment.status, deployment.traffic_weight) == ("failed", 0)
    assert "ONNX and scikit-learn paths disagree" in deployment.status_reason
    assert deployment.health["onnx_vs_sklearn_max_abs_diff"] == pytest.approx(0.01, abs=1e-4)


def test_a_model_file_that_does_not_match_its_hash_fails_the_health_check(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    type(v1).objects.filter(pk=v1.pk).update(sha256="0" * 64)
    v1.refresh_from_db()
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert (deployment.status, deployment.rollout_state, deployment.traffic_weight) == ("failed", "failed", 0)
    assert "SHA-256" in deployment.status_reason
    assert deployment.events.last().kind == "failed"


def test_a_new_immediate_deployment_supersedes_the_old_one(engineer, versions):
    v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    first = deploy(endpoint=endpoint, version=v1, actor=engineer)
    second = deploy(endpoint=endpoint, version=v2, actor=engineer)
    first.refresh_from_db()
    assert (first.status, first.traffic_weight) == ("superseded", 0)
    assert second.traffic_weight == 100
    assert first.events.last().kind == "superseded"


# --- Canary -----------------------------------------------------------------------------------

@pytest.fixture
def staging(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    baseline = deploy(endpoint=endpoint, version=v1, actor=engineer)
    return endpoint, baseline


CANARY = {"steps": [10, 50, 100], "step_seconds": 60, "min_requests": 5, "max_error_rate": 0.1}


def test_canary_moves_step_by_step_and_promotes_when_every_step_passes(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, baseline = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    assert (canary.status, canary.rollout_state, canary.rollout_step) == ("deploying", "progressing", 0)
    assert _weights(endpoint) == {1: 90, 2: 10}
    for expected in ({1: 50, 2: 50}, {1: 0, 2: 100}):
        _log(canary, 8)
        assert tick_once(canary) == "waiting"  # checked mid-step: healthy, not over yet
        backdate_step(canary, 61)
        assert tick_once(canary) == "step"
        assert _weights(endpoint) == expected
    _log(canary, 8)
    backdate_step(canary, 61)
    assert tick_once(canary) == "completed"
    canary.refresh_from_db()
    baseline.refresh_from_db()
    assert (canary.status, canary.rollout_state, canary.traffic_weight) == ("healthy", "completed", 100)
    assert baseline.status == "superseded"
    kinds = [e.kind for e in canary.events.all()]
    assert kinds.count("traffic_shifted") == 3 and kinds[-1] == "promoted"


def test_canary_rolls_back_on_its_own_when_the_new_version_errors(engineer, staging):
    """Errors injected for real: v2 cannot handle a missing concentration,
    which its signature allows; lab traffic with blanks makes it fail."""
    endpoint, baseline = staging
    model, signature, records = fit_nan_intolerant_pipeline()
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, model=model, signature=signature,
                            example=records[:3])
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary",
                    config={**CANARY, "steps": [30, 100], "min_requests": 10})
    assert _weights(endpoint) == {1: 70, v2.version: 30}
    route = runtime.route(endpoint.slug)
    blanks = [{**r, "concentration_ng_ul": None} for r in json_records(lab_frame().head(200))]
    answered = failed = 0
    for i, instance in enumerate(blanks):
        try:
            services.predict(route=route, payload={"instances": [instance], "unit_id": f"S-{i}"})
            answered += 1
        except services.PredictionFailed:
            failed += 1
    logbuffer.flush()
    assert failed > 30 and answered > 100  # only the canary's share failed
    assert tick_once(canary) == "rolled_back"
    canary.refresh_from_db()
    baseline.refresh_from_db()
    assert (canary.status, canary.rollout_state, canary.traffic_weight) == ("rolled_back", "rolled_back", 0)
    assert baseline.traffic_weight == 100
    assert "error rate" in canary.status_reason
    event = canary.events.last()
    assert event.kind == "rolled_back" and event.data["automatic"] is True
    assert event.data["stats"]["errors"] == failed


def test_canary_rolls_back_when_p95_latency_breaks_the_limit(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _baseline = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary",
                    config={**CANARY, "max_p95_ms": 50})
    _log(canary, 10, latency=120)
    assert tick_once(canary) == "rolled_back"
    canary.refresh_from_db()
    assert "p95 latency" in canary.status_reason


def test_canary_pauses_instead_of_aborting_when_a_step_sees_too_little_traffic(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _baseline = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    _log(canary, 2)
    backdate_step(canary, 61)
    assert tick_once(canary) == "paused"
    canary.refresh_from_db()
    assert (canary.status, canary.rollout_state, canary.traffic_weight) == ("deploying", "paused", 10)
    assert "fewer than the 5 needed" in canary.paused_reason
    assert canary.next_check_at is None

    services.deployment_resume(deployment=canary, actor=engineer)
    canary.refresh_from_db()
    assert canary.rollout_state == "progressing" and canary.paused_reason == ""
    services.deployment_promote(deployment=canary, actor=engineer)
    canary.refresh_from_db()
    assert (canary.rollout_state, canary.traffic_weight) == ("completed", 100)
    assert _weights(endpoint) == {2: 100}


def test_manual_pause_and_rollback(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _baseline = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    services.deployment_pause(deployment=canary, actor=engineer, reason="waiting for the QA manager")
    canary.refresh_from_db()
    assert (canary.rollout_state, canary.paused_reason) == ("paused", "waiting for the QA manager")
    with pytest.raises(InvalidState):
        services.deployment_pause(deployment=canary, actor=engineer)
    with pytest.raises(ValidationFailed):
        services.deployment_rollback(deployment=canary, actor=engineer, reason=" ")
    services.deployment_rollback(deployment=canary, actor=engineer, reason="wrong model")
    canary.refresh_from_db()
    assert (canary.status, canary.traffic_weight, canary.status_reason) == ("rolled_back", 0, "wrong model")
    assert _weights(endpoint) == {1: 100}
    with pytest.raises(InvalidState):
        services.deployment_rollback(deployment=canary, actor=engineer, reason="again")


def test_a_stale_tick_does_nothing(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _ = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    old_seq = canary.rollout_seq
    services.deployment_pause(deployment=canary, actor=engineer)
    assert services.rollout_tick(deployment_id=canary.pk, seq=old_seq) == "stale"


# --- Blue-green and rolling ---------------------------------------------------------------------

def test_blue_green_warms_switches_at_once_and_keeps_the_old_version_ready(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, baseline = staging
    green = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="blue_green",
                   config={"warmup_s": 0, "rollback_window_s": 120})
    assert (green.rollout_state, green.traffic_weight) == ("progressing", 0)
    assert _weights(endpoint) == {1: 100, 2: 0}
    assert tick_once(green) == "switched"
    green.refresh_from_db()
    baseline.refresh_from_db()
    assert (green.rollout_state, green.traffic_weight) == ("observing", 100)
    assert (baseline.status, baseline.traffic_weight) == ("healthy", 0)  # standing by
    # Instant rollback during the window.
    services.deployment_rollback(deployment=green, actor=engineer, reason="labs report odd results")
    baseline.refresh_from_db()
    assert baseline.traffic_weight == 100
    assert _weights(endpoint) == {1: 100}


def test_blue_green_supersedes_the_old_version_when_the_window_closes(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, baseline = staging
    green = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="blue_green",
                   config={"warmup_s": 0, "rollback_window_s": 30})
    tick_once(green)
    backdate_step(green, 31)
    assert tick_once(green) == "completed"
    baseline.refresh_from_db()
    assert baseline.status == "superseded"


def test_rolling_moves_in_increments_and_does_not_pause_on_quiet_steps(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _ = staging
    rolling = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="rolling",
                     config={"steps": [50, 100], "step_seconds": 10})
    assert _weights(endpoint) == {1: 50, 2: 50}
    backdate_step(rolling, 11)
    assert tick_once(rolling) == "step"
    backdate_step(rolling, 11)
    assert tick_once(rolling) == "completed"
    assert _weights(endpoint) == {2: 100}


def test_canary_on_an_empty_endpoint_takes_all_traffic(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer, strategy="canary", config=CANARY)
    assert (deployment.rollout_state, deployment.traffic_weight) == ("completed", 100)
    assert "no steps" in deployment.events.last().message


# --- Webhooks, degraded, registry events -------------------------------------------------------------

def test_every_transition_fires_the_registrys_webhooks(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _ = staging
    WebhookSubscription.objects.create(name="ops", url="https://hooks.example.org/x", events=[],
                                       created_by=engineer, secret="s" * 32)
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    services.deployment_pause(deployment=canary, actor=engineer)
    services.deployment_rollback(deployment=canary, actor=engineer, reason="test")
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", flat=True))
    assert events == ["deployment.created", "deployment.traffic_shifted", "deployment.paused",
                      "deployment.rolled_back"]


def test_a_serving_deployment_is_marked_degraded_and_recovers(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    _log(deployment, 30, status=500)
    assert services.deployments_check_health() == {"degraded": 1, "recovered": 0}
    deployment.refresh_from_db()
    assert deployment.status == "degraded"
    PredictionLog.objects.update(created_at=timezone.now() - timedelta(hours=1))
    _log(deployment, 30)
    assert services.deployments_check_health() == {"degraded": 0, "recovered": 1}


def test_a_version_leaving_production_flags_its_production_deployment(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    type(v1).objects.filter(pk=v1.pk).update(stage=Stage.ARCHIVED)
    assert services.deployments_note_stage_change(model_version_id=v1.pk, from_stage="production",
                                                  to_stage="archived") == 1
    deployment.refresh_from_db()
    assert deployment.status == "degraded" and deployment.traffic_weight == 100
    assert "archived" in deployment.status_reason


def test_model_version_resolve_hides_models_the_user_cannot_see(engineer, make_user, versions):
    nobody = make_user(username="no_roles")
    with pytest.raises(NotFound):
        services.model_version_resolve(actor=nobody, model="sample-qc", version=1)
    assert services.model_version_resolve(actor=engineer, model="sample-qc", version=2).version == 2
