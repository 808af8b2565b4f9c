"""What a concluded test leads to: "no detectable difference" with the power
it had, shipping a winner through a promotion request (four eyes) and then a
deployment, and the ``abtest.stopped`` notification."""

import pytest

from apps.abtests import services
from apps.abtests import tasks as abtest_tasks
from apps.abtests.models import ABTestArmStatistic
from apps.core import events
from apps.core.errors import Conflict, InvalidState, PermissionDenied
from apps.core.models import AuditEvent
from apps.registry.choices import Stage
from apps.registry.models import PromotionRequest
from apps.registry.services.promotion_requests import promotion_request_approve, promotion_request_reject
from apps.serving.models import Deployment
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("serving_process_state")]


@pytest.fixture
def running(engineer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    test = services.ab_test_create(endpoint=endpoint, name="new QC model", actor=engineer,
                                   arms=[{"model_version": v1, "weight": 50}, {"model_version": v2, "weight": 50}],
                                   primary_metric="accuracy", guardrail_metrics=["error_rate"])
    return services.ab_test_start(ab_test=test, actor=engineer)


def _counts(test, metric, per_arm):
    arms = {arm.index: arm for arm in test.arms.all()}
    for index, (n, total) in per_arm.items():
        ABTestArmStatistic.objects.create(arm=arms[index], metric=metric, n=n, sum=total, sum_squares=total)


def _actions(test):
    return list(AuditEvent.objects.filter(object_id=str(test.pk), action__startswith="ab_test.")
                .order_by("id").values_list("action", flat=True))


def _concluded_with_winner(test, engineer):
    _counts(test, "accuracy", {0: (1000, 700), 1: (1000, 800)})
    _counts(test, "error_rate", {0: (1000, 1), 1: (1000, 1)})
    services.ab_test_stop(ab_test=test, actor=engineer, reason="enough data")
    return services.ab_test_conclude(ab_test=test, actor=engineer, winner=1)


def test_no_winner_records_no_detectable_difference_with_the_achieved_power(engineer, running):
    _counts(running, "accuracy", {0: (400, 300), 1: (400, 302)})
    _counts(running, "error_rate", {0: (400, 1), 1: (400, 1)})
    services.ab_test_stop(ab_test=running, actor=engineer)
    test = services.ab_test_conclude(ab_test=running, actor=engineer, winner=None)
    decision = test.decision
    assert decision["winner"] is None and decision["no_detectable_difference"] is True
    # 400 units per arm, baseline 0.75, MDE 2 % relative at alpha 0.05: little power.
    assert 0.05 < decision["achieved_power"] < 0.3
    assert "no detectable difference (achieved power" in decision["summary"]
    with pytest.raises(InvalidState):
        services.ab_test_ship(ab_test=test, actor=engineer)


@pytest.fixture
def ship_tasks(monkeypatch):
    sent = []
    monkeypatch.setattr(abtest_tasks.ab_test_ship_continue, "delay", lambda *args: sent.append(args))
    return sent


@pytest.mark.usefixtures("approver")
def test_shipping_the_winner_asks_for_production_and_deploys_once_approved(engineer, admin_user, running, ship_tasks,
                                                                           django_capture_on_commit_callbacks):
    admin, approver = admin_user, type(engineer).objects.get(username="approver_ab")
    test = _concluded_with_winner(running, engineer)
    request = services.ab_test_ship(ab_test=test, actor=engineer)
    winner = test.arms.get(index=1).model_version
    assert (request.version_id, request.target_stage, request.requested_by) == (winner.pk, "production", engineer)
    with pytest.raises(InvalidState):  # once is enough
        services.ab_test_ship(ab_test=test, actor=engineer)
    with pytest.raises(PermissionDenied):  # four eyes: the shipper does not approve
        promotion_request_approve(promotion_request=request, actor=engineer, comment="mine")
    # The gates apply: this factory-made version has no evaluation metrics, so
    # only an Admin's written override lets it through.
    assert request.gates_passed is False
    with pytest.raises(Conflict):
        promotion_request_approve(promotion_request=request, actor=approver, comment="the test says so")
    with django_capture_on_commit_callbacks(execute=True):
        promotion_request_approve(promotion_request=request, actor=admin, comment="the test says so",
                                  override_reason="the A/B test on live traffic is the evidence")
    assert ship_tasks == [(request.pk, True)]
    assert services.ab_test_ship_continue(promotion_request_id=request.pk, approved=True) == "deployed"
    assert services.ab_test_ship_continue(promotion_request_id=request.pk, approved=True) == "stale"
    test.refresh_from_db()
    deployment = Deployment.objects.get(pk=test.decision["ship"]["deployment_id"])
    assert (deployment.model_version_id, deployment.strategy) == (winner.pk, "canary")
    assert deployment.config["analysis"] == "sequential" and deployment.created_by == engineer
    assert _actions(test)[-3:] == ["ab_test.concluded", "ab_test.ship_requested", "ab_test.shipped"]


def test_a_rejected_promotion_declines_the_ship_and_deploys_nothing(engineer, approver, running):
    test = _concluded_with_winner(running, engineer)
    request = services.ab_test_ship(ab_test=test, actor=engineer)
    promotion_request_reject(promotion_request=request, actor=approver, comment="not yet")
    assert services.ab_test_ship_continue(promotion_request_id=request.pk, approved=False) == "declined"
    test.refresh_from_db()
    assert test.decision["ship"]["status"] == "declined"
    assert not Deployment.objects.filter(endpoint=test.endpoint, strategy="canary").exists()
    assert PromotionRequest.objects.get(pk=request.pk).status == "rejected"
    assert _actions(test)[-1] == "ab_test.ship_declined"


def test_stopping_a_test_announces_abtest_stopped_with_its_arms(engineer, running,
                                                                django_capture_on_commit_callbacks):
    heard = []

    def listener(event, payload):
        heard.append((event, payload))

    events.subscribe("abtest.stopped", listener)
    try:
        # A guardrail: the challenger fails, the control never does (no variance of its own).
        _counts(running, "error_rate", {0: (500, 0), 1: (500, 60)})
        with django_capture_on_commit_callbacks(execute=True):
            breaches = services.ab_test_guardrails_check(ab_test_id=running.pk)
    finally:
        events.unsubscribe("abtest.stopped", listener)
    assert [b["arm_index"] for b in breaches] == [1]
    [(_event, payload)] = heard
    assert set(payload) == {"ab_test_id", "endpoint", "reason", "arms"}
    assert (payload["ab_test_id"], payload["endpoint"]) == (running.pk, "qc")
    assert "Guardrail broken" in payload["reason"] and [a["index"] for a in payload["arms"]] == [0, 1]


def test_a_webhook_hears_of_a_stop_once_as_abtest_stopped(engineer, running, django_capture_on_commit_callbacks):
    from apps.core.models import WebhookDelivery, WebhookSubscription

    every = WebhookSubscription.objects.create(name="all", url="https://hooks.example.org/ab", events=[],
                                               created_by=engineer, secret="s" * 32)
    with django_capture_on_commit_callbacks(execute=False):
        services.ab_test_stop(ab_test=running, actor=engineer, reason="enough")
    stops = list(WebhookDelivery.objects.filter(subscription=every, event__contains="stop")
                 .values_list("event", flat=True))
    assert stops == ["abtest.stopped"]


def test_the_api_ships_a_winner_and_refuses_a_bad_config_naming_the_field(engineer, running, client_for):
    test = _concluded_with_winner(running, engineer)
    api = client_for(engineer)
    bad = api.post(f"/api/v1/ab-tests/{test.pk}/ship/", {"strategy": "canary", "config": {"analysis": "vibes"}},
                   format="json")
    assert bad.status_code == 400 and "config.analysis" in bad.json()["error"]["details"]["fields"]
    shipped = api.post(f"/api/v1/ab-tests/{test.pk}/ship/", {}, format="json")
    assert shipped.status_code == 200, shipped.content
    assert shipped.json()["decision"]["ship"]["status"] == "requested"
    request = PromotionRequest.objects.get(pk=shipped.json()["decision"]["ship"]["promotion_request_id"])
    assert request.target_stage == "production" and request.status == "pending"
    again = api.post(f"/api/v1/ab-tests/{test.pk}/ship/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_shipped"
