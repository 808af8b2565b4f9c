"""The serving REST API: endpoints, deployments and their controls,
feedback and metrics."""

import json

import pytest

from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving.models import Deployment, Endpoint, Feedback
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(engineer):
    return (make_model_version(owner=engineer, stage=Stage.PRODUCTION),
            make_model_version(owner=engineer, stage=Stage.STAGING, seed=12))


def test_create_read_update_delete_an_endpoint(client_for, engineer, viewer):
    api = client_for(engineer)
    response = api.post("/api/v1/endpoints/", {"slug": "sample-qc", "environment": "production",
                                               "description": "QC pass/fail", "config": {"max_batch_size": 50}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["slug"], body["owner"]) == ("sample-qc", "engineer_t")
    assert body["config"] == {"max_batch_size": 50, "log_inputs": True, "unit_field": ""}
    assert body["predict_url"] == "/api/v1/endpoints/sample-qc/predict/"
    assert api.post("/api/v1/endpoints/", {"slug": "sample-qc"}).status_code == 409
    bad = api.post("/api/v1/endpoints/", {"slug": "Sample QC!"})
    assert bad.status_code == 400 and "slug" in bad.json()["error"]["message"]
    assert api.post("/api/v1/endpoints/", {"slug": "x", "config": {"max_batch_size": 0}}).status_code == 400

    assert client_for(viewer).get("/api/v1/endpoints/sample-qc/").status_code == 200
    assert client_for(viewer).post("/api/v1/endpoints/", {"slug": "mine"}).status_code == 403
    assert client_for(viewer).patch("/api/v1/endpoints/sample-qc/", {"name": "x"}).status_code == 403

    response = api.patch("/api/v1/endpoints/sample-qc/", {"name": "Sample QC", "config": {"log_inputs": False}})
    assert response.status_code == 200
    assert response.json()["config"] == {"max_batch_size": 50, "log_inputs": False, "unit_field": ""}
    assert response.json()["follow_mode"] == "auto" and response.json()["stale_versions"] == []
    assert api.patch("/api/v1/endpoints/sample-qc/", {"follow_mode": "never"}).status_code == 400
    followed = api.patch("/api/v1/endpoints/sample-qc/", {"follow_mode": "manual", "bake_minutes": 5})
    assert (followed.json()["follow_mode"], followed.json()["bake_minutes"]) == ("manual", 5)
    assert api.delete("/api/v1/endpoints/sample-qc/").status_code == 204
    assert not Endpoint.objects.exists()


def test_an_endpoint_that_serves_cannot_be_deleted(client_for, engineer, versions):
    endpoint = make_endpoint(owner=engineer)
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    response = client_for(engineer).delete("/api/v1/endpoints/sample-qc/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "endpoint_in_use"


def test_endpoint_list_query_count_does_not_grow_with_endpoints(client_for, engineer, versions,
                                                                django_assert_num_queries):
    api = client_for(engineer)
    for i in range(2):
        deploy(endpoint=make_endpoint(owner=engineer, slug=f"e{i}"), version=versions[0], actor=engineer)
    api.get("/api/v1/endpoints/")  # the user's permissions are cached on the user object after this
    with django_assert_num_queries(4):
        assert len(api.get("/api/v1/endpoints/").json()["results"]) == 2
    for i in range(2, 6):
        deploy(endpoint=make_endpoint(owner=engineer, slug=f"e{i}"), version=versions[0], actor=engineer)
    with django_assert_num_queries(4):
        body = api.get("/api/v1/endpoints/").json()
    assert len(body["results"]) == 6
    assert body["results"][0]["deployments"][0]["traffic_weight"] == 100


def test_deployment_list_query_count_is_pinned(client_for, engineer, versions, django_assert_num_queries):
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    for version in versions * 2:
        deploy(endpoint=endpoint, version=version, actor=engineer)
    api = client_for(engineer)
    api.get("/api/v1/deployments/")
    with django_assert_num_queries(3):
        assert api.get("/api/v1/deployments/").json()["count"] == 4
    # endpoint, its permission checks (admin role, user and group object
    # permissions), count, page: independent of the number of deployments.
    with django_assert_num_queries(7):
        assert api.get("/api/v1/endpoints/qc/deployments/").json()["count"] == 4


def test_start_a_canary_and_steer_it(client_for, engineer, viewer, versions):
    v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    api = client_for(engineer)
    response = api.post("/api/v1/endpoints/qc/deployments/",
                        {"model": "sample-qc", "version": v2.version, "strategy": "canary",
                         "config": {"steps": [10, 50, 100], "step_seconds": 600}})
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["status"], created["rollout_state"], created["version"]) == ("pending", "queued", 2)
    assert created["config"]["steps"] == [10, 50, 100] and created["config"]["min_requests"] == 50
    pk = created["id"]

    # Nothing but the health check may happen before it runs.
    assert api.post(f"/api/v1/deployments/{pk}/promote/").status_code == 409
    from apps.serving.tests.factories import tick_once

    tick_once(Deployment.objects.get(pk=pk))
    assert client_for(viewer).post(f"/api/v1/deployments/{pk}/pause/").status_code == 403
    paused = api.post(f"/api/v1/deployments/{pk}/pause/", {"reason": "lunch"})
    assert paused.status_code == 200 and paused.json()["rollout_state"] == "paused"
    assert api.post(f"/api/v1/deployments/{pk}/resume/").json()["rollout_state"] == "progressing"
    assert api.post(f"/api/v1/deployments/{pk}/rollback/", {}).status_code == 400  # a reason is required
    rolled = api.post(f"/api/v1/deployments/{pk}/rollback/", {"reason": "not today"}).json()
    assert (rolled["status"], rolled["traffic_weight"]) == ("rolled_back", 0)
    assert [e["kind"] for e in rolled["events"]] == ["created", "health_checked", "traffic_shifted", "paused",
                                                     "resumed", "rolled_back"]
    assert rolled["events"][-1]["actor"] == "engineer_t"

    detail = api.get(f"/api/v1/deployments/{pk}/").json()
    assert detail["serving_path"] == "onnx" and detail["health"]["ok"] is True


def test_deploy_refusals_through_the_api(client_for, engineer, versions):
    _v1, v2 = versions
    make_endpoint(owner=engineer)
    api = client_for(engineer)
    refused = api.post("/api/v1/endpoints/sample-qc/deployments/", {"model_version_id": v2.pk})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "version_not_allowed"
    missing = api.post("/api/v1/endpoints/sample-qc/deployments/", {"strategy": "canary"})
    assert missing.status_code == 400
    unknown = api.post("/api/v1/endpoints/sample-qc/deployments/", {"model": "nope", "version": 1})
    assert unknown.status_code == 404
    bad_config = api.post("/api/v1/endpoints/sample-qc/deployments/",
                          {"model": "sample-qc", "version": 1, "strategy": "canary", "config": {"steps": [5]}})
    assert bad_config.status_code == 400
    assert bad_config.json()["error"]["details"]["fields"] == {
        "config.steps": ["The last step must be 100 (the new version takes all traffic)."]}


def test_dry_run_returns_manifests_and_creates_nothing(client_for, engineer, versions):
    make_endpoint(owner=engineer)
    response = client_for(engineer).post("/api/v1/endpoints/sample-qc/deployments/?dry_run=true",
                                         {"model": "sample-qc", "version": 1, "strategy": "canary"})
    assert response.status_code == 200, response.content
    assert response.json() == {"manifests": []}  # the local backend runs nothing outside the web processes
    assert not Deployment.objects.exists()


def test_dry_run_with_the_kubernetes_backend_renders_its_manifests(client_for, engineer, versions, settings):
    settings.DEPLOYMENT_BACKEND = "kubernetes"
    make_endpoint(owner=engineer)
    response = client_for(engineer).post(
        "/api/v1/endpoints/sample-qc/deployments/?dry_run=true",
        {"model": "sample-qc", "version": 1, "strategy": "canary",
         "config": {"replicas": 3, "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}})
    assert response.status_code == 200, response.content
    manifests = response.json()["manifests"]
    assert {m["kind"] for m in manifests} == {"Deployment", "Service"}
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert not Deployment.objects.exists()


def test_feedback_joins_predictions_and_feeds_live_accuracy(client, client_for, engineer, versions, api_key_for):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    headers = api_key_for(engineer)
    answers = []
    for i in range(6):
        response = client.post("/api/v1/endpoints/sample-qc/predict/", content_type="application/json",
                               data=json.dumps({"instances": v1.input_example[:2], "unit_id": f"S-{i}"}), **headers)
        answers.append(response.json())
    api = client_for(engineer)
    feedback = [{"request_id": a["request_id"], "index": 0, "label": a["predictions"][0]} for a in answers[:4]]
    feedback += [{"request_id": answers[4]["request_id"], "index": 1, "label": 1 - answers[4]["predictions"][1]},
                 {"request_id": "never-answered", "label": 1}]
    response = api.post("/api/v1/endpoints/sample-qc/feedback/", {"feedback": feedback})
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 6, "joined": 5, "unknown": 1}
    row = Feedback.objects.get(request_id=answers[0]["request_id"])
    assert (row.deployment_id, row.correct, row.predicted) == (deployment.pk, True, answers[0]["predictions"][0])
    assert Feedback.objects.get(request_id=answers[4]["request_id"]).correct is False
    # Sending the same label again replaces it rather than duplicating it.
    assert api.post("/api/v1/endpoints/sample-qc/feedback/", {"feedback": feedback[:1]}).json()["joined"] == 1
    assert Feedback.objects.count() == 6

    bad = api.post("/api/v1/endpoints/sample-qc/feedback/", {"feedback": [{"request_id": "x", "label": [1]}]})
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"item": 0, "field": "label"}

    metrics = api.get("/api/v1/endpoints/sample-qc/metrics/?window=1h").json()
    assert metrics["total"]["requests"] == 6 and metrics["total"]["instances"] == 12
    assert metrics["total"]["errors"] == 0 and metrics["total"]["p95_ms"] > 0
    (mine,) = metrics["deployments"]
    assert (mine["deployment_id"], mine["requests"], mine["feedback"]) == (deployment.pk, 6, 5)
    assert mine["accuracy"] == pytest.approx(4 / 5)
    assert sum(metrics["series"]["rps"]) > 0
    assert api.get("/api/v1/endpoints/sample-qc/metrics/?window=ten").status_code == 400


def test_feedback_that_arrives_before_its_log_row_is_joined_later(client_for, engineer, versions):
    from apps.serving import services
    from apps.serving.runtime import runtime

    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    answer = services.predict(route=runtime.route("sample-qc"), payload={"instances": v1.input_example[:1]})
    pending = logbuffer.buffer._rows[:]
    logbuffer.buffer.clear()  # as if another process still held the log row
    result = services.feedback_record(endpoint=endpoint, items=[{"request_id": answer["request_id"], "label": 1}])
    assert result == {"received": 1, "joined": 0, "unknown": 1}
    for row in pending:
        logbuffer.buffer.append(row)
    logbuffer.flush()
    assert services.feedback_join_pending() == 1
    assert Feedback.objects.get().deployment_id is not None


def test_predict_and_feedback_need_the_predict_right(client_for, viewer, engineer, versions):
    make_endpoint(owner=engineer)
    response = client_for(viewer).post("/api/v1/endpoints/sample-qc/feedback/",
                                       {"feedback": [{"request_id": "r", "label": 1}]})
    assert response.status_code == 403
