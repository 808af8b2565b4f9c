"""The demo seed: waits for the demo runs, then builds the registry's demo
state, and is idempotent."""

import pytest
from celery.exceptions import Retry

from apps.core import events
from apps.registry import demo
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import PromotionRequest, RegisteredModel
from apps.registry.tasks import demo_models_seed
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_users(make_user):
    return make_user("Data Scientist", username="scientist"), make_user("Approver", username="qa")


def test_waits_for_the_demo_runs(demo_users, data):
    with pytest.raises(Retry):
        demo_models_seed.run()
    factories.make_run(demo_users[0], dataset_version=data.version, frame=data.frame, experiment_name="sample-qc")
    with pytest.raises(Retry):
        demo_models_seed.run()
    assert not RegisteredModel.objects.exists()


def test_builds_the_demo_registry_once(demo_users, data, django_capture_on_commit_callbacks):
    scientist, qa = demo_users
    for C in (0.05, 1.0, 0.5):
        factories.make_run(scientist, dataset_version=data.version, frame=data.frame, C=C,
                           experiment_name="sample-qc")
    ready = []

    def on_ready(event, payload):
        ready.append(payload)

    events.subscribe(demo.DEMO_READY_EVENT, on_ready)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert demo_models_seed.run() == "ready"
    finally:
        events.unsubscribe(demo.DEMO_READY_EVENT, on_ready)
    assert ready == [{"registered_model": "sample-qc"}]
    model = RegisteredModel.objects.get(name="sample-qc")
    assert model.owner == scientist and model.quality_gates["max_regression"]["margin"] == 0.05
    v1, v2 = model.versions.get(version=1), model.versions.get(version=2)
    assert v1.stage == Stage.PRODUCTION and v2.stage == Stage.STAGING
    decided = PromotionRequest.objects.filter(status=RequestStatus.APPROVED)
    assert {(r.requested_by, r.decided_by) for r in decided} == {(scientist, qa)}
    pending = PromotionRequest.objects.get(status=RequestStatus.PENDING)
    assert pending.version == v2 and pending.target_stage == Stage.PRODUCTION
    assert model.aliases.get(alias="champion").version == v1

    assert demo_models_seed.run() == "ready"  # again: nothing new
    assert model.versions.count() == 2 and PromotionRequest.objects.count() == 3


def test_seed_enqueues_the_task(monkeypatch):
    sent = []
    monkeypatch.setattr(demo_models_seed, "delay", lambda: sent.append(True))
    context = {}
    demo.seed(context, password="x")
    assert sent == [True] and context["registry"] == {"model": "sample-qc"}
