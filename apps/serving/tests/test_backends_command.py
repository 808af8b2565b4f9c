"""``manage.py serving_manifests``: dry runs print YAML and change nothing;
a real run applies an existing deployment through the backend."""

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.core.models import AuditEvent
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion, RegisteredModel
from apps.serving.choices import DeploymentStatus, Environment, Strategy
from apps.serving.models import Deployment, Endpoint
from apps.serving.tests.test_backends_kubernetes import DEPLOYMENTS, SERVICES, FakeKubernetesAPI

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(make_user):
    return make_user("ML Engineer", username="deployer")


def make_version(owner, *, number=3, stage=Stage.PRODUCTION, name="sample-qc"):
    model, _ = RegisteredModel.objects.get_or_create(name=name, defaults={"owner": owner,
                                                                         "task_type": "classification"})
    return ModelVersion.objects.create(registered_model=model, version=number, artifact=f"models/{name}-{number}.skops",
                                       sha256="0" * 64, stage=stage, created_by=owner,
                                       signature={"inputs": [], "target": "qc_pass", "task": "classification"})


def make_endpoint(owner, *, slug="sample-qc", environment=Environment.PRODUCTION):
    return Endpoint.objects.create(slug=slug, name=slug, environment=environment, owner=owner)


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("serving_manifests", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dry_run_prints_the_kubernetes_manifests_of_a_version_never_deployed(owner):
    version = make_version(owner)
    make_endpoint(owner)
    audit_before = AuditEvent.objects.count()
    out, _ = run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--backend", "kubernetes",
                 "--strategy", "canary", "--replicas", "4", "--dry-run")
    deployment, service = yaml.safe_load_all(out)
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert deployment["metadata"]["name"] == "mlops-sample-qc-sample-qc-v3"
    assert deployment["spec"]["replicas"] == 4
    assert deployment["metadata"]["annotations"]["mlops/strategy"] == "canary"
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLOPS_SERVING_MODEL_VERSION_ID"] == str(version.id)
    assert env["MLOPS_SERVING_ENDPOINT"] == "sample-qc"
    assert "mlops/deployment" not in deployment["metadata"]["labels"]
    assert Deployment.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before


def test_dry_run_of_an_existing_deployment_uses_its_config_and_id(owner):
    version = make_version(owner)
    endpoint = make_endpoint(owner)
    existing = Deployment.objects.create(endpoint=endpoint, model_version=version, strategy=Strategy.BLUE_GREEN,
                                         status=DeploymentStatus.HEALTHY, created_by=owner,
                                         config={"replicas": 3, "resources": {"requests": {"cpu": "1"}}})
    with override_settings(DEPLOYMENT_BACKEND="kubernetes"):
        out, _ = run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--dry-run")
    deployment, _ = yaml.safe_load_all(out)
    assert deployment["metadata"]["labels"]["mlops/deployment"] == str(existing.id)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1"
    existing.refresh_from_db()
    assert existing.config == {"replicas": 3, "resources": {"requests": {"cpu": "1"}}}


def test_local_backend_has_nothing_to_print(owner):
    make_version(owner)
    make_endpoint(owner)
    out, err = run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--dry-run")
    assert out == ""
    assert "--backend kubernetes" in err


@pytest.mark.parametrize(("environment", "stage", "allowed"), [
    (Environment.PRODUCTION, Stage.STAGING, False),
    (Environment.PRODUCTION, Stage.NONE, False),
    (Environment.STAGING, Stage.ARCHIVED, False),
    (Environment.STAGING, Stage.STAGING, True),
    (Environment.STAGING, Stage.PRODUCTION, True),
])
def test_an_endpoint_only_gets_manifests_for_versions_its_environment_accepts(owner, environment, stage, allowed):
    make_version(owner, stage=stage)
    make_endpoint(owner, environment=environment)
    args = ("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--backend", "kubernetes",
            "--dry-run")
    if allowed:
        assert run(*args)[0].count("kind:") == 2
    else:
        with pytest.raises(CommandError, match="serves only"):
            run(*args)


def test_unknown_names_and_bad_replicas_are_command_errors(owner):
    make_version(owner)
    make_endpoint(owner)
    with pytest.raises(CommandError, match="No endpoint"):
        run("--endpoint", "nope", "--model", "sample-qc", "--version", "3", "--dry-run")
    with pytest.raises(CommandError, match="No version 9"):
        run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "9", "--dry-run")
    with pytest.raises(CommandError, match="replicas must be between"):
        run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--backend", "kubernetes",
            "--replicas", "-1", "--dry-run")


def test_applying_needs_an_existing_deployment(owner):
    make_version(owner)
    make_endpoint(owner)
    with pytest.raises(CommandError, match="not deployed"):
        run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3", "--backend", "kubernetes")


def test_applying_creates_the_objects_in_the_cluster_and_audits_it(owner, tmp_path):
    api = FakeKubernetesAPI()
    api.thread.start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": api.host}}],
            "users": [{"name": "ops", "user": {"token": "ops-token"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "ops"}}],
        }))
        version = make_version(owner)
        endpoint = make_endpoint(owner)
        existing = Deployment.objects.create(endpoint=endpoint, model_version=version, created_by=owner,
                                             status=DeploymentStatus.HEALTHY, config={"replicas": 2})
        with override_settings(DEPLOYMENT_BACKEND="kubernetes", KUBERNETES_IN_CLUSTER=False,
                               KUBERNETES_KUBECONFIG=str(kubeconfig), KUBERNETES_NAMESPACE="lab"):
            out, err = run("--endpoint", "sample-qc", "--model", "sample-qc", "--version", "3")
    finally:
        api.server.shutdown()
        api.server.server_close()
    assert [(r["method"], r["path"]) for r in api.requests if r["method"] != "GET"] == [
        ("POST", DEPLOYMENTS), ("POST", SERVICES)]
    assert api.objects[(DEPLOYMENTS, "mlops-sample-qc-sample-qc-v3")]["metadata"]["labels"]["mlops/deployment"] \
        == str(existing.id)
    assert "Applied 2 object(s)" in err
    assert len(list(yaml.safe_load_all(out))) == 2
    event = AuditEvent.objects.get(action="deployment.manifests_applied")
    assert event.object_id == str(existing.id)
    assert event.after["objects"] == ["Deployment/mlops-sample-qc-sample-qc-v3", "Service/mlops-sample-qc-sample-qc-v3"]


def test_the_apply_service_checks_the_deploy_right_and_names_its_actor(owner, make_user):
    from apps.core.errors import ApplicationError
    from apps.core.permissions import grant_on_create
    from apps.serving import services

    version = make_version(owner)
    endpoint = make_endpoint(owner)
    grant_on_create(endpoint, owner=owner)
    existing = Deployment.objects.create(endpoint=endpoint, model_version=version, created_by=owner,
                                         status=DeploymentStatus.HEALTHY, config={})
    with pytest.raises(ApplicationError):
        services.deployment_manifests_apply(deployment=existing, actor=make_user("Viewer", username="looker"))
    assert not AuditEvent.objects.filter(action="deployment.manifests_applied").exists()
    assert services.deployment_manifests_apply(deployment=existing, backend="local", actor=owner) == []
    assert AuditEvent.objects.get(action="deployment.manifests_applied").actor == owner
