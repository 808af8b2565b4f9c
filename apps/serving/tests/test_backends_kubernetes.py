"""The Kubernetes backend's real API calls, made by the official client
against a local HTTP server that speaks the few routes the backend uses and
records every request (there is no cluster here)."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import yaml
from django.test import override_settings
from kubernetes import client as k8s

from apps.serving.backends import DeploymentBackendError, get_backend
from apps.serving.backends.kubernetes import KubernetesBackend
from apps.serving.backends.manifests import KubernetesOptions

NAME = "mlops-sample-qc-sample-qc-v3"
DEPLOYMENTS = "/apis/apps/v1/namespaces/lab/deployments"
SERVICES = "/api/v1/namespaces/lab/services"
ROUTE = re.compile(r"^(?P<collection>/apis/apps/v1/namespaces/[^/]+/deployments|/api/v1/namespaces/[^/]+/services)"
                   r"(?:/(?P<name>[^/?]+))?(?:\?.*)?$")


def _merge(base: dict, patch: dict) -> dict:
    """Enough of a strategic merge for these tests: maps merge, lists replace."""
    merged = dict(base)
    for key, value in patch.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


class FakeKubernetesAPI:
    """Deployments and services in memory, behind the Kubernetes REST routes."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict] = {}
        self.requests: list[dict] = []
        self.fail: dict[str, tuple[int, str]] = {}  # method -> (status, message)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _status(self, code, reason, message):
                self._answer(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "reason": reason, "message": message, "code": code})

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                api.requests.append({"method": self.command, "path": self.path.split("?")[0],
                                     "query": self.path.partition("?")[2],
                                     "content_type": self.headers.get("Content-Type"),
                                     "authorization": self.headers.get("Authorization"), "body": body})
                match = ROUTE.match(self.path)
                if not match:
                    return self._status(404, "NotFound", f"no route {self.path}")
                if self.command in api.fail:
                    code, message = api.fail[self.command]
                    return self._status(code, "Forbidden" if code == 403 else "Invalid", message)
                collection, name = match["collection"], match["name"]
                key = (collection, name)
                if self.command == "POST" and name is None:
                    key = (collection, body["metadata"]["name"])
                    if key in api.objects:
                        return self._status(409, "AlreadyExists", "already exists")
                    api.objects[key] = body
                    return self._answer(201, body)
                if key not in api.objects:
                    return self._status(404, "NotFound", f'"{name}" not found')
                if self.command == "GET":
                    return self._answer(200, api.objects[key])
                if self.command == "PATCH":
                    api.objects[key] = _merge(api.objects[key], body)
                    return self._answer(200, api.objects[key])
                if self.command == "DELETE":
                    del api.objects[key]
                    return self._answer(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                return self._status(405, "MethodNotAllowed", self.command)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def calls(self):
        return [(r["method"], r["path"]) for r in self.requests]


@pytest.fixture
def fake_api():
    api = FakeKubernetesAPI()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def make_backend(fake_api) -> KubernetesBackend:
    return KubernetesBackend(options=KubernetesOptions(namespace="lab"),
                             configuration=k8s.Configuration(host=fake_api.host), request_timeout=5)


def deployment(*, id=1, version=3, version_id=17, config=None):
    return SimpleNamespace(
        id=id, strategy="canary", config=config or {},
        endpoint=SimpleNamespace(slug="sample-qc", environment="production"),
        model_version=SimpleNamespace(id=version_id, version=version,
                                      registered_model=SimpleNamespace(name="sample-qc")),
    )


def test_apply_creates_first_then_patches(fake_api):
    backend = make_backend(fake_api)
    applied = backend.apply(deployment(config={"replicas": 2}))
    assert fake_api.calls() == [
        ("GET", f"{DEPLOYMENTS}/{NAME}"), ("POST", DEPLOYMENTS),
        ("GET", f"{SERVICES}/{NAME}"), ("POST", SERVICES),
    ]
    assert fake_api.requests[1]["body"] == applied[0]
    assert fake_api.requests[3]["body"] == applied[1]
    assert "fieldManager=tracseq-mlops" in fake_api.requests[1]["query"]
    assert fake_api.objects[(DEPLOYMENTS, NAME)]["spec"]["replicas"] == 2

    fake_api.requests.clear()
    backend.apply(deployment(id=2, config={"replicas": 4}))
    assert fake_api.calls() == [
        ("GET", f"{DEPLOYMENTS}/{NAME}"), ("PATCH", f"{DEPLOYMENTS}/{NAME}"),
        ("GET", f"{SERVICES}/{NAME}"), ("PATCH", f"{SERVICES}/{NAME}"),
    ]
    patches = [r for r in fake_api.requests if r["method"] == "PATCH"]
    assert {r["content_type"] for r in patches} == {"application/strategic-merge-patch+json"}
    stored = fake_api.objects[(DEPLOYMENTS, NAME)]
    assert stored["spec"]["replicas"] == 4
    assert stored["metadata"]["labels"]["mlops/deployment"] == "2"


def test_scale_down_patches_replicas_to_zero(fake_api):
    backend = make_backend(fake_api)
    backend.apply(deployment())
    fake_api.requests.clear()
    sent = backend.scale_down(deployment())
    assert fake_api.calls() == [("PATCH", f"{DEPLOYMENTS}/{NAME}")]
    assert fake_api.requests[0]["body"]["spec"] == {"replicas": 0}
    assert fake_api.requests[0]["content_type"] == "application/strategic-merge-patch+json"
    assert sent == [fake_api.requests[0]["body"]]
    assert fake_api.objects[(DEPLOYMENTS, NAME)]["spec"]["replicas"] == 0
    # The pods are kept (template untouched): scaling back up is a rollback.
    assert fake_api.objects[(DEPLOYMENTS, NAME)]["spec"]["template"]["spec"]["containers"]
    assert (SERVICES, NAME) in fake_api.objects


def test_scale_down_of_a_missing_deployment_is_a_no_op(fake_api):
    assert make_backend(fake_api).scale_down(deployment()) == []
    assert fake_api.calls() == [("PATCH", f"{DEPLOYMENTS}/{NAME}")]


def test_remove_deletes_both_and_is_idempotent(fake_api):
    backend = make_backend(fake_api)
    backend.apply(deployment())
    fake_api.requests.clear()
    removed = backend.remove(deployment())
    assert [m["kind"] for m in removed] == ["Deployment", "Service"]
    assert fake_api.calls() == [("DELETE", f"{DEPLOYMENTS}/{NAME}"), ("DELETE", f"{SERVICES}/{NAME}")]
    assert "propagationPolicy=Foreground" in fake_api.requests[0]["query"]
    assert fake_api.objects == {}
    assert backend.remove(deployment()) == []


def test_versions_get_their_own_objects(fake_api):
    backend = make_backend(fake_api)
    backend.apply(deployment(version=3, version_id=17))
    backend.apply(deployment(version=4, version_id=18))
    backend.scale_down(deployment(version=3, version_id=17))
    replicas = {key[1]: obj["spec"]["replicas"] for key, obj in fake_api.objects.items() if key[0] == DEPLOYMENTS}
    assert replicas == {NAME: 0, "mlops-sample-qc-sample-qc-v4": 2}


def test_dry_run_sends_nothing(fake_api):
    backend = make_backend(fake_api)
    backend.apply(deployment(id=None), dry_run=True)
    backend.scale_down(deployment(), dry_run=True)
    backend.remove(deployment(), dry_run=True)
    assert fake_api.requests == []


def test_refusal_is_a_backend_error_with_the_clusters_message(fake_api):
    fake_api.fail["POST"] = (403, 'deployments.apps is forbidden: User "system:serviceaccount:lab:mlops" cannot '
                                  'create resource "deployments"')
    with pytest.raises(DeploymentBackendError) as caught:
        make_backend(fake_api).apply(deployment())
    error = caught.value
    assert error.status_code == 502
    assert "forbidden" in error.message and NAME in error.message
    assert error.details == {"kind": "Deployment", "name": NAME, "action": "create", "status": 403}
    assert fake_api.objects == {}


def test_unreachable_api_is_a_backend_error():
    api = FakeKubernetesAPI()  # bound but never served, then closed: connection refused
    host = api.host
    api.server.server_close()
    backend = KubernetesBackend(options=KubernetesOptions(namespace="lab"),
                                configuration=k8s.Configuration(host=host), request_timeout=2)
    backend.api_client.configuration.retries = 0
    with pytest.raises(DeploymentBackendError, match="Cannot reach the Kubernetes API"):
        backend.apply(deployment())


def test_settings_kubeconfig_is_used_outside_the_cluster(fake_api, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": fake_api.host}}],
        "users": [{"name": "deployer", "user": {"token": "t0ken-from-kubeconfig"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "deployer"}}],
    }))
    with override_settings(DEPLOYMENT_BACKEND="kubernetes", KUBERNETES_IN_CLUSTER=False,
                           KUBERNETES_KUBECONFIG=str(kubeconfig), KUBERNETES_CONTEXT="lab",
                           KUBERNETES_NAMESPACE="lab"):
        get_backend().apply(deployment())
    assert fake_api.calls()[1] == ("POST", DEPLOYMENTS)
    assert {r["authorization"] for r in fake_api.requests} == {"Bearer t0ken-from-kubeconfig"}


def test_in_cluster_config_outside_a_cluster_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with override_settings(DEPLOYMENT_BACKEND="kubernetes", KUBERNETES_IN_CLUSTER=True, KUBERNETES_NAMESPACE="lab"):
        backend = get_backend()
        assert backend.apply(deployment(), dry_run=True)  # a dry run needs no cluster
        with pytest.raises(DeploymentBackendError, match="Cannot configure the Kubernetes client"):
            backend.apply(deployment())
