"""Deployment backends: what runs a deployed model version outside the web
processes, chosen by ``settings.DEPLOYMENT_BACKEND``.

    from apps.serving.backends import get_backend
    manifests = get_backend().apply(deployment, dry_run=True)

``local`` (default) does nothing — the platform's web processes serve.
``kubernetes`` creates or patches a Deployment and a Service per (endpoint,
model version) through the official client; see docs/kubernetes.md.
"""

from __future__ import annotations

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.serving.backends.base import DeploymentBackend, DeploymentBackendError

__all__ = ["BACKENDS", "DeploymentBackend", "DeploymentBackendError", "get_backend"]

BACKENDS = ("local", "kubernetes")


def get_backend(name: str | None = None) -> DeploymentBackend:
    """The backend named ``name``, by default ``settings.DEPLOYMENT_BACKEND``.

    Built on each call (cheap: the Kubernetes client is only configured on the
    first real API call), so a settings change takes effect at once.
    """
    name = name or getattr(settings, "DEPLOYMENT_BACKEND", "local") or "local"
    if name == "local":
        from apps.serving.backends.local import LocalBackend

        return LocalBackend()
    if name == "kubernetes":
        from apps.serving.backends.kubernetes import KubernetesBackend

        return KubernetesBackend.from_settings()
    raise ValidationFailed(f"Unknown deployment backend {name!r}; expected one of {', '.join(BACKENDS)}.",
                           details={"backend": name})
