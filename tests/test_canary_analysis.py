"""A canary judged against the stable version (``analysis: "sequential"``):
serving asks the judge abtests registers (apps/serving/judges.py) and rolls
back a canary significantly worse than the version it replaces, even within
the absolute limits; an equal canary passes its step."""

import pytest

from apps.registry.choices import Stage
from apps.serving import judges, logbuffer
from apps.serving.policy import ConfigError, clean_config
from apps.serving.runtime import runtime
from apps.serving.tests.factories import (
    backdate_step,
    deploy,
    live_weights,
    log_requests,
    make_endpoint,
    make_model_version,
    tick_once,
)

pytestmark = pytest.mark.django_db

# Absolute limits loose enough that only the comparison can fail the step.
CANARY = {"steps": [50, 100], "step_seconds": 60, "min_requests": 20, "max_error_rate": 0.5, "max_p95_ms": 10_000,
          "analysis": "sequential"}


@pytest.fixture(autouse=True)
def _serving_process_state():
    runtime.reset()
    logbuffer.buffer.clear()
    previous = logbuffer.buffer.use_thread
    logbuffer.buffer.use_thread = False
    yield
    logbuffer.buffer.use_thread = previous
    logbuffer.buffer.clear()
    runtime.reset()


@pytest.fixture
def rollout(make_user):
    engineer = make_user("ML Engineer", username="engineer_canary")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-canary", environment="staging")
    stable = deploy(endpoint=endpoint, version=v1, actor=engineer)
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=CANARY)
    assert live_weights(endpoint) == {1: 50, 2: 50}
    return endpoint, stable, canary


def test_the_analysis_is_a_canary_option_naming_the_registered_judges():
    assert "sequential" in judges.names()
    assert clean_config("canary", {"analysis": "sequential"})["analysis"] == "sequential"
    assert "analysis" not in clean_config("canary", {})  # thresholds only, as before
    with pytest.raises(ConfigError) as bad:
        clean_config("canary", {"analysis": "coin-flip"})
    assert bad.value.field == "config.analysis"
    with pytest.raises(ConfigError):
        clean_config("rolling", {"analysis": "sequential"})


def test_a_canary_with_a_significantly_worse_error_rate_fails_the_step(rollout):
    endpoint, stable, canary = rollout
    log_requests(stable, 300)
    log_requests(canary, 255)
    log_requests(canary, 45, status=500)  # 15 % errors: within the 50 % limit, far above stable's 0 %
    assert tick_once(canary) == "rolled_back"
    canary.refresh_from_db()
    assert canary.status == "rolled_back" and "significantly above the stable version" in canary.status_reason
    assert live_weights(endpoint) == {1: 100}


def test_an_equal_canary_passes_its_step(rollout):
    endpoint, stable, canary = rollout
    for deployment in (stable, canary):
        log_requests(deployment, 297, latency=6.0)
        log_requests(deployment, 3, status=500)
    backdate_step(canary, 61)
    assert tick_once(canary) == "step"
    assert live_weights(endpoint) == {1: 0, 2: 100}


def test_without_the_option_the_same_canary_passes_on_thresholds_alone(make_user):
    engineer = make_user("ML Engineer", username="engineer_thresholds")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-thresholds", environment="staging")
    stable = deploy(endpoint=endpoint, version=v1, actor=engineer)
    config = {key: value for key, value in CANARY.items() if key != "analysis"}
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary", config=config)
    log_requests(stable, 300)
    log_requests(canary, 255)
    log_requests(canary, 45, status=500)
    backdate_step(canary, 61)
    assert tick_once(canary) == "step"
