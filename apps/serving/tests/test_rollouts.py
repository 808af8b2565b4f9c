"""The rollout state machine (apps/serving/services/rollouts.py), driven tick by
tick as the rollouts worker would (the worker itself: test_rollout_worker.py)."""


import pytest

from apps.core.errors import InvalidState, ValidationFailed
from apps.core.models import WebhookDelivery, WebhookSubscription
from apps.registry.choices import Stage
from apps.serving import logbuffer, services
from apps.serving.runtime import runtime
from apps.serving.tests.factories import (
    backdate_step,
    deploy,
    fit_nan_intolerant_pipeline,
    json_records,
    lab_frame,
    live_weights,
    log_requests,
    make_endpoint,
    make_model_version,
    tick_once,
)

pytestmark = pytest.mark.django_db

pytestmark = pytest.mark.django_db


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
    assert live_weights(endpoint) == {1: 90, 2: 10}
    for expected in ({1: 50, 2: 50}, {1: 0, 2: 100}):
        log_requests(canary, 8)
        assert tick_once(canary) == "waiting"  # checked mid-step: healthy, not over yet
        backdate_step(canary, 61)
        assert tick_once(canary) == "step"
        assert live_weights(endpoint) == expected
    log_requests(canary, 8)
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
    assert live_weights(endpoint) == {1: 70, v2.version: 30}
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
    log_requests(canary, 10, latency=120)
    assert tick_once(canary) == "rolled_back"
    canary.refresh_from_db()
    assert "p95 latency" in canary.status_reason


def test_canary_pauses_instead_of_aborting_when_a_step_sees_too_little_traffic(engineer, versions, staging):
    _v1, v2 = versions
    endpoint, _baseline = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    log_requests(canary, 2)
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
    assert live_weights(endpoint) == {2: 100}


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
    assert live_weights(endpoint) == {1: 100}
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
    assert live_weights(endpoint) == {1: 100, 2: 0}
    assert tick_once(green) == "switched"
    green.refresh_from_db()
    baseline.refresh_from_db()
    assert (green.rollout_state, green.traffic_weight) == ("observing", 100)
    assert (baseline.status, baseline.traffic_weight) == ("healthy", 0)  # standing by
    # Instant rollback during the window.
    services.deployment_rollback(deployment=green, actor=engineer, reason="labs report odd results")
    baseline.refresh_from_db()
    assert baseline.traffic_weight == 100
    assert live_weights(endpoint) == {1: 100}


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
    assert live_weights(endpoint) == {1: 50, 2: 50}
    backdate_step(rolling, 11)
    assert tick_once(rolling) == "step"
    backdate_step(rolling, 11)
    assert tick_once(rolling) == "completed"
    assert live_weights(endpoint) == {2: 100}


def test_canary_on_an_empty_endpoint_takes_all_traffic(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer, strategy="canary", config=CANARY)
    assert (deployment.rollout_state, deployment.traffic_weight) == ("completed", 100)
    assert "no steps" in deployment.events.last().message


# --- Webhooks ---------------------------------------------------------------------

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


