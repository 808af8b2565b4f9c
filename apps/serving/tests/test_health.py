"""Health of deployments (apps/serving/services/health.py): the deploy-time
check (hash, ONNX compilation checked against scikit-learn) and the live
check that marks a serving deployment degraded and recovered."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.models import PredictionLog
from apps.serving.runtime import runtime
from apps.serving.tests.factories import (
    deploy,
    log_requests,
    make_endpoint,
    make_model_version,
)

pytestmark = pytest.mark.django_db

pytestmark = pytest.mark.django_db


# --- The deploy-time health check ----------------------------------------------------------

def test_immediate_deployment_is_health_checked_compiled_and_takes_all_traffic(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert (deployment.status, deployment.rollout_state, deployment.traffic_weight) == ("healthy", "completed", 100)
    assert deployment.serving_path == "onnx"
    assert "matches scikit-learn" in deployment.serving_path_reason
    assert deployment.compiled_artifact and len(deployment.compiled_sha256) == 64
    health = deployment.health
    assert health["ok"] and health["sha256_ok"] and health["smoke_latency_ms"] < health["latency_budget_ms"]
    assert [e.kind for e in deployment.events.all()] == ["created", "health_checked", "promoted"]
    actions = set(AuditEvent.objects.filter(object_type="serving.deployment").values_list("action", flat=True))
    assert {"deployment.created", "deployment.health_checked", "deployment.promoted"} <= actions


def test_a_version_onnx_cannot_express_is_served_by_sklearn_and_says_why(engineer, settings):
    # LabelSpreading is no class the platform trains: it loads only when trusted by its exact name.
    settings.MODEL_TRUSTED_TYPES = ["sklearn.semi_supervised._label_propagation.LabelSpreading"]
    version = make_model_version(owner=engineer, stage=Stage.PRODUCTION, estimator="label_spreading")
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=version, actor=engineer)
    assert (deployment.status, deployment.serving_path, deployment.compiled_artifact) == ("healthy", "sklearn", "")
    assert "conversion failed" in deployment.serving_path_reason
    assert deployment.health["compile"]["attempts"][0]["ok"] is False
    answer = services.predict(route=runtime.route(endpoint.slug), payload={"instances": version.input_example})
    assert answer["serving_path"] == "sklearn" and len(answer["predictions"]) == len(version.input_example)


def test_a_version_whose_onnx_and_sklearn_paths_disagree_fails_the_health_check(engineer, versions,
                                                                                monkeypatch):
    """The compiled file the runtime will serve must answer like the
    scikit-learn fallback on the verification rows (within 1e-5)."""
    from apps.serving.services import health

    class DriftingOnnx(health.OnnxPredictor):
        def raw_outputs(self, columns, n):
            raw = super().raw_outputs(columns, n).copy()
            raw[:, 0] += 0.01
            raw[:, 1] -= 0.01
            return raw

    monkeypatch.setattr(health, "OnnxPredictor", DriftingOnnx)
    v1, _ = versions
    deployment = deploy(endpoint=make_endpoint(owner=engineer), version=v1, actor=engineer)
    assert (deployment.status, deployment.traffic_weight) == ("failed", 0)
    assert "ONNX and scikit-learn paths disagree" in deployment.status_reason
    assert deployment.health["onnx_vs_sklearn_max_abs_diff"] == pytest.approx(0.01, abs=1e-4)


def test_a_model_file_that_does_not_match_its_hash_fails_the_health_check(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    type(v1).objects.filter(pk=v1.pk).update(sha256="0" * 64)
    v1.refresh_from_db()
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert (deployment.status, deployment.rollout_state, deployment.traffic_weight) == ("failed", "failed", 0)
    assert "SHA-256" in deployment.status_reason
    assert deployment.events.last().kind == "failed"



# --- The live health check ----------------------------------------------------------

def test_a_serving_deployment_is_marked_degraded_and_recovers(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    log_requests(deployment, 30, status=500)
    assert services.deployments_check_health() == {"degraded": 1, "recovered": 0}
    deployment.refresh_from_db()
    assert deployment.status == "degraded"
    PredictionLog.objects.update(created_at=timezone.now() - timedelta(hours=1))
    log_requests(deployment, 30)
    assert services.deployments_check_health() == {"degraded": 0, "recovered": 1}


