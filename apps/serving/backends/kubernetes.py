"""The Kubernetes backend: a Deployment and a Service per (endpoint, model
version), created or patched through the official ``kubernetes`` client.

Only a handful of API routes are used — read, create, patch and delete of
``deployments`` (apps/v1) and ``services`` (v1) in one namespace — which is
exactly what the Role in docker/k8s/rbac.yaml allows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from apps.core.errors import ValidationFailed
from apps.serving.backends import manifests
from apps.serving.backends.base import DeploymentBackend, DeploymentBackendError
from apps.serving.backends.manifests import KubernetesOptions, ServingTarget

logger = logging.getLogger(__name__)

# Written into every pod by Kubernetes: the namespace the platform runs in.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
FIELD_MANAGER = "tracseq-mlops"


def default_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def options_from_settings() -> KubernetesOptions:
    return KubernetesOptions(
        namespace=settings.KUBERNETES_NAMESPACE or default_namespace(),
        image=settings.KUBERNETES_IMAGE,
        image_pull_policy=settings.KUBERNETES_IMAGE_PULL_POLICY,
        service_account=settings.KUBERNETES_SERVICE_ACCOUNT,
        config_map=settings.KUBERNETES_CONFIG_MAP,
        secret=settings.KUBERNETES_SECRET,
        workers=settings.KUBERNETES_SERVING_WORKERS,
        threads=settings.KUBERNETES_SERVING_THREADS,
        max_replicas=settings.KUBERNETES_MAX_REPLICAS,
    )


def configuration_from_settings() -> k8s.Configuration:
    """In the cluster, the pod's service account; outside it, a kubeconfig."""
    configuration = k8s.Configuration()
    try:
        if settings.KUBERNETES_IN_CLUSTER:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(config_file=settings.KUBERNETES_KUBECONFIG or None,
                                        context=settings.KUBERNETES_CONTEXT or None,
                                        client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError) as exc:
        raise DeploymentBackendError(
            f"Cannot configure the Kubernetes client: {exc}",
            details={"in_cluster": settings.KUBERNETES_IN_CLUSTER},
        ) from exc
    return configuration


class KubernetesBackend(DeploymentBackend):
    """Runs each deployed version as its own Kubernetes Deployment + Service.

    ``configuration`` is built from settings on the first real API call (a dry
    run never needs it); tests pass one pointing at a local fake API server.
    """

    name = "kubernetes"

    def __init__(self, *, options: KubernetesOptions,
                 configuration: k8s.Configuration | Callable[[], k8s.Configuration] = configuration_from_settings,
                 request_timeout: float = 10.0):
        self.options = options
        self._configuration = configuration
        self._api_client: k8s.ApiClient | None = None
        self.request_timeout = request_timeout

    @classmethod
    def from_settings(cls) -> KubernetesBackend:
        return cls(options=options_from_settings(), request_timeout=settings.KUBERNETES_REQUEST_TIMEOUT)

    # --- the contract -----------------------------------------------------------

    def manifests(self, deployment: Any) -> list[dict]:
        """The Deployment and Service for ``deployment``, validated, untouched."""
        target = ServingTarget.from_deployment(deployment)
        return [manifests.deployment_manifest(target, self.options), manifests.service_manifest(target, self.options)]

    def apply(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        wanted = self.manifests(deployment)
        if dry_run:
            return wanted
        target = ServingTarget.from_deployment(deployment)
        if target.model_version_id is None:
            raise ValidationFailed("The model version has no id; save it before deploying.")
        deployment_body, service_body = wanted
        self._create_or_patch(deployment_body, read=self._apps.read_namespaced_deployment,
                              create=self._apps.create_namespaced_deployment,
                              patch=self._apps.patch_namespaced_deployment)
        self._create_or_patch(service_body, read=self._core.read_namespaced_service,
                              create=self._core.create_namespaced_service,
                              patch=self._core.patch_namespaced_service)
        return wanted

    def scale_down(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        target = ServingTarget.from_deployment(deployment)
        body = manifests.scale_manifest(target, self.options, replicas=0)
        if dry_run:
            return [body]
        name = body["metadata"]["name"]
        try:
            self._call(self._apps.patch_namespaced_deployment, body, name=name, namespace=self.options.namespace,
                       body=body, field_manager=FIELD_MANAGER, _content_type=STRATEGIC_MERGE)
        except ApiException as exc:
            if exc.status == 404:
                # Already removed: nothing serves the old version, which is
                # what scaling down wants.
                logger.info("Deployment %s/%s not found; nothing to scale down", self.options.namespace, name)
                return []
            raise self._error("scale down", body, exc) from exc
        return [body]

    def remove(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        target = ServingTarget.from_deployment(deployment)
        references = manifests.reference_manifests(target, self.options)
        if dry_run:
            return references
        removed = []
        for reference, delete in zip(references, (self._apps.delete_namespaced_deployment,
                                                  self._core.delete_namespaced_service), strict=True):
            name = reference["metadata"]["name"]
            try:
                # Foreground: the call returns once the pods are on their way
                # out, not while they still serve.
                self._call(delete, reference, name=name, namespace=self.options.namespace,
                           propagation_policy="Foreground")
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise self._error("delete", reference, exc) from exc
            removed.append(reference)
        return removed

    # --- API plumbing -------------------------------------------------------------

    @property
    def api_client(self) -> k8s.ApiClient:
        if self._api_client is None:
            configuration = self._configuration
            if callable(configuration):
                configuration = configuration()
            self._api_client = k8s.ApiClient(configuration)
        return self._api_client

    @property
    def _apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api_client)

    @property
    def _core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)

    def _call(self, method: Callable, manifest: dict, **kwargs) -> dict:
        """One API call; the raw JSON answer, because the typed models would
        reject fields a newer cluster adds. Connection failures become a
        ``DeploymentBackendError``; API errors stay ``ApiException`` for the
        caller to tell 404 from the rest."""
        try:
            response = method(_preload_content=False, _request_timeout=self.request_timeout, **kwargs)
        except ApiException:
            raise
        except Exception as exc:  # urllib3 connection, TLS and timeout errors
            raise DeploymentBackendError(
                f"Cannot reach the Kubernetes API: {type(exc).__name__}: {exc}"[:500],
                details={"kind": manifest["kind"], "name": manifest["metadata"]["name"]},
            ) from exc
        try:
            data = response.data
        finally:
            response.release_conn()
        return json.loads(data) if data else {}

    def _create_or_patch(self, body: dict, *, read: Callable, create: Callable, patch: Callable) -> dict:
        name, namespace = body["metadata"]["name"], self.options.namespace
        try:
            self._call(read, body, name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise self._error("read", body, exc) from exc
            try:
                return self._call(create, body, namespace=namespace, body=body, field_manager=FIELD_MANAGER)
            except ApiException as create_exc:
                raise self._error("create", body, create_exc) from create_exc
        try:
            # Strategic merge: lists such as containers merge by name, so a
            # sidecar someone injected is kept.
            return self._call(patch, body, name=name, namespace=namespace, body=body,
                              field_manager=FIELD_MANAGER, _content_type=STRATEGIC_MERGE)
        except ApiException as exc:
            raise self._error("patch", body, exc) from exc

    @staticmethod
    def _error(action: str, manifest: dict, exc: ApiException) -> DeploymentBackendError:
        message = exc.reason or "error"
        try:
            status = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            status = None
        if isinstance(status, dict) and status.get("message"):
            message = status["message"]
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        return DeploymentBackendError(
            f"Kubernetes refused to {action} {kind} {name}: {message}"[:500],
            details={"kind": kind, "name": name, "action": action, "status": exc.status},
        )
