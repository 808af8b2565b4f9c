"""Kubernetes manifests for one deployed model version, built as plain dicts.

One ``apps/v1 Deployment`` and one ``v1 Service`` per (endpoint, registered
model, version). Both are named ``mlops-<endpoint>-<model>-v<version>``
(a DNS-1035 label, at most 63 characters; a short hash keeps names unique
when they have to be shortened or sanitised). The pods run the platform's
own image with gunicorn, told by environment variables which endpoint and
version they serve. Nothing here talks to a cluster or reads Django settings:
``KubernetesOptions`` carries what the settings say.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from apps.core.errors import ValidationFailed

PART_OF = "tracseq-mlops"
COMPONENT = "serving"
CONTAINER_PORT = 8000
SERVICE_PORT = 80
# The image's non-root user (docker/Dockerfile).
RUN_AS = 10001
MAX_NAME = 63
MAX_LABEL_VALUE = 63
DEFAULT_REPLICAS = 2
# Requests size the scheduler's placement; no CPU limit on purpose: CFS
# throttling of a latency-sensitive server hurts p99 more than a noisy
# neighbour does. The memory limit stops a leaking worker from taking the node.
DEFAULT_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"memory": "1Gi"},
}
RESOURCE_KINDS = ("requests", "limits")
RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+]?\d+)?$")
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
_DNS_INVALID = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class KubernetesOptions:
    """Cluster-wide choices the operator makes in settings, not per deployment."""

    namespace: str = "default"
    image: str = "tracseq/mlops:latest"
    image_pull_policy: str = "IfNotPresent"
    service_account: str = ""
    config_map: str = "mlops-config"
    secret: str = "mlops-secrets"
    workers: int = 2
    threads: int = 4
    max_replicas: int = 20


@dataclass(frozen=True)
class ServingTarget:
    """What the backend needs to know about a deployment, read once from it."""

    endpoint_slug: str
    environment: str
    model_name: str
    model_version: int
    model_version_id: int | None
    deployment_id: int | None
    strategy: str | None = None
    config: dict = field(default_factory=dict)

    @classmethod
    def from_deployment(cls, deployment: Any) -> ServingTarget:
        version = deployment.model_version
        strategy = getattr(deployment, "strategy", None)
        return cls(
            endpoint_slug=str(deployment.endpoint.slug),
            environment=str(deployment.endpoint.environment),
            model_name=str(version.registered_model.name),
            model_version=int(version.version),
            model_version_id=version.id,
            deployment_id=deployment.id,
            strategy=str(strategy) if strategy else None,
            config=dict(deployment.config or {}),
        )


def _dns_part(text: str) -> str:
    return _DNS_INVALID.sub("-", text.lower()).strip("-")


def resource_name(target: ServingTarget) -> str:
    """``mlops-<endpoint>-<model>-v<version>`` as a valid DNS-1035 label.

    When the plain form would be invalid or too long, the endpoint and model
    parts are sanitised and shortened and an 8-character hash of the exact
    (endpoint, model, version) triple is inserted, so two different targets
    never share a name.
    """
    endpoint, model = _dns_part(target.endpoint_slug), _dns_part(target.model_name)
    suffix = f"-v{target.model_version}"
    plain = f"mlops-{endpoint}-{model}{suffix}"
    exact = (endpoint == target.endpoint_slug and model == target.model_name and "--" not in plain
             and len(plain) <= MAX_NAME)
    if exact:
        return plain
    digest = hashlib.sha256(
        f"{target.endpoint_slug}\0{target.model_name}\0{target.model_version}".encode()
    ).hexdigest()[:8]
    suffix = f"-{digest}{suffix}"
    base = re.sub(r"-{2,}", "-", f"mlops-{endpoint}-{model}")[: MAX_NAME - len(suffix)].rstrip("-")
    return f"{base}{suffix}"


def label_value(text: Any) -> str:
    """A Kubernetes label value: at most 63 characters of ``[A-Za-z0-9._-]``,
    starting and ending with an alphanumeric character."""
    value = _LABEL_INVALID.sub("-", str(text))[:MAX_LABEL_VALUE]
    return value.strip("._-")


def selector_labels(target: ServingTarget) -> dict[str, str]:
    """The labels a Deployment selects its pods by and the Service routes by.

    A Deployment's selector is immutable, so it holds only what never changes
    for a given name; ``instance`` is the (unique) resource name because
    sanitised endpoint or model labels could collide.
    """
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/instance": resource_name(target),
    }


def pod_labels(target: ServingTarget) -> dict[str, str]:
    """Selector labels plus the readable ones. The deployment id is left out
    on purpose: redeploying the same version must not restart its pods."""
    return {
        **selector_labels(target),
        "app.kubernetes.io/name": PART_OF,
        "mlops/endpoint": label_value(target.endpoint_slug),
        "mlops/model": label_value(target.model_name),
        "mlops/version": str(target.model_version),
    }


def object_labels(target: ServingTarget) -> dict[str, str]:
    labels = {**pod_labels(target), "app.kubernetes.io/managed-by": PART_OF}
    if target.deployment_id is not None:
        labels["mlops/deployment"] = str(target.deployment_id)
    return labels


def pod_annotations(target: ServingTarget) -> dict[str, str]:
    """Readable, unsanitised names; only what is fixed for the version, so a
    redeploy with another strategy does not restart the pods."""
    annotations = {
        "mlops/endpoint": target.endpoint_slug,
        "mlops/environment": target.environment,
        "mlops/model": target.model_name,
    }
    if target.model_version_id is not None:
        annotations["mlops/model-version-id"] = str(target.model_version_id)
    return annotations


def object_annotations(target: ServingTarget) -> dict[str, str]:
    annotations = pod_annotations(target)
    if target.strategy:
        annotations["mlops/strategy"] = target.strategy
    return annotations


def replicas_from(config: dict, options: KubernetesOptions) -> int:
    replicas = config.get("replicas", DEFAULT_REPLICAS)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ValidationFailed("replicas must be a whole number.", details={"field": "config.replicas"})
    if not 0 <= replicas <= options.max_replicas:
        raise ValidationFailed(f"replicas must be between 0 and {options.max_replicas}.",
                               details={"field": "config.replicas", "value": replicas})
    return replicas


def resources_from(config: dict) -> dict:
    """``config["resources"]`` merged over the defaults, key by key, and checked:
    only requests/limits of cpu, memory and ephemeral-storage, each a
    Kubernetes quantity, and no limit below its request."""
    given = config.get("resources") or {}
    if not isinstance(given, dict):
        raise ValidationFailed("resources must be an object with requests and limits.",
                               details={"field": "config.resources"})
    unknown = set(given) - set(RESOURCE_KINDS)
    if unknown:
        raise ValidationFailed(f"Unknown resources key {sorted(unknown)[0]!r}; use requests and limits.",
                               details={"field": "config.resources"})
    merged: dict[str, dict[str, str]] = {}
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in RESOURCE_KINDS:
        values = given.get(kind) or {}
        if not isinstance(values, dict):
            raise ValidationFailed(f"resources.{kind} must be an object.",
                                   details={"field": f"config.resources.{kind}"})
        merged[kind] = {**DEFAULT_RESOURCES.get(kind, {})}
        for resource, quantity in values.items():
            field_name = f"config.resources.{kind}.{resource}"
            if resource not in RESOURCE_NAMES:
                raise ValidationFailed(f"Unknown resource {resource!r}; use {', '.join(RESOURCE_NAMES)}.",
                                       details={"field": field_name})
            text = str(quantity) if isinstance(quantity, (str, int)) and not isinstance(quantity, bool) else None
            if text is None or not _QUANTITY.match(text):
                raise ValidationFailed(f"{field_name} is not a Kubernetes quantity (e.g. 500m, 1Gi).",
                                       details={"field": field_name, "value": quantity})
            merged[kind][resource] = text
        parsed[kind] = {resource: parse_quantity(value) for resource, value in merged[kind].items()}
    for resource, limit in parsed["limits"].items():
        request = parsed["requests"].get(resource)
        if request is not None and limit < request:
            raise ValidationFailed(f"The {resource} limit is below its request.",
                                   details={"field": f"config.resources.limits.{resource}"})
    return {kind: values for kind, values in merged.items() if values}


def _probe(path: str, *, period: int, timeout: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def serving_env(target: ServingTarget) -> list[dict]:
    """What tells the platform's image which endpoint and version it serves.
    ``env`` wins over ``envFrom``, so the settings module cannot be
    overridden by the shared ConfigMap."""
    env = [
        {"name": "DJANGO_SETTINGS_MODULE", "value": "mlops_site.settings.production"},
        # Every gunicorn thread predicts for one request at a time; OpenMP
        # fanning each small prediction out over all cores (scikit-learn's
        # gradient boosting does) oversubscribes the pod: on a busy 2-core
        # machine it made a single-row predict_proba about 10x slower.
        {"name": "OMP_NUM_THREADS", "value": "1"},
        {"name": "MLOPS_SERVING_ENDPOINT", "value": target.endpoint_slug},
        {"name": "MLOPS_SERVING_ENVIRONMENT", "value": target.environment},
        {"name": "MLOPS_SERVING_MODEL", "value": target.model_name},
        {"name": "MLOPS_SERVING_MODEL_VERSION", "value": str(target.model_version)},
    ]
    if target.model_version_id is not None:
        env.append({"name": "MLOPS_SERVING_MODEL_VERSION_ID", "value": str(target.model_version_id)})
    return env


def deployment_manifest(target: ServingTarget, options: KubernetesOptions) -> dict:
    """The ``apps/v1 Deployment`` running the platform's image in serving mode."""
    name = resource_name(target)
    command = [
        "gunicorn", "mlops_site.wsgi",
        "--bind", f"0.0.0.0:{CONTAINER_PORT}",
        "--workers", str(options.workers),
        "--threads", str(options.threads),
        # Shorter than terminationGracePeriodSeconds, so that the prediction
        # log buffer is flushed before the kubelet sends SIGKILL.
        "--graceful-timeout", "20",
        # No access log: the predict path logs every prediction itself, and a
        # line per request to stdout costs throughput.
    ]
    pod_spec: dict[str, Any] = {
        # The serving pods never call the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {
                "name": "serving",
                "image": options.image,
                "imagePullPolicy": options.image_pull_policy,
                "command": command,
                "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                "env": serving_env(target),
                "envFrom": [
                    {"configMapRef": {"name": options.config_map}},
                    {"secretRef": {"name": options.secret}},
                ],
                # Loading the model and compiling it to ONNX can take a while;
                # the startup probe keeps liveness from killing a pod doing so.
                "startupProbe": _probe("/healthz", period=2, timeout=3, failures=60),
                "readinessProbe": _probe("/readyz", period=5, timeout=3, failures=3),
                "livenessProbe": _probe("/healthz", period=20, timeout=5, failures=3),
                "resources": resources_from(target.config),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                # The only writable places: gunicorn's heartbeat files, the
                # Prometheus multiprocess directory and MLOPS_VAR_DIR.
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "prometheus", "mountPath": "/tmp/prometheus"},
                    {"name": "var", "mountPath": "/var/lib/mlops"},
                ],
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "prometheus", "emptyDir": {}},
            {"name": "var", "emptyDir": {}},
        ],
    }
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": object_labels(target),
            "annotations": object_annotations(target),
        },
        "spec": {
            "replicas": replicas_from(target.config, options),
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(target)},
            # Never fewer ready pods than asked for while a pod is replaced.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": pod_labels(target), "annotations": pod_annotations(target)},
                "spec": pod_spec,
            },
        },
    }


def service_manifest(target: ServingTarget, options: KubernetesOptions) -> dict:
    """The ``v1 Service`` in front of the version's pods (ClusterIP, port 80)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": resource_name(target),
            "namespace": options.namespace,
            "labels": object_labels(target),
            "annotations": object_annotations(target),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(target),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def scale_manifest(target: ServingTarget, options: KubernetesOptions, *, replicas: int = 0) -> dict:
    """The patch that scales the version's Deployment (to 0 after promotion)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": resource_name(target), "namespace": options.namespace},
        "spec": {"replicas": replicas},
    }


def reference_manifests(target: ServingTarget, options: KubernetesOptions) -> list[dict]:
    """The objects ``remove`` deletes, identified by kind and name."""
    name = resource_name(target)
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": options.namespace}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": options.namespace}},
    ]
