"""Backend selection, the local backend, and the Kubernetes manifests as
rendered for a dry run (no cluster, no network)."""

import re
from types import SimpleNamespace

import pytest
import yaml
from django.test import override_settings

from apps.core.errors import ValidationFailed
from apps.serving.backends import DeploymentBackend, get_backend
from apps.serving.backends.kubernetes import KubernetesBackend
from apps.serving.backends.local import LocalBackend
from apps.serving.backends.manifests import KubernetesOptions, ServingTarget, resource_name

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def fake_deployment(*, id=None, slug="sample-qc", environment="production", model="sample-qc", version=3,
                    version_id=17, config=None, strategy="canary"):
    """Shaped like apps.serving.models.Deployment, as the backend contract reads it."""
    return SimpleNamespace(
        id=id,
        endpoint=SimpleNamespace(slug=slug, environment=environment),
        model_version=SimpleNamespace(id=version_id, version=version,
                                      registered_model=SimpleNamespace(name=model)),
        config=config if config is not None else {},
        strategy=strategy,
    )


def _unreachable():
    raise AssertionError("a dry run must not configure the Kubernetes client")


def k8s_backend(**options) -> KubernetesBackend:
    return KubernetesBackend(options=KubernetesOptions(**{"namespace": "lab", **options}), configuration=_unreachable)


def test_default_backend_is_local_and_touches_nothing():
    backend = get_backend()
    assert isinstance(backend, LocalBackend) and isinstance(backend, DeploymentBackend)
    deployment = fake_deployment(id=5)
    for method in (backend.apply, backend.scale_down, backend.remove):
        assert method(deployment) == []
        assert method(deployment, dry_run=True) == []


def test_backend_follows_settings_and_rejects_unknown_names():
    with override_settings(DEPLOYMENT_BACKEND="kubernetes", KUBERNETES_NAMESPACE="lab-serving",
                           KUBERNETES_IMAGE="registry.lab/mlops:1.4"):
        backend = get_backend()
        assert isinstance(backend, KubernetesBackend)
        deployment_manifest, service_manifest = backend.apply(fake_deployment(), dry_run=True)
    assert deployment_manifest["metadata"]["namespace"] == "lab-serving"
    assert service_manifest["metadata"]["namespace"] == "lab-serving"
    assert deployment_manifest["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.lab/mlops:1.4"
    with override_settings(DEPLOYMENT_BACKEND="nomad"), pytest.raises(ValidationFailed, match="nomad"):
        get_backend()


def test_dry_run_renders_a_deployment_and_service_for_an_unsaved_deployment():
    manifests = k8s_backend().apply(fake_deployment(id=None, config={"replicas": 3}), dry_run=True)
    assert [(m["apiVersion"], m["kind"]) for m in manifests] == [("apps/v1", "Deployment"), ("v1", "Service")]
    deployment, service = manifests
    # Round-trips through YAML as the management command prints it.
    assert list(yaml.safe_load_all(yaml.safe_dump_all(manifests))) == manifests

    name = deployment["metadata"]["name"]
    assert name == service["metadata"]["name"] == "mlops-sample-qc-sample-qc-v3"
    assert DNS_1035.match(name) and len(name) <= 63
    assert "mlops/deployment" not in deployment["metadata"]["labels"]

    spec = deployment["spec"]
    assert spec["replicas"] == 3
    selector = spec["selector"]["matchLabels"]
    template_labels = spec["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert service["spec"]["selector"] == selector
    for labels in (deployment["metadata"]["labels"], template_labels, service["metadata"]["labels"]):
        assert labels["app.kubernetes.io/part-of"] == "tracseq-mlops"
        assert labels["mlops/endpoint"] == "sample-qc"
        assert labels["mlops/model"] == "sample-qc"
        assert labels["mlops/version"] == "3"
        for key, value in labels.items():
            assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)

    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"][:2] == ["gunicorn", "mlops_site.wsgi"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {
        "DJANGO_SETTINGS_MODULE": "mlops_site.settings.production",
        "OMP_NUM_THREADS": "1",
        "MLOPS_SERVING_ENDPOINT": "sample-qc",
        "MLOPS_SERVING_ENVIRONMENT": "production",
        "MLOPS_SERVING_MODEL": "sample-qc",
        "MLOPS_SERVING_MODEL_VERSION": "3",
        "MLOPS_SERVING_MODEL_VERSION_ID": "17",
    }
    assert {next(iter(ref.values()))["name"] for ref in container["envFrom"]} == {"mlops-config", "mlops-secrets"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    mounted = {mount["name"] for mount in container["volumeMounts"]}
    assert mounted == {volume["name"] for volume in pod["volumes"]}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def test_saved_deployment_is_labelled_with_its_id_and_defaults_to_two_replicas():
    deployment, service = k8s_backend().apply(fake_deployment(id=42), dry_run=True)
    assert deployment["metadata"]["labels"]["mlops/deployment"] == "42"
    assert service["metadata"]["labels"]["mlops/deployment"] == "42"
    # Not on the pods: redeploying the same version must not restart them.
    assert "mlops/deployment" not in deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["annotations"]["mlops/strategy"] == "canary"


def test_resources_from_config_merge_over_the_defaults():
    config = {"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "3Gi", "cpu": 2}}}
    (deployment, _) = k8s_backend().apply(fake_deployment(config=config), dry_run=True)
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "3Gi", "cpu": "2"}}


def test_options_reach_the_manifest():
    backend = k8s_backend(image="registry.lab/mlops:2.0", image_pull_policy="Always", service_account="serving",
                          workers=3, threads=8, config_map="cfg", secret="sec")
    deployment, _ = backend.apply(fake_deployment(), dry_run=True)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.lab/mlops:2.0", "Always")
    assert pod["serviceAccountName"] == "serving"
    command = container["command"]
    assert command[command.index("--workers") + 1] == "3" and command[command.index("--threads") + 1] == "8"
    assert [next(iter(ref.values()))["name"] for ref in container["envFrom"]] == ["cfg", "sec"]


@pytest.mark.parametrize(("config", "field"), [
    ({"replicas": "3"}, "config.replicas"),
    ({"replicas": True}, "config.replicas"),
    ({"replicas": -1}, "config.replicas"),
    ({"replicas": 21}, "config.replicas"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "config.resources.requests.cpu"),
    ({"resources": {"requests": {"gpu": "1"}}}, "config.resources.requests.gpu"),
    ({"resources": {"limits": {"memory": "256Mi"}}}, "config.resources.limits.memory"),
    ({"resources": {"maximum": {}}}, "config.resources"),
    ({"resources": ["1Gi"]}, "config.resources"),
])
def test_invalid_config_is_a_validation_error_naming_the_field(config, field):
    with pytest.raises(ValidationFailed) as caught:
        k8s_backend().apply(fake_deployment(config=config), dry_run=True)
    assert caught.value.details["field"] == field


def test_zero_replicas_is_allowed():
    deployment, _ = k8s_backend().apply(fake_deployment(config={"replicas": 0}), dry_run=True)
    assert deployment["spec"]["replicas"] == 0


def _target(slug, model="sample-qc", version=1):
    return ServingTarget(endpoint_slug=slug, environment="staging", model_name=model, model_version=version,
                         model_version_id=1, deployment_id=None)


def test_long_or_odd_names_become_distinct_valid_dns_labels():
    long_a = "lab-submission-pipeline-turnaround-prediction-endpoint-for-the-north-site"
    long_b = long_a[:-1] + "x"
    names = {
        resource_name(_target(long_a, version=12)),
        resource_name(_target(long_b, version=12)),
        resource_name(_target(long_a, version=13)),
        resource_name(_target("QC_Endpoint")),
        resource_name(_target("qc-endpoint")),
        resource_name(_target("qc-endpoint", model="Sample_QC")),
    }
    assert len(names) == 6
    for name in names:
        assert DNS_1035.match(name) and len(name) <= 63, name
    assert resource_name(_target(long_a, version=12)).endswith("-v12")
    assert resource_name(_target("qc-endpoint")) == "mlops-qc-endpoint-sample-qc-v1"


def test_scale_down_and_remove_dry_runs_name_the_objects():
    backend = k8s_backend()
    deployment = fake_deployment(id=9)
    assert backend.scale_down(deployment, dry_run=True) == [{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mlops-sample-qc-sample-qc-v3", "namespace": "lab"},
        "spec": {"replicas": 0},
    }]
    assert [(m["kind"], m["metadata"]["name"]) for m in backend.remove(deployment, dry_run=True)] == [
        ("Deployment", "mlops-sample-qc-sample-qc-v3"), ("Service", "mlops-sample-qc-sample-qc-v3")]
