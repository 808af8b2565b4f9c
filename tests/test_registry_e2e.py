"""End to end through a real Celery worker and broker: train on the demo
data with the training-jobs API → register → request Production → gate
results → approved by another user → a second version with the regression
gate → rollback; webhooks signed and delivered by the same worker."""

import json

import pytest

from apps.core.models import AuditEvent, WebhookDelivery
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import signing

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET = "e2e-webhook-secret-0123456789"


def test_train_register_approve_and_roll_back(live_worker, make_user, client_for, make_lab_version,
                                               train_through_api):
    scientist = make_user("Data Scientist", username="e2e_sci")
    qa = make_user("Approver", username="e2e_qa")
    engineer = make_user("ML Engineer", username="e2e_eng")
    admin = make_user("Admin", username="e2e_admin")
    sci_api, qa_api, eng_api = client_for(scientist), client_for(qa), client_for(engineer)
    dataset_version = make_lab_version(scientist, rows=600, seed=11, name="lab-submissions")
    experiment = sci_api.post("/api/v1/experiments/", {"name": "sample-qc-e2e"}, format="json")
    assert experiment.status_code == 201, experiment.content

    with Receiver([200]) as receiver:
        hook = client_for(admin).post("/api/v1/webhooks/", {"name": "lims", "url": receiver.url,
                                                            "secret": SECRET}, format="json")
        assert hook.status_code == 201, hook.content

        run_1 = train_through_api(sci_api, dataset_version, "logistic_regression", {"C": 1.0},
                                  experiment="sample-qc-e2e")
        run_2 = train_through_api(sci_api, dataset_version, "random_forest", {"n_estimators": 60, "max_depth": 6},
                                  experiment="sample-qc-e2e")

        created = sci_api.post("/api/v1/models/", {
            "name": "sample-qc", "task_type": "classification",
            "quality_gates": {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.6}],
                              "max_regression": {"metric": "test_roc_auc", "margin": 0.05}}}, format="json")
        assert created.status_code == 201, created.content

        v1 = sci_api.post("/api/v1/models/sample-qc/versions/", {"run_id": run_1}, format="json")
        assert v1.status_code == 201, v1.content
        assert v1.json()["metrics"]["test_roc_auc"] > 0.6
        assert v1.json()["dataset_version"] == dataset_version.pk

        req_1 = sci_api.post("/api/v1/models/sample-qc/versions/1/transition-requests/",
                             {"stage": "production", "justification": "first QC model"}, format="json").json()
        gates = {g["gate"]: g for g in req_1["gate_results"]}
        assert set(gates) == {"metric_threshold", "valid_signature", "valid_dataset", "max_regression"}
        assert req_1["gates_passed"], req_1["gate_results"]
        assert gates["max_regression"]["skipped"]
        # Four eyes, and a Data Scientist cannot approve anyway.
        assert sci_api.post(f"/api/v1/transition-requests/{req_1['id']}/approve/", {"comment": "self"},
                            format="json").status_code == 403
        approved = qa_api.post(f"/api/v1/transition-requests/{req_1['id']}/approve/",
                               {"comment": "gates passed, metrics reviewed"}, format="json")
        assert approved.status_code == 200 and approved.json()["decided_by"] == "e2e_qa"

        sci_api.post("/api/v1/models/sample-qc/versions/", {"run_id": run_2}, format="json")
        req_2 = sci_api.post("/api/v1/models/sample-qc/versions/2/transition-requests/",
                             {"stage": "production", "justification": "random forest"}, format="json").json()
        regression = next(g for g in req_2["gate_results"] if g["gate"] == "max_regression")
        assert not regression.get("skipped") and regression["production_version"] == 1
        assert regression["rows"] > 50 and 0.5 < regression["production"] <= 1.0
        decision = {"comment": "second model reviewed"}
        if not req_2["gates_passed"]:
            decision["override_reason"] = "End-to-end test: approve to exercise rollback."
        approver = qa_api if req_2["gates_passed"] else client_for(admin)
        assert approver.post(f"/api/v1/transition-requests/{req_2['id']}/approve/", decision,
                             format="json").status_code == 200
        model = sci_api.get("/api/v1/models/sample-qc/").json()
        assert model["production_version"] == 2 and model["aliases"] == {"champion": 2}

        rolled = eng_api.post("/api/v1/models/sample-qc/rollback/", {"reason": "false fails on FFPE"},
                              format="json")
        assert rolled.status_code == 200 and rolled.json()["version"] == 1
        assert sci_api.get("/api/v1/models/sample-qc/versions/2/").json()["stage"] == "archived"
        lineage = sci_api.get("/api/v1/models/sample-qc/versions/1/lineage/").json()
        assert lineage["run"]["id"] == run_1 and lineage["dataset_version"]["id"] == dataset_version.pk

        expected = {"registry.model_version.created", "registry.promotion_request.created",
                    "registry.promotion_request.approved",
                    "registry.model_version.stage_changed", "registry.alias.moved", "registry.model.rolled_back"}
        live_worker.wait_for(
            lambda: expected <= set(WebhookDelivery.objects.filter(status="succeeded").values_list("event",
                                                                                                    flat=True)),
            timeout=120, what="webhook deliveries of every registry event")
    for request in receiver.requests:
        assert signing.verify(request["body"], SECRET, request["headers"]["X-Mlops-Signature"])
    rollback_body = next(json.loads(r["body"]) for r in receiver.requests
                         if r["headers"]["X-Mlops-Event"] == "registry.model.rolled_back")
    assert rollback_body["data"]["reason"] == "false fails on FFPE" and rollback_body["data"]["to_version"] == 1
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model_version.registered", "promotion_request.created", "promotion_request.approved",
            "model_version.stage_changed", "registered_model.rolled_back"} <= actions
