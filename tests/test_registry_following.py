"""Registry → serving, through the domain events as committed: approving v2
for Production moves the production endpoint serving v1 to a canary of v2 in
the approver's name; a registry rollback moves it straight back to v1."""

import pytest

from apps.core.models import AuditEvent
from apps.registry import services as registry
from apps.registry.choices import Stage
from apps.serving import tasks
from apps.serving.models import Deployment
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version, run_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def synchronous_serving_tasks(monkeypatch):
    """Run what the serving handlers enqueue at once, as a rollouts worker would."""
    monkeypatch.setattr(tasks.endpoints_follow_registry, "apply_async",
                        lambda args, queue: tasks.endpoints_follow_registry(*args))
    # Calling a task object runs it in this process.
    monkeypatch.setattr(tasks.deployments_note_stage_change, "delay", tasks.deployments_note_stage_change)


def test_approval_and_rollback_move_the_production_endpoint(make_user, django_capture_on_commit_callbacks,
                                                            synchronous_serving_tasks):
    engineer = make_user("ML Engineer", "Data Scientist", username="eng_follow")
    # An Admin approves: the factory-made versions have no holdout for the
    # metric gates, which this flow is not about, so the gates are overridden.
    approver = make_user("Admin", username="qa_follow")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.NONE, seed=12)
    endpoint = make_endpoint(owner=engineer)
    first = deploy(endpoint=endpoint, version=v1, actor=engineer)

    request = registry.promotion_request_create(version=v2, actor=engineer, target_stage="production",
                                                justification="better on FFPE")
    with django_capture_on_commit_callbacks(execute=True):
        registry.promotion_request_approve(promotion_request=request, actor=approver, comment="reviewed",
                                           override_reason="no holdout in this flow")
    canary = Deployment.objects.get(endpoint=endpoint, model_version=v2)
    assert (canary.strategy, canary.created_by) == ("canary", approver)
    assert AuditEvent.objects.filter(action="deployment.created", object_id=str(canary.pk), actor=approver).exists()
    first.refresh_from_db()
    assert first.status == "healthy", "the endpoint is moving on, not left degraded on an archived version"
    run_rollout(canary)

    with django_capture_on_commit_callbacks(execute=True):
        registry.registered_model_rollback(registered_model=v1.registered_model, actor=engineer,
                                           reason="v2 misreads FFPE")
    back = Deployment.objects.filter(endpoint=endpoint, model_version=v1).latest("id")
    assert back.pk != first.pk and (back.strategy, back.created_by) == ("immediate", engineer)
    back = run_rollout(back)
    assert (back.rollout_state, back.traffic_weight) == ("completed", 100)
    canary.refresh_from_db()
    assert canary.traffic_weight == 0
