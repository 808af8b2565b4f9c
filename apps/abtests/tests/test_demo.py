"""The demo A/B test: seeding starts it on the production endpoint (approved
by another person) and feeds it drifted lab traffic with ground truth, so it
has results; seeding again changes nothing."""

import pytest

from apps.abtests import demo
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.abtests.selectors import ab_test_results
from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving.runtime import runtime
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


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


def test_seeding_runs_a_test_with_results_on_the_demo_endpoint(make_user):
    engineer = make_user("ML Engineer", username="engineer")
    qa = make_user("Approver", username="qa")
    assert demo.seed_abtests() == demo.WAITING  # no model, no endpoint yet
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    make_model_version(owner=engineer, stage=Stage.STAGING, estimator="forest", seed=12)
    endpoint = make_endpoint(owner=engineer, slug="sample-qc", environment="production")
    deploy(endpoint=endpoint, version=v1, actor=engineer, config={"bake_minutes": 0})

    assert demo.seed_abtests() == demo.READY
    test = ABTest.objects.get(name=demo.TEST_NAME)
    assert (test.status, test.created_by, test.approved_by) == ("running", engineer, qa)
    accuracy = dict(ABTestArmStatistic.objects.filter(arm__ab_test=test, metric="accuracy")
                    .values_list("arm__index", "n"))
    assert set(accuracy) == {0, 1} and sum(accuracy.values()) == demo.TRAFFIC_ROWS
    results = ab_test_results(ab_test=test)
    [comparison] = results["primary"]["comparisons"]
    assert comparison["error"] is None and comparison["p_value"] is not None

    assert demo.seed_abtests() == demo.READY
    assert ABTest.objects.count() == 1
