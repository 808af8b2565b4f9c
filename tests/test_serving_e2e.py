"""End to end through a real Celery worker and broker: train two models
with the training-jobs API → register → approve (four eyes) → deploy v1 →
canary of v2 → predictions flow to both → promote → feedback joins the
predictions and shows up as live accuracy per deployment."""

import json

import pytest

from apps.core.models import WebhookDelivery
from apps.core.services import api_key_create
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import signing
from apps.serving.models import Deployment, Feedback, PredictionLog

SECRET = "serving-e2e-webhook-secret-0123456789"
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _approve(sci_api, qa_api, version: int, stage: str) -> None:
    request = sci_api.post(f"/api/v1/models/sample-qc/versions/{version}/transition-requests/",
                           {"stage": stage, "justification": f"v{version} to {stage}"}, format="json")
    assert request.status_code == 201, request.content
    assert request.json()["gates_passed"], request.json()["gate_results"]
    decision = qa_api.post(f"/api/v1/transition-requests/{request.json()['id']}/approve/",
                           {"comment": "reviewed"}, format="json")
    assert decision.status_code == 200, decision.content


def test_train_register_approve_canary_predict_promote_feedback(  # noqa: PLR0917 - fixtures
        live_worker, make_user, client_for, client, make_lab_version, train_through_api):
    with Receiver([200]) as receiver:
        _flow(live_worker, make_user, client_for, client, receiver,
              make_lab_version=make_lab_version, train_through_api=train_through_api)
    deployment_events = [r["headers"]["X-Mlops-Event"] for r in receiver.requests
                         if r["headers"]["X-Mlops-Event"].startswith("deployment.")]
    assert {"deployment.created", "deployment.traffic_shifted", "deployment.promoted",
            "deployment.superseded"} <= set(deployment_events)
    for request in receiver.requests:
        assert signing.verify(request["body"], SECRET, request["headers"]["X-Mlops-Signature"])


def _flow(live_worker, make_user, client_for, client, receiver, *, make_lab_version, train_through_api):
    scientist = make_user("Data Scientist", username="se2e_sci")
    qa = make_user("Approver", username="se2e_qa")
    engineer = make_user("ML Engineer", username="se2e_eng")
    admin = make_user("Admin", username="se2e_admin")
    sci_api, qa_api, eng_api = client_for(scientist), client_for(qa), client_for(engineer)
    dataset_version = make_lab_version(scientist, rows=600, seed=21, name="lab-submissions-serving")
    assert sci_api.post("/api/v1/experiments/", {"name": "sample-qc-serving-e2e"}, format="json").status_code == 201
    hook = client_for(admin).post("/api/v1/webhooks/", {"name": "lims", "url": receiver.url, "secret": SECRET},
                                  format="json")
    assert hook.status_code == 201, hook.content

    run_1 = train_through_api(sci_api, dataset_version, "logistic_regression", {"C": 1.0},
                              experiment="sample-qc-serving-e2e")
    run_2 = train_through_api(sci_api, dataset_version, "random_forest", {"n_estimators": 40, "max_depth": 6},
                              experiment="sample-qc-serving-e2e")
    assert sci_api.post("/api/v1/models/", {"name": "sample-qc", "task_type": "classification"},
                        format="json").status_code == 201
    for run in (run_1, run_2):
        assert sci_api.post("/api/v1/models/sample-qc/versions/", {"run_id": run}, format="json").status_code == 201
    _approve(sci_api, qa_api, 1, "production")
    _approve(sci_api, qa_api, 2, "staging")

    # An endpoint for staging, serving v1 first.
    created = eng_api.post("/api/v1/endpoints/", {"slug": "qc-staging", "environment": "staging"}, format="json")
    assert created.status_code == 201, created.content
    first = eng_api.post("/api/v1/endpoints/qc-staging/deployments/", {"model": "sample-qc", "version": 1},
                         format="json")
    assert first.status_code == 201, first.content
    baseline = live_worker.wait_for(
        lambda: Deployment.objects.filter(pk=first.json()["id"], rollout_state__in=["completed", "failed"]).first(),
        timeout=180, what="v1's health check")
    assert baseline.status == "healthy", baseline.status_reason
    # Verified against its real test split and compiled.
    assert "test split" in baseline.health["verification"]["source"]
    assert baseline.serving_path == "onnx", baseline.serving_path_reason

    # A canary of v2 with steps long enough to send traffic in between.
    canary_response = eng_api.post("/api/v1/endpoints/qc-staging/deployments/", {
        "model": "sample-qc", "version": 2, "strategy": "canary",
        "config": {"steps": [50, 100], "step_seconds": 600, "min_requests": 5, "check_interval_s": 2}},
        format="json")
    assert canary_response.status_code == 201, canary_response.content
    canary_id = canary_response.json()["id"]
    canary = live_worker.wait_for(
        lambda: Deployment.objects.filter(pk=canary_id, rollout_step=0, rollout_state="progressing").first(),
        timeout=180, what="the canary's first step")
    assert canary.traffic_weight == 50

    # Lab traffic through the predict API, sticky per sample.
    from django.db import transaction

    with transaction.atomic():
        key = api_key_create(user=engineer, name="lims").raw_key
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    example = canary.model_version.input_example[0]
    answers = []
    for i in range(60):
        response = client.post("/api/v1/endpoints/qc-staging/predict/", content_type="application/json",
                               data=json.dumps({"instances": [example], "unit_id": f"S-{i:04d}"}), **headers)
        assert response.status_code == 200, response.content
        answers.append(response.json())
    served = {a["version"] for a in answers}
    assert served == {1, 2}
    assert {a["deployment_id"] for a in answers} == {baseline.pk, canary_id}

    promoted = eng_api.post(f"/api/v1/deployments/{canary_id}/promote/", format="json")
    assert promoted.status_code == 200 and promoted.json()["rollout_state"] == "completed"
    baseline.refresh_from_db()
    assert baseline.status == "superseded"
    assert eng_api.get("/api/v1/endpoints/qc-staging/").json()["deployments"][0]["traffic_weight"] == 100

    # Ground truth for the answers: all of them join, by request id.
    feedback = [{"request_id": a["request_id"], "label": a["predictions"][0] if i % 4 else
                 1 - a["predictions"][0]} for i, a in enumerate(answers)]
    joined = eng_api.post("/api/v1/endpoints/qc-staging/feedback/", {"feedback": feedback}, format="json")
    assert joined.status_code == 200 and joined.json() == {"received": 60, "joined": 60, "unknown": 0}
    assert PredictionLog.objects.filter(endpoint__slug="qc-staging", status_code=200).count() == 60
    assert Feedback.objects.filter(deployment_id=canary_id).count() == sum(a["version"] == 2 for a in answers)
    metrics = eng_api.get("/api/v1/endpoints/qc-staging/metrics/?window=1h").json()
    assert metrics["total"]["requests"] == 60
    assert metrics["total"]["accuracy"] == pytest.approx(45 / 60)
    by_deployment = {d["deployment_id"]: d for d in metrics["deployments"]}
    assert by_deployment[canary_id]["feedback"] + by_deployment[baseline.pk]["feedback"] == 60

    live_worker.wait_for(
        lambda: {"deployment.promoted", "deployment.superseded"} <= set(
            WebhookDelivery.objects.filter(status="succeeded").values_list("event", flat=True)),
        timeout=120, what="deployment webhooks")
