import pytest
from django.core.management import call_command
from django.db.utils import ConnectionHandler
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_malformed_json_is_a_400_with_the_error_shape(make_user, client_for):
    client = client_for(make_user("Viewer"))
    response = client.post("/api/v1/api-keys/", data="{not json", content_type="application/json")
    _assert_error_shape(response, 400, "malformed_request")


def test_wrong_type_is_a_400_naming_the_field(make_user, client_for):
    client = client_for(make_user("Viewer"))
    response = client.post("/api/v1/api-keys/", {"name": "x", "expires_at": "tomorrow-ish"}, format="json")
    error = _assert_error_shape(response, 400, "validation_failed")
    assert error["message"].startswith("expires_at:")
    assert "expires_at" in error["details"]["fields"]


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v1/", "/api/v2/datasets/", "/api/v1/api-keys/999999/"])
def test_unknown_api_routes_answer_json_404(make_user, client_for, path):
    response = client_for(make_user("Viewer")).get(path)
    if path == "/api/v1/":
        assert response.status_code in (404, 200)
        return
    _assert_error_shape(response, 404, "not_found")


def test_unknown_route_without_session_or_csrf_is_still_json(client):
    _assert_error_shape(client.post("/api/v1/nope/", data="{}", content_type="application/json"), 404, "not_found")


def test_missing_trailing_slash_gets_a_hint(make_user, client_for):
    error = _assert_error_shape(client_for(make_user("Viewer")).get("/api/v1/api-keys"), 404)
    assert "Did you mean /api/v1/api-keys/" in error["message"]


@override_settings(API_MAX_BODY_SIZE=1024)
def test_oversized_body_is_refused_before_it_is_read(make_user, client_for):
    client = client_for(make_user("Viewer"))
    response = client.post("/api/v1/api-keys/", {"name": "x" * 5000}, format="json")
    error = _assert_error_shape(response, 413, "payload_too_large")
    assert error["details"]["limit_bytes"] == 1024


def test_unauthenticated_api_is_a_json_401(client):
    _assert_error_shape(client.get("/api/v1/api-keys/"), 401, "not_authenticated")


def test_method_not_allowed_has_the_shape(make_user, client_for):
    _assert_error_shape(client_for(make_user("Viewer")).put("/api/v1/audit-events/"), 405, "method_not_allowed")


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_readyz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    unreachable = ConnectionHandler({
        "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "mlops", "USER": "postgres",
                    "HOST": "127.0.0.1", "PORT": "1", "OPTIONS": {"connect_timeout": 2}},
    })
    monkeypatch.setattr("apps.core.views.connections", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["error"]
    assert body["checks"]["broker"]["ok"] is True


def test_readyz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    from kombu import Connection

    from celery_app import app

    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_metrics_counts_requests_by_view(client):
    client.get("/healthz")
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'mlops_http_requests_total{method="GET",status="200",view="healthz"}' in body
    assert "mlops_http_request_duration_seconds_bucket" in body
    assert "mlops_celery_tasks" in body


@override_settings(METRICS_TOKEN="s3cret")
def test_metrics_can_require_a_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_request_id_is_echoed_and_generated(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(generated) == 32


def test_openapi_schema_is_valid():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_swagger_ui_is_served_from_local_static_files(make_user, client):
    client.force_login(make_user("Viewer"))
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert client.get("/api/schema/").status_code == 200
