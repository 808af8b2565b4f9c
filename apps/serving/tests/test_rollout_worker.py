"""Rollouts advanced by real Celery workers: a worker killed mid-rollout is
replaced and the rollout carries on from its persisted state."""

import time
import uuid

import pytest
from django.test import override_settings

from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.models import Deployment
from apps.serving.tests.factories import make_endpoint, make_model_version, run_rollout

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def test_a_rollout_resumes_after_its_worker_is_killed(make_user, worker_factory):
    # A queue of its own, so that no other worker of the test session can
    # advance this rollout while "its" worker is dead.
    queue = f"rollouts-{uuid.uuid4().hex[:8]}"
    env = {"SERVING_ROLLOUT_QUEUE": queue}
    engineer = make_user("ML Engineer", username="engineer_w")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    with override_settings(SERVING_ROLLOUT_QUEUE=queue):
        assert run_rollout(services.deployment_start(endpoint=endpoint, model_version=v1,
                                                     actor=engineer)).status == "healthy"
        first = worker_factory("rollouts-a", queues=queue, concurrency=1, extra_env=env)
        rolling = services.deployment_start(endpoint=endpoint, model_version=v2, strategy="rolling",
                                            config={"steps": [25, 50, 75, 100], "step_seconds": 3,
                                                    "check_interval_s": 1}, actor=engineer)

        def step() -> int:
            return Deployment.objects.get(pk=rolling.pk).rollout_step

        first.wait_for(lambda: step() >= 1, timeout=120, what="the rolling update to reach its second step")
        first.stop(hard=True)  # SIGKILL: the scheduled tick dies with it
        stalled = Deployment.objects.get(pk=rolling.pk)
        assert stalled.rollout_state == "progressing"
        time.sleep(5)  # longer than a step: without a worker nothing moves
        assert Deployment.objects.get(pk=rolling.pk).rollout_seq == stalled.rollout_seq

        second = worker_factory("rollouts-b", queues=queue, concurrency=1, extra_env=env)
        second.wait_for(lambda: Deployment.objects.get(pk=rolling.pk).rollout_state == "completed", timeout=120,
                        what="the new worker to finish the rollout")
    rolling.refresh_from_db()
    assert (rolling.status, rolling.traffic_weight) == ("healthy", 100)
    steps = [e.data.get("step") for e in rolling.events.filter(kind="traffic_shifted")]
    assert steps == [0, 1, 2, 3]  # every step once, none repeated or skipped
    assert "rollouts_resume" in second.log()
