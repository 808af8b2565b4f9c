"""The Docker and Kubernetes files cannot run here; these checks keep them
consistent with the code: valid YAML, the right services, probes on the ops
endpoints, non-root containers, commands that name real modules."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def _k8s_documents():
    docs = []
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def test_compose_has_the_whole_stack():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(services)
    assert services["worker"]["command"][:4] == ["celery", "-A", "celery_app", "worker"]
    queues = services["worker"]["command"][services["worker"]["command"].index("--queues") + 1]
    assert set(queues.split(",")) == {"default", "training", "monitoring", "rollouts"}
    assert services["beat"]["command"][:4] == ["celery", "-A", "celery_app", "beat"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    env = services["web"]["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "mlops_site.settings.production"
    assert env["DATABASE_URL"].startswith("postgres://")


def test_k8s_manifests_are_valid_and_complete():
    docs = _k8s_documents()
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in docs}
    assert ("Deployment", "mlops-web") in kinds
    assert ("Service", "mlops-web") in kinds
    assert ("Deployment", "mlops-beat") in kinds
    assert ("Job", "mlops-migrate") in kinds
    worker_queues = set()
    for name, doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], name
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            for container in spec["containers"]:
                assert container["image"] == "tracseq/mlops:latest"
                refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
                assert refs == {"mlops-config", "mlops-secrets"}
        if doc["kind"] == "Deployment":
            selector = doc["spec"]["selector"]["matchLabels"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
            command = doc["spec"]["template"]["spec"]["containers"][0]["command"]
            if "worker" in command:
                worker_queues.add(command[command.index("--queues") + 1])
    assert worker_queues == {"default", "training", "monitoring", "rollouts"}
    web = next(doc for _, doc in docs if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "mlops-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    beat = next(doc for _, doc in docs if doc["metadata"]["name"] == "mlops-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_dockerfile_runs_as_non_root_with_gunicorn():
    text = (DOCKER / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert '"gunicorn", "mlops_site.wsgi"' in text
    assert "requirements/base.txt" in text
    assert "mlops_site.settings.production" in text


def test_rbac_lets_the_deploying_pods_do_exactly_what_the_kubernetes_backend_does():
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in _k8s_documents()}
    account = docs[("ServiceAccount", "mlops-deployer")]
    role = docs[("Role", "mlops-deployer")]
    binding = docs[("RoleBinding", "mlops-deployer")]
    assert account["apiVersion"] == "v1"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mlops-deployer"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mlops-deployer"}]
    granted = {(group, resource): set(rule["verbs"])
               for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]}
    # apps/serving/backends/kubernetes.py: read, create, patch (apply, scale down), delete (remove).
    assert granted == {("apps", "deployments"): {"get", "create", "patch", "delete"},
                       ("", "services"): {"get", "create", "patch", "delete"}}
    # The web pods and the rollouts workers call the backend; nothing else gets the account.
    users = {name for (kind, name), doc in docs.items() if kind == "Deployment"
             and doc["spec"]["template"]["spec"].get("serviceAccountName") == "mlops-deployer"}
    assert users == {"mlops-web", "mlops-worker-rollouts"}


def test_no_usable_secret_key_is_shipped_and_the_files_say_how_to_generate_one():
    import re

    secret = next(doc for _, doc in _k8s_documents() if doc["kind"] == "Secret")
    assert not secret["stringData"]["SECRET_KEY"]  # empty: production settings refuse to start
    for path in (DOCKER / "k8s" / "config.yaml", DOCKER / "compose.yaml"):
        assert "get_random_secret_key()" in path.read_text(), path
    assert "get_random_secret_key()" in (ROOT / "mlops_site" / "settings" / "production.py").read_text()
    # No literal key anywhere in the image recipe a deployment could copy.
    assert not re.search(r"SECRET_KEY=[\w-]{20,}", (DOCKER / "Dockerfile").read_text())
