"""What every deployment backend offers, and the one error it raises.

A backend turns a platform ``Deployment`` (one model version behind one
endpoint) into whatever must run outside the web processes for it. The
serving app calls it from its services; it never moves traffic itself — the
router does that — and it never writes to the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from apps.core.errors import ApplicationError


class DeploymentBackendError(ApplicationError):
    """The infrastructure refused or failed a change (cluster unreachable,
    RBAC forbids it, the API rejected a manifest). Not the caller's fault, so
    a 502; ``details`` names the object and the cluster's answer."""

    status_code = 502
    code = "deployment_backend_error"


class DeploymentBackend(ABC):
    """Creates, scales down and removes what serves one deployment.

    Every method takes the deployment (a ``apps.serving.models.Deployment`` or
    any object with the same attributes: ``id`` (may be ``None``),
    ``endpoint.slug``, ``endpoint.environment``, ``model_version.id``,
    ``model_version.version``, ``model_version.registered_model.name``,
    ``config``) and returns the manifests it applied — or, with
    ``dry_run=True``, would apply — as plain dicts. A dry run touches nothing
    and works on an unsaved deployment.
    """

    name: str = ""

    @abstractmethod
    def apply(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        """Create or update what serves the deployment's version."""

    @abstractmethod
    def scale_down(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        """Stop serving the version (after another one was promoted) but keep
        it ready to scale back up for a rollback."""

    @abstractmethod
    def remove(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        """Delete what serves the version."""
