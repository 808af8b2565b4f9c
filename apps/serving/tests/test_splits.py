"""Steady traffic splits (the arms of an A/B test): assignment, persistence
across processes, the split's own salt, and rollouts refused while held."""

from collections import Counter

import pytest

from apps.core.errors import Conflict, ValidationFailed
from apps.core.models import AuditEvent
from apps.registry.choices import Stage
from apps.serving import logbuffer, services
from apps.serving.models import Deployment, PredictionLog, TrafficSplit
from apps.serving.runtime import ServingRuntime, runtime
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(engineer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    return v1, v2


@pytest.fixture
def split_endpoint(engineer, versions):
    v1, _v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    return endpoint


def _start(endpoint, versions, actor, weights=(50, 50), **kwargs):
    return services.endpoint_split_start(endpoint=endpoint, arms=list(zip(versions, weights, strict=True)),
                                         owner_label="A/B test 1", actor=actor, **kwargs)


def test_a_split_holds_the_arms_at_their_weights_with_a_salt_of_its_own(engineer, versions, split_endpoint):
    split = _start(split_endpoint, versions, engineer, weights=(3, 1))
    assert [arm["weight"] for arm in split.arms] == [75.0, 25.0]
    assert split.salt and split.salt != split_endpoint.slug
    weights = {d.model_version_id: d.traffic_weight
               for d in Deployment.objects.filter(endpoint=split_endpoint, status="healthy")}
    assert weights == {versions[0].pk: 75.0, versions[1].pk: 25.0}
    assert AuditEvent.objects.filter(action="endpoint.split_started").count() == 1


def test_the_split_survives_a_restart_and_routes_with_its_salt(engineer, versions, split_endpoint):
    split = _start(split_endpoint, versions, engineer)
    fresh = ServingRuntime()  # another process, or this one after a restart
    fresh.refresh(force=True)
    route = fresh.route("qc")
    assert route.split_id == split.pk and route.router.salt == split.salt
    arm_of = {arm["deployment_id"]: i for i, arm in enumerate(split.arms)}
    for unit in ("S-1", "S-2", "lab-7"):
        assert arm_of[route.router.choose(unit)] == services.split_arm_for(split=split, unit_id=unit)


def test_the_same_unit_always_gets_the_same_arm(engineer, versions, split_endpoint):
    split = _start(split_endpoint, versions, engineer)
    for unit in (f"S-{i}" for i in range(200)):
        first = services.split_arm_for(split=split, unit_id=unit)
        assert all(services.split_arm_for(split=split, unit_id=unit) == first for _ in range(3))


def test_assignment_shares_are_within_one_percent_of_the_weights_over_100k_units(engineer, versions,
                                                                                  split_endpoint):
    split = _start(split_endpoint, versions, engineer, weights=(70, 30))
    router = services.split_router(split)
    counts = Counter(router.choose(f"unit-{i}") for i in range(100_000))
    shares = [counts[deployment_id] / 100_000 for deployment_id, _ in split.weights]
    assert shares[0] == pytest.approx(0.70, abs=0.01) and shares[1] == pytest.approx(0.30, abs=0.01)


def test_each_split_gets_a_new_salt_so_assignments_are_independent(engineer, versions, split_endpoint):
    first = _start(split_endpoint, versions, engineer)
    services.endpoint_split_end(endpoint=split_endpoint, actor=engineer)
    third = make_model_version(owner=engineer, stage=Stage.STAGING, seed=13)
    second = _start(split_endpoint, (versions[0], third), engineer)
    assert first.salt != second.salt
    units = [f"S-{i}" for i in range(2000)]
    same = sum(services.split_arm_for(split=first, unit_id=u) == services.split_arm_for(split=second, unit_id=u)
               for u in units)
    assert 0.45 < same / len(units) < 0.55  # independent 50/50 assignments agree about half the time
    services.endpoint_split_end(endpoint=split_endpoint, actor=engineer)
    with pytest.raises(Conflict) as caught:
        services.endpoint_split_end(endpoint=split_endpoint, actor=engineer)
    assert caught.value.code == "no_split"


def test_a_reused_salt_is_refused(engineer, versions, split_endpoint):
    first = _start(split_endpoint, versions, engineer, salt="fixed-salt")
    services.endpoint_split_end(endpoint=split_endpoint, actor=engineer)
    with pytest.raises(Conflict) as caught:
        _start(split_endpoint, versions, engineer, salt=first.salt)
    assert caught.value.code == "salt_reused"


def test_ending_the_split_restores_the_control_alone(engineer, versions, split_endpoint):
    split = _start(split_endpoint, versions, engineer)
    services.endpoint_split_end(endpoint=split_endpoint, actor=engineer)
    split.refresh_from_db()
    assert split.ended_at is not None and split.kept_arm == 0
    live = list(Deployment.objects.filter(endpoint=split_endpoint, traffic_weight__gt=0))
    assert [(d.model_version_id, d.traffic_weight) for d in live] == [(versions[0].pk, 100.0)]
    challenger = Deployment.objects.get(endpoint=split_endpoint, model_version=versions[1])
    assert challenger.status == "superseded"
    runtime.refresh(force=True)
    assert runtime.route("qc").split_id is None and runtime.route("qc").router.salt == "qc"
    assert AuditEvent.objects.filter(action="endpoint.split_ended").count() == 1


def test_the_prediction_log_records_split_and_arm(engineer, versions, split_endpoint):
    split = _start(split_endpoint, versions, engineer)
    runtime.refresh(force=True)
    records = versions[0].input_example[:1]
    for unit in ("S-1", "S-2", "S-3", "S-4"):
        body = services.predict(route=runtime.route("qc"), payload={"instances": records, "unit_id": unit})
        assert body["split"] == {"id": split.pk, "arm": services.split_arm_for(split=split, unit_id=unit)}
    logbuffer.flush()
    rows = PredictionLog.objects.filter(split_id=split.pk)
    assert rows.count() == 4
    assert {(r.unit_id, r.split_arm) for r in rows} == {
        (u, services.split_arm_for(split=split, unit_id=u)) for u in ("S-1", "S-2", "S-3", "S-4")}


def test_an_endpoint_setting_names_the_unit_field(engineer, versions):
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging", unit_field="submitting_lab")
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    split = _start(endpoint, versions, engineer)
    runtime.refresh(force=True)
    record = dict(versions[0].input_example[0], submitting_lab="Oslo Genomics Core")
    body = services.predict(route=runtime.route("qc"), payload={"instances": [record]})
    assert body["split"]["arm"] == services.split_arm_for(split=split, unit_id="Oslo Genomics Core")
    logbuffer.flush()
    assert PredictionLog.objects.get().unit_id == "Oslo Genomics Core"


def test_rollouts_rollbacks_and_promotions_are_refused_while_a_split_holds(client_for, engineer, versions,
                                                                            split_endpoint):
    _start(split_endpoint, versions, engineer)
    api = client_for(engineer)
    response = api.post("/api/v1/endpoints/qc/deployments/", {"model": "sample-qc", "version": versions[1].version,
                                                                "strategy": "canary"})
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "split_held" and error["details"]["held_by"] == "A/B test 1"
    assert "A/B test 1" in error["message"]
    deployment = Deployment.objects.filter(endpoint=split_endpoint).first()
    for action, body in (("promote", {}), ("rollback", {"reason": "no"})):
        answer = api.post(f"/api/v1/deployments/{deployment.pk}/{action}/", body)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "split_held"


def test_a_production_challenger_outside_production_needs_an_approval_and_a_capped_share(engineer, make_user,
                                                                                       versions):
    v1, _v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="prod-qc", environment="production")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    with pytest.raises(Conflict) as caught:
        _start(endpoint, versions, engineer)
    assert caught.value.code == "approval_required"
    approver = make_user("Approver")
    with pytest.raises(Conflict) as caught:
        _start(endpoint, versions, engineer, weights=(40, 60), approved_by=approver)
    assert caught.value.code == "challenger_share_too_high"
    assert not TrafficSplit.objects.exists()
    split = _start(endpoint, versions, engineer, weights=(50, 50), approved_by=approver)
    assert split.approved_by == approver
    with pytest.raises(Conflict) as caught:  # the unpromoted challenger cannot be kept alone
        services.endpoint_split_end(endpoint=endpoint, actor=engineer, keep=1)
    assert caught.value.code == "version_not_allowed"


def test_bad_arms_are_refused_without_writing(engineer, versions, split_endpoint):
    with pytest.raises(ValidationFailed):
        _start(split_endpoint, versions[:1], engineer, weights=(100,))
    with pytest.raises(ValidationFailed):
        _start(split_endpoint, versions, engineer, weights=(50, 0))
    with pytest.raises(ValidationFailed):
        _start(split_endpoint, (versions[0], versions[0]), engineer)
    assert not TrafficSplit.objects.exists()
    assert Deployment.objects.filter(endpoint=split_endpoint).count() == 1
