"""What the deployment backend runs for a deployment, rendered or applied
again (``manage.py serving_manifests``). Rendering changes nothing; applying
sends an existing deployment's objects to the backend again (e.g. to
recreate a serving Deployment a cluster lost) and audits it. Deploying a new
version and moving traffic stay with ``deployment_start`` and the rollout,
so that approvals and rollouts apply."""

from __future__ import annotations

import copy

from django.db import transaction

from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.registry.models import ModelVersion
from apps.serving.backends import get_backend
from apps.serving.choices import Strategy
from apps.serving.models import Deployment, Endpoint


def _with_overrides(deployment: Deployment, *, strategy: str | None, replicas: int | None) -> Deployment:
    """A copy of ``deployment`` (never saved) with the caller's overrides."""
    rendered = copy.copy(deployment)
    rendered.config = dict(deployment.config or {})
    if strategy:
        rendered.strategy = strategy
    if replicas is not None:
        rendered.config["replicas"] = replicas
    return rendered


def deployment_manifests_render(*, endpoint: Endpoint, model_version: ModelVersion, deployment: Deployment | None,
                                strategy: str | None = None, replicas: int | None = None,
                                backend: str | None = None, actor) -> list[dict]:
    """The manifests ``backend`` would apply for ``deployment`` (or, for a
    version never deployed there, for an unsaved immediate deployment),
    touching nothing. ``actor=None`` is an operator on the server."""
    if actor is not None:
        require_perm(actor, "serving.view_endpoint", endpoint)
    base = deployment or Deployment(endpoint=endpoint, model_version=model_version, strategy=Strategy.IMMEDIATE,
                                    config={})
    target = _with_overrides(base, strategy=strategy, replicas=replicas)
    return get_backend(backend).apply(target, dry_run=True)


def deployment_manifests_apply(*, deployment: Deployment, strategy: str | None = None, replicas: int | None = None,
                               backend: str | None = None, actor) -> list[dict]:
    """Apply an existing deployment's manifests through ``backend`` again and
    record ``deployment.manifests_applied``. ``actor=None`` is an operator on
    the server; a user needs the deploy right on the endpoint."""
    if actor is not None:
        require_perm(actor, "serving.deploy_endpoint", deployment.endpoint)
    chosen = get_backend(backend)
    manifests = chosen.apply(_with_overrides(deployment, strategy=strategy, replicas=replicas))
    with transaction.atomic():
        audit_record(actor=actor, action="deployment.manifests_applied", target=deployment,
                     after={"backend": chosen.name,
                            "objects": [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]},
                     message="Applied through manage.py serving_manifests.")
    return manifests


__all__ = ["deployment_manifests_apply", "deployment_manifests_render"]
