"""A/B tests on live traffic: create, approve (four eyes), start, stop,
conclude; the split they hold; the per-arm statistics and results; the API."""

import pytest

from apps.abtests import services
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.core.errors import InvalidState, PermissionDenied, ValidationFailed
from apps.core.models import AuditEvent
from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving import services as serving
from apps.serving.models import Deployment, TrafficSplit
from apps.serving.runtime import runtime
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("serving_process_state")]


@pytest.fixture
def versions(engineer):
    return (make_model_version(owner=engineer, stage=Stage.PRODUCTION),
            make_model_version(owner=engineer, stage=Stage.STAGING, seed=12))


def _endpoint(engineer, versions, environment="staging"):
    endpoint = make_endpoint(owner=engineer, slug="qc", environment=environment)
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    return endpoint


def _create(endpoint, versions, actor, **extra):
    return services.ab_test_create(endpoint=endpoint, name="new QC model", actor=actor,
                                   arms=[{"model_version": versions[0], "weight": 50},
                                         {"model_version": versions[1], "weight": 50}],
                                   guardrail_metrics=["error_rate"], **extra)


def _actions(test):
    return list(AuditEvent.objects.filter(object_id=str(test.pk), action__startswith="ab_test.")
                .order_by("id").values_list("action", flat=True))


def test_start_holds_the_arms_and_stop_gives_the_traffic_back_to_the_control(engineer, versions):
    endpoint = _endpoint(engineer, versions)
    test = _create(endpoint, versions, engineer)
    assert test.status == "draft"
    test = services.ab_test_start(ab_test=test, actor=engineer)
    assert test.status == "running"
    split = TrafficSplit.objects.get(pk=test.split_id)
    assert split.held and test.label in split.owner_label
    services.ab_test_stop(ab_test=test, actor=engineer, reason="enough data")
    test.refresh_from_db()
    split.refresh_from_db()
    assert test.status == "stopped" and not split.held
    live = Deployment.objects.filter(endpoint=endpoint, traffic_weight__gt=0)
    assert [d.model_version_id for d in live] == [versions[0].pk]
    assert _actions(test) == ["ab_test.created", "ab_test.started", "ab_test.stopped"]
    with pytest.raises(InvalidState):
        services.ab_test_start(ab_test=test, actor=engineer)


def test_a_production_test_waits_for_an_approver_who_is_not_its_creator(engineer, approver, make_user, versions):
    endpoint = _endpoint(engineer, versions, environment="production")
    test = services.ab_test_start(ab_test=_create(endpoint, versions, engineer), actor=engineer)
    assert test.status == "pending_approval" and test.split_id is None
    with pytest.raises(PermissionDenied) as caught:
        services.ab_test_approve(ab_test=test, actor=engineer)
    assert caught.value.code == "four_eyes"
    with pytest.raises(PermissionDenied):  # no approve right on the model
        services.ab_test_approve(ab_test=test, actor=make_user("Viewer"))
    test = services.ab_test_approve(ab_test=test, actor=approver)
    assert (test.status, test.approved_by) == ("running", approver)
    assert TrafficSplit.objects.get(pk=test.split_id).approved_by == approver
    assert _actions(test) == ["ab_test.created", "ab_test.approval_requested", "ab_test.approved",
                              "ab_test.started"]


def test_bad_designs_are_refused_naming_the_field(engineer, versions):
    endpoint = _endpoint(engineer, versions)
    with pytest.raises(ValidationFailed) as caught:
        _create(endpoint, versions, engineer, alpha=0.9)
    assert "alpha" in caught.value.details["fields"]
    with pytest.raises(ValidationFailed) as caught:
        services.ab_test_create(endpoint=endpoint, name="x", actor=engineer,
                                arms=[{"model_version": versions[0], "weight": 1}])
    assert "arms" in caught.value.details["fields"]
    assert not ABTest.objects.exists()


def test_statistics_are_kept_incrementally_and_a_winner_needs_significance(engineer, versions):
    endpoint = _endpoint(engineer, versions)
    test = services.ab_test_start(ab_test=_create(endpoint, versions, engineer), actor=engineer)
    runtime.refresh(force=True)
    records = versions[0].input_example[:1]
    answers = [serving.predict(route=runtime.route("qc"), payload={"instances": records, "unit_id": f"S-{i}"})
               for i in range(40)]
    logbuffer.flush()
    serving.feedback_record(endpoint=endpoint, items=[{"request_id": a["request_id"], "label": 1} for a in answers])
    first = services.ab_test_stats_update(ab_test_id=test.pk)
    assert first == {"predictions": 40, "feedback": 40, "more": False}
    assert services.ab_test_stats_update(ab_test_id=test.pk) == {"predictions": 0, "feedback": 0, "more": False}
    by_arm = {}
    for statistic in ABTestArmStatistic.objects.filter(arm__ab_test=test, metric="error_rate"):
        by_arm[statistic.arm.index] = statistic.n
    expected = [sum(1 for a in answers if a["split"]["arm"] == arm) for arm in (0, 1)]
    assert [by_arm.get(0, 0), by_arm.get(1, 0)] == expected and sum(expected) == 40
    services.ab_test_stop(ab_test=test, actor=engineer)
    with pytest.raises(InvalidState):  # the same model answers both arms' requests alike: no winner
        services.ab_test_conclude(ab_test=test, actor=engineer, winner=1)
    test = services.ab_test_conclude(ab_test=test, actor=engineer, winner=None)
    assert test.status == "concluded" and test.decision["winner"] is None
    assert [arm["n"] for arm in test.result_snapshot["primary"]["arms"]] == [
        by_arm.get(0, 0), by_arm.get(1, 0)]


def test_the_api_creates_starts_and_refuses_a_rollout_naming_the_test(client_for, engineer, versions):
    _endpoint(engineer, versions)
    api = client_for(engineer)
    body = {"endpoint": "qc", "name": "new QC model", "primary_metric": "accuracy",
            "arms": [{"model": "sample-qc", "version": 1, "weight": 50},
                     {"model": "sample-qc", "version": 2, "weight": 50}]}
    bad = api.post("/api/v1/ab-tests/", {**body, "engine": "astrology"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_failed"
    created = api.post("/api/v1/ab-tests/", body, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert [arm["version"] for arm in created.json()["arms"]] == [1, 2]
    assert api.post(f"/api/v1/ab-tests/{pk}/start/").json()["status"] == "running"
    rollout = api.post("/api/v1/endpoints/qc/deployments/", {"model": "sample-qc", "version": 2}, format="json")
    assert rollout.status_code == 409
    assert rollout.json()["error"]["code"] == "split_held" and f"A/B test {pk}" in rollout.json()["error"]["message"]
    assert api.get("/api/v1/ab-tests/").json()["results"][0]["id"] == pk
    results = api.get(f"/api/v1/ab-tests/{pk}/results/")
    assert results.status_code == 200 and results.json()["primary"]["metric"] == "accuracy"
    assert api.post(f"/api/v1/ab-tests/{pk}/approve/").status_code == 409  # not waiting for approval
    assert api.post(f"/api/v1/ab-tests/{pk}/stop/", {}, format="json").json()["status"] == "stopped"


def test_a_broken_guardrail_stops_the_test_and_restores_the_control(engineer, versions):
    endpoint = _endpoint(engineer, versions)
    test = services.ab_test_start(ab_test=_create(endpoint, versions, engineer), actor=engineer)
    arms = {arm.index: arm for arm in test.arms.all()}
    # The challenger fails one request in five, the control none in a thousand and one.
    ABTestArmStatistic.objects.create(arm=arms[0], metric="error_rate", n=1000, sum=1, sum_squares=1)
    ABTestArmStatistic.objects.create(arm=arms[1], metric="error_rate", n=1000, sum=200, sum_squares=200)
    breaches = services.ab_test_guardrails_check(ab_test_id=test.pk)
    assert [(b["metric"], b["arm_index"]) for b in breaches] == [("error_rate", 1)]
    test.refresh_from_db()
    assert test.status == "stopped" and "Guardrail broken" in test.stop_reason
    assert not TrafficSplit.objects.get(pk=test.split_id).held
    assert list(Deployment.objects.filter(endpoint=endpoint, traffic_weight__gt=0)
                .values_list("model_version_id", flat=True)) == [versions[0].pk]
    stopped = AuditEvent.objects.get(action="ab_test.stopped", object_id=str(test.pk))
    assert stopped.actor is None


def test_a_guardrail_within_noise_does_not_stop_the_test(engineer, versions):
    endpoint = _endpoint(engineer, versions)
    test = services.ab_test_start(ab_test=_create(endpoint, versions, engineer), actor=engineer)
    arms = {arm.index: arm for arm in test.arms.all()}
    ABTestArmStatistic.objects.create(arm=arms[0], metric="error_rate", n=1000, sum=10, sum_squares=10)
    ABTestArmStatistic.objects.create(arm=arms[1], metric="error_rate", n=1000, sum=12, sum_squares=12)
    assert services.ab_test_guardrails_check(ab_test_id=test.pk) == []
    test.refresh_from_db()
    assert test.status == "running"
