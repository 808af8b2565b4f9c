"""The serving demo: endpoints, a canary in progress and simulated traffic; idempotent."""

import pytest

from apps.registry.choices import Stage
from apps.serving import demo
from apps.serving.models import Deployment, Endpoint, Feedback, PredictionLog
from apps.serving.tests.factories import make_model_version

pytestmark = pytest.mark.django_db


def test_demo_waits_for_the_registry_then_builds_endpoints_canary_and_traffic(make_user):
    engineer = make_user("ML Engineer", username="engineer")
    assert demo.seed_serving() == demo.WAITING
    make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    assert demo.seed_serving() == demo.WAITING  # no v2 in Staging yet
    make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)

    assert demo.seed_serving() == demo.READY
    prod = Endpoint.objects.get(slug="sample-qc")
    staging = Endpoint.objects.get(slug="sample-qc-staging")
    assert (prod.environment, staging.environment) == ("production", "staging")
    (served,) = Deployment.objects.filter(endpoint=prod, status="healthy")
    assert (served.model_version.version, served.traffic_weight) == (1, 100)
    canary = Deployment.objects.get(endpoint=staging, strategy="canary")
    assert (canary.model_version.version, canary.rollout_state, canary.traffic_weight) == (2, "progressing", 10)
    assert Deployment.objects.get(endpoint=staging, model_version__version=1, status="healthy").traffic_weight == 90

    logs = PredictionLog.objects.filter(request_id__startswith="demo-")
    assert logs.filter(endpoint=prod).count() == 240 and logs.filter(endpoint=staging).count() == 360
    assert logs.filter(deployment=canary).count() > 10  # the canary gets its share
    joined = Feedback.objects.filter(joined_at__isnull=False)
    assert 0.5 * 600 < joined.count() <= 0.6 * 600
    accuracy = joined.filter(correct=True).count() / joined.count()
    assert accuracy > 0.6  # the model learned something

    counts = (Endpoint.objects.count(), Deployment.objects.count(), PredictionLog.objects.count(),
              Feedback.objects.count())
    assert demo.seed_serving() == demo.READY
    assert (Endpoint.objects.count(), Deployment.objects.count(), PredictionLog.objects.count(),
            Feedback.objects.count()) == counts
