"""The registry API: shapes, error bodies, uploads, the approval flow by
HTTP, and pinned query counts of the list endpoints."""

import io
import json
import pickle

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core import modelio
from apps.core.models import AuditEvent
from apps.core.webhooks import services as webhook_services
from apps.registry import services
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def sci(people, client_for):
    return client_for(people.scientist)


@pytest.fixture
def qa(people, client_for):
    return client_for(people.qa)


def create_model(client, name="sample-qc", **extra):
    body = {"name": name, "task_type": "classification", "description": "Library-prep QC",
            "quality_gates": {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.7}]},
            "tags": {"team": "qc"}, **extra}
    return client.post("/api/v1/models/", body, format="json")


def test_create_list_and_get_models(sci, people):
    response = create_model(sci)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "sample-qc" and body["owner"] == "sci" and body["latest_version"] == 0
    assert body["quality_gates"]["metrics"] == [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.7}]
    assert body["production_version"] is None and body["aliases"] == {}
    assert create_model(sci).json()["error"]["code"] == "duplicate_name"
    bad = create_model(sci, name="other", quality_gates={"metrics": [{"metric": "f1", "op": "!="}]})
    assert bad.status_code == 400 and "op must be one of" in bad.json()["error"]["message"]
    assert sci.get("/api/v1/models/").json()["results"][0]["name"] == "sample-qc"
    assert sci.get("/api/v1/models/sample-qc/").json()["tags"] == {"team": "qc"}
    assert sci.get("/api/v1/models/missing/").status_code == 404
    patched = sci.patch("/api/v1/models/sample-qc/", {"description": "QC pass/fail"}, format="json")
    assert patched.status_code == 200 and patched.json()["description"] == "QC pass/fail"


def test_register_request_approve_and_rollback_by_api(sci, qa, people, client_for, make_run):
    create_model(sci)
    first = sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run().pk}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["version"] == 1 and first.json()["download_url"].endswith("/versions/1/download/")
    second = sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run(C=0.5).pk, "description": "C=0.5"},
                      format="json").json()
    assert second["version"] == 2 and second["description"] == "C=0.5"

    url = "/api/v1/models/sample-qc/versions/1/promotion-requests/"
    created = sci.post(url, {"stage": "production", "justification": "first model"}, format="json")
    assert created.status_code == 201, created.content
    req = created.json()
    assert req["status"] == "pending" and req["gates_passed"] is True and req["requested_by"] == "sci"
    assert {g["gate"] for g in req["gate_results"]} == {"metric_threshold", "valid_signature", "valid_dataset"}
    assert [r["id"] for r in sci.get(url).json()] == [req["id"]]

    own = sci.post(f"/api/v1/promotion-requests/{req['id']}/approve/", {"comment": "mine"}, format="json")
    assert own.status_code == 403  # a Data Scientist lacks approve rights anyway
    no_comment = qa.post(f"/api/v1/promotion-requests/{req['id']}/approve/", {}, format="json")
    assert no_comment.status_code == 400 and no_comment.json()["error"]["code"] == "validation_failed"
    approved = qa.post(f"/api/v1/promotion-requests/{req['id']}/approve/", {"comment": "fine"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == "qa"
    again = qa.post(f"/api/v1/promotion-requests/{req['id']}/approve/", {"comment": "fine"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"

    req2 = sci.post("/api/v1/models/sample-qc/versions/2/promotion-requests/",
                    {"stage": "production", "justification": "better"}, format="json").json()
    pending = qa.get("/api/v1/promotion-requests/?status=pending").json()
    assert [r["id"] for r in pending["results"]] == [req2["id"]]
    assert qa.post(f"/api/v1/promotion-requests/{req2['id']}/approve/", {"comment": "go"},
                   format="json").status_code == 200
    model = sci.get("/api/v1/models/sample-qc/").json()
    assert model["production_version"] == 2 and model["aliases"] == {"champion": 2}

    engineer = client_for(people.engineer)
    assert engineer.post("/api/v1/models/sample-qc/rollback/", {}, format="json").status_code == 400
    rolled = engineer.post("/api/v1/models/sample-qc/rollback/", {"reason": "drift on FFPE"}, format="json")
    assert rolled.status_code == 200 and rolled.json()["version"] == 1 and rolled.json()["stage"] == "production"
    rolled_from = sci.get("/api/v1/models/sample-qc/versions/2/").json()
    assert rolled_from["stage"] == "archived"
    assert rolled_from["rolled_back_by"] == people.engineer.username and rolled_from["rolled_back_at"]
    assert sci.get("/api/v1/models/sample-qc/versions/1/").json()["rolled_back_at"] is None


def test_bad_stage_and_missing_run_are_clear_400_and_404(sci, make_run):
    create_model(sci)
    assert sci.post("/api/v1/models/sample-qc/versions/", {"run_id": 999999}, format="json").status_code == 404
    assert sci.post("/api/v1/models/sample-qc/versions/", {}, format="json").status_code == 400
    sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run().pk}, format="json")
    response = sci.post("/api/v1/models/sample-qc/versions/1/transition-requests/",
                        {"stage": "archived", "justification": "x"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_failed"
    unfinished = sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run(status="failed").pk},
                          format="json")
    assert unfinished.status_code == 409 and "only finished runs" in unfinished.json()["error"]["message"]


def test_upload_skops_and_refuse_pickle(sci, data):
    create_model(sci)
    model = factories.fit_pipeline(data.frame)
    signature = json.dumps(factories.signature_for())
    response = sci.post("/api/v1/models/sample-qc/versions/", {
        "file": SimpleUploadedFile("model.skops", modelio.dumps(model)), "signature": signature,
        "input_example": '[{"concentration_ng_ul": 20, "a260_280": 1.8, "din": 7, "freeze_thaw_cycles": 1}]',
        "dataset_version_id": str(data.version.pk),
    }, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source_run"] is None and body["dataset_version"] == data.version.pk
    assert body["signature"]["target"] == "qc_pass" and len(body["input_example"]) == 1

    refused = sci.post("/api/v1/models/sample-qc/versions/", {
        "file": SimpleUploadedFile("model.pkl", pickle.dumps(model)), "signature": signature,
    }, format="multipart")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_model_file" and "pickle" in error["message"]
    assert error["details"]["detected_format"] == "pickle"
    not_json = sci.post("/api/v1/models/sample-qc/versions/", {
        "file": SimpleUploadedFile("model.skops", modelio.dumps(model)), "signature": "{not json"},
        format="multipart")
    assert not_json.status_code == 400 and not_json.json()["error"]["message"].startswith("signature")

    download = sci.get("/api/v1/models/sample-qc/versions/1/download/")
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    assert modelio.sha256_bytes(content) == body["sha256"] == download["X-Content-SHA256"]
    assert download["Content-Disposition"].startswith("attachment")
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert modelio.loads(content, expected_sha256=body["sha256"]).predict(
        data.frame[factories.FEATURES][:1]).shape == (1,)


def test_aliases_by_api(sci, make_run):
    create_model(sci)
    for C in (1.0, 0.5):
        sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run(C=C).pk}, format="json")
    url = "/api/v1/models/sample-qc/aliases/challenger/"
    assert sci.get(url).status_code == 404
    assert sci.put(url, {"version": 1}, format="json").json()["version"] == 1
    moved = sci.put(url, {"version": 2}, format="json").json()
    assert moved["version"] == 2 and moved["alias"] == "challenger"
    assert sci.get(url).json()["version"] == 2
    assert sci.get("/api/v1/models/sample-qc/versions/2/").json()["aliases"] == ["challenger"]
    assert sci.put(url, {"version": 7}, format="json").status_code == 404
    assert sci.delete(url).status_code == 204
    assert sci.get(url).status_code == 404


def test_lineage_runs_from_dataset_to_deployments(sci, make_run, data):
    run = make_run()
    create_model(sci)
    sci.post("/api/v1/models/sample-qc/versions/", {"run_id": run.pk}, format="json")
    lineage = sci.get("/api/v1/models/sample-qc/versions/1/lineage/").json()
    assert lineage["dataset_version"]["id"] == data.version.pk
    assert lineage["dataset_version"]["dataset"] == "submissions" and lineage["dataset_version"]["status"] == "valid"
    assert lineage["run"]["id"] == run.pk and lineage["run"]["experiment"] == "sample-qc"
    assert lineage["model_version"]["version"] == 1
    from apps.core import lineage as lineage_links

    assert lineage["deployments_available"] is (lineage_links.link(ModelVersion, "deployments") is not None)
    assert lineage["deployments"] == []
    assert lineage["hidden"] == {"dataset_version": False, "run": False, "deployments": 0}


def test_lineage_lists_deployments_of_the_serving_app(sci, people, make_run):
    from django.apps import apps

    if not apps.is_installed("apps.serving"):
        pytest.skip("the serving app is not installed")
    Endpoint = apps.get_model("serving", "Endpoint")
    Deployment = apps.get_model("serving", "Deployment")
    create_model(sci)
    sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run().pk}, format="json")
    version = ModelVersion.objects.get(registered_model__name="sample-qc", version=1)
    from apps.core.permissions import grant_on_create, make_private

    endpoint = Endpoint.objects.create(slug="qc-staging", name="QC staging", owner=people.engineer)
    grant_on_create(endpoint, owner=people.engineer)
    Deployment.objects.create(endpoint=endpoint, model_version=version, created_by=people.engineer,
                              traffic_weight=100, status="healthy")
    lineage = sci.get("/api/v1/models/sample-qc/versions/1/lineage/").json()
    assert lineage["deployments_available"] is True
    (deployment,) = lineage["deployments"]
    assert deployment["endpoint"] == "qc-staging" and deployment["status"] == "healthy"
    assert deployment["traffic_weight"] == 100
    make_private(endpoint)  # the engineer's own endpoint: the scientist now only learns that it exists
    lineage = sci.get("/api/v1/models/sample-qc/versions/1/lineage/").json()
    assert lineage["deployments"] == [] and lineage["hidden"]["deployments"] == 1
    assert "qc-staging" not in str(lineage)


def test_errors_use_the_documented_shape(sci):
    response = sci.post("/api/v1/models/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "details"}


def _seed_many(people, data, count):
    for index in range(count):
        model = factories.make_model(people.scientist, name=f"model-{index}")
        run = factories.make_run(people.scientist, dataset_version=data.version, frame=data.frame,
                                 experiment_name=f"exp-{index}", metrics={"test_roc_auc": 0.9})
        version = services.model_version_register(registered_model=model, run=run, actor=people.scientist)
        services.model_alias_set(registered_model=model, alias="challenger", version_number=1, actor=people.scientist)
        services.promotion_request_create(version=version, actor=people.scientist, target_stage="staging",
                                          justification="try it")


@pytest.mark.parametrize("count", [2, 5])
def test_list_endpoints_have_pinned_query_counts(people, data, client_for, django_assert_num_queries, count):
    _seed_many(people, data, count)
    from apps.core.models import User

    def client():
        # A fresh user object per request, as in production: no permission cache carried over.
        return client_for(User.objects.get(pk=people.qa.pk))

    for url in ("/api/v1/models/", "/api/v1/models/model-0/versions/", "/api/v1/transition-requests/"):
        client().get(url)  # per-process caches (content types) warm up once
    # Each list: the Admin check, the user's and groups' permissions, the
    # object-permission scope, count, page and prefetches — whatever the size.
    api = client()
    with django_assert_num_queries(6):
        body = api.get("/api/v1/models/").json()
    assert body["count"] == count and all(m["aliases"] == {"challenger": 1} for m in body["results"])
    api = client()
    with django_assert_num_queries(8):  # + finding the model by name
        assert api.get("/api/v1/models/model-0/versions/").json()["count"] == 1
    api = client()
    with django_assert_num_queries(5):  # no prefetch: everything comes with select_related
        assert api.get("/api/v1/transition-requests/?status=pending").json()["count"] == count


def test_webhook_api(people, client_for, make_run):
    admin = client_for(people.admin)
    factories.make_model(people.scientist, name="sample-qc")
    created = admin.post("/api/v1/webhooks/", {"name": "lims", "url": "http://127.0.0.1:9/hook",
                                               "registered_model": "sample-qc",
                                               "events": ["registry.promotion_request.approved"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert len(body["secret"]) >= 32 and body["registered_model"] == "sample-qc"
    assert "secret" not in admin.get(f"/api/v1/webhooks/{body['id']}/").json()
    assert admin.post("/api/v1/webhooks/", {"name": "x", "url": "file:///etc/passwd"},
                      format="json").status_code == 400
    assert client_for(people.scientist).post("/api/v1/webhooks/", {"name": "x", "url": "http://127.0.0.1:9/"},
                                             format="json").status_code == 403
    assert client_for(people.scientist).get("/api/v1/webhooks/").json()["count"] == 0
    assert client_for(people.engineer).get("/api/v1/webhooks/").json()["count"] == 1
    test = admin.post(f"/api/v1/webhooks/{body['id']}/test/")
    assert test.status_code == 202 and test.json()["event"] == "webhook.test"
    deliveries = admin.get(f"/api/v1/webhooks/{body['id']}/deliveries/").json()
    assert deliveries["count"] == 1 and deliveries["results"][0]["status"] == "pending"
    assert admin.get(f"/api/v1/webhooks/{body['id']}/deliveries/?status=failed").json()["count"] == 0
    patched = admin.patch(f"/api/v1/webhooks/{body['id']}/", {"is_active": False}, format="json")
    assert patched.json()["is_active"] is False
    assert admin.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert AuditEvent.objects.filter(action__startswith="webhook.").count() == 4


def test_version_stage_filter(sci, qa, make_run):
    create_model(sci)
    sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run().pk}, format="json")
    sci.post("/api/v1/models/sample-qc/versions/", {"run_id": make_run(C=0.5).pk}, format="json")
    req = sci.post("/api/v1/models/sample-qc/versions/1/transition-requests/",
                   {"stage": "production", "justification": "x"}, format="json").json()
    qa.post(f"/api/v1/transition-requests/{req['id']}/approve/", {"comment": "ok"}, format="json")
    body = sci.get(f"/api/v1/models/sample-qc/versions/?stage={Stage.PRODUCTION}").json()
    assert [v["version"] for v in body["results"]] == [1]


def test_upload_size_limit_is_the_model_limit(sci, settings):
    settings.MODEL_MAX_UPLOAD_SIZE = 1000
    create_model(sci)
    response = sci.post("/api/v1/models/sample-qc/versions/", {
        "file": SimpleUploadedFile("model.skops", io.BytesIO(b"x" * 5000).read()), "signature": "{}"},
        format="multipart")
    assert response.status_code == 413


@pytest.mark.parametrize("count", [2, 6])
def test_webhook_lists_have_pinned_query_counts(people, client_for, django_assert_num_queries, count):
    from apps.core.models import User, WebhookAttempt

    hook = webhook_services.webhook_subscription_create(actor=people.admin, name="lims", url="http://127.0.0.1:9/h")
    for index in range(count):
        delivery = webhook_services.webhook_send_test(subscription=hook, actor=people.admin)
        WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500 + index, response_time_ms=3.0)
    api = client_for(User.objects.get(pk=people.engineer.pk))
    api.get("/api/v1/webhooks/")  # warm the content-type cache
    api = client_for(User.objects.get(pk=people.engineer.pk))
    # Rights (Admin checks, role permissions), the subscription, count, page, attempts, and
    # whether response bodies may be shown (once per page).
    with django_assert_num_queries(9):
        body = api.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").json()
    assert body["count"] == count and all(len(d["attempts"]) == 1 for d in body["results"])


def test_webhook_response_bodies_are_shown_to_admins_only(people, client_for):
    from apps.core.models import WebhookAttempt

    hook = webhook_services.webhook_subscription_create(actor=people.admin, name="lims", url="http://127.0.0.1:9/h")
    delivery = webhook_services.webhook_send_test(subscription=hook, actor=people.admin)
    WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500,
                                  response_excerpt="internal-body-7f3a9c")
    url = f"/api/v1/webhooks/{hook.pk}/deliveries/"
    for user in (people.engineer, people.qa):
        response = client_for(user).get(url)
        assert response.status_code == 200
        (attempt,) = response.json()["results"][0]["attempts"]
        assert attempt["status_code"] == 500
        assert "internal-body-7f3a9c" not in response.content.decode()
    (attempt,) = client_for(people.admin).get(url).json()["results"][0]["attempts"]
    assert attempt["response_excerpt"] == "internal-body-7f3a9c"
