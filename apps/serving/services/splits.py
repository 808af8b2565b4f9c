"""Steady traffic splits: N live deployments of one endpoint at fixed weights.

A rollout's split is transient (its state machine moves the weights and, at
the end, supersedes everything else); an A/B test needs the opposite: arms
that keep their weights for weeks, and a routing salt of their own so that
consecutive tests assign units independently (with the endpoint slug as
salt, the same units would land in the same arm in every test). The split is
a row (``TrafficSplit``), so it holds across processes and restarts: every
web process reads it with its routing table (``apps.serving.runtime``).

While a split is held, rollouts, rollbacks and promotions on its endpoint are
refused with a 409 naming the holder (:func:`endpoint_split_guard`, called
by the rollout entry points); ending the split gives all traffic back to one
arm (the control, unless told otherwise) and supersedes the others.

Governance: on a production endpoint the control must be in Production; a
challenger outside Production needs ``approved_by`` (the caller, e.g. the A/B
test app, has checked that approval and its four eyes) and the challengers
together get at most ``SERVING_MAX_CHALLENGER_SHARE`` (default 0.5) of the
traffic. Serving knows nothing about A/B tests: the holder is a label.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from apps.serving.choices import DeploymentStatus, Environment, RolloutState, Strategy
from apps.serving.models import Deployment, Endpoint, RolloutEvent, TrafficSplit
from apps.serving.router import WeightedRouter
from apps.serving.runtime import bump_routing_stamp

logger = logging.getLogger(__name__)

MIN_ARMS, MAX_ARMS = 2, 6
LIVE_STATUSES = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)


def split_router(split: TrafficSplit) -> WeightedRouter:
    """The router a web process builds for ``split`` (arms in order, the split's salt)."""
    return WeightedRouter(split.weights, salt=split.salt)


def split_arm_for(*, split: TrafficSplit, unit_id: str | None) -> int:
    """The arm (index) that answers ``unit_id`` while ``split`` is held."""
    deployment_id = split_router(split).choose(unit_id)
    return next(arm for arm, (d, _) in enumerate(split.weights) if d == deployment_id)


def endpoint_split_held(*, endpoint_id: int) -> TrafficSplit | None:
    return TrafficSplit.objects.filter(endpoint_id=endpoint_id, ended_at__isnull=True).first()


def endpoint_split_guard(*, endpoint_id: int) -> None:
    """Refuse (409) a change of the endpoint's traffic while a split holds it."""
    split = endpoint_split_held(endpoint_id=endpoint_id)
    if split is not None:
        raise Conflict(
            f"The endpoint's traffic is held by {split.owner_label} (split {split.pk}); stop it before you "
            "roll out, roll back or promote on this endpoint.", code="split_held",
            details={"split_id": split.pk, "held_by": split.owner_label})


def _max_challenger_share() -> float:
    return float(getattr(settings, "SERVING_MAX_CHALLENGER_SHARE", 0.5))


def _clean_arms(arms) -> list[tuple[ModelVersion, float]]:
    if not isinstance(arms, Sequence) or not MIN_ARMS <= len(arms) <= MAX_ARMS:
        raise ValidationFailed(f"A split has {MIN_ARMS} to {MAX_ARMS} arms.", details={"field": "arms"})
    cleaned = []
    for i, arm in enumerate(arms):
        version, weight = arm
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValidationFailed(f"arms[{i}]: the weight must be a number above 0.",
                                   details={"field": f"arms[{i}].weight"})
        cleaned.append((version, float(weight)))
    if len({version.pk for version, _ in cleaned}) != len(cleaned):
        raise ValidationFailed("Each arm must serve a different model version.", details={"field": "arms"})
    total = sum(weight for _, weight in cleaned)
    return [(version, round(100.0 * weight / total, 6)) for version, weight in cleaned]


def _check_governance(endpoint: Endpoint, arms: list[tuple[ModelVersion, float]], approved_by) -> None:
    from apps.serving.services.deployments import check_version_allowed

    control, _ = arms[0]
    check_version_allowed(endpoint=endpoint, model_version=control)
    unpromoted = []
    for version, _weight in arms[1:]:
        if endpoint.environment != Environment.PRODUCTION:
            check_version_allowed(endpoint=endpoint, model_version=version)
        elif version.stage != Stage.PRODUCTION:
            if version.stage != Stage.STAGING:
                raise Conflict(f"{version} is in {version.get_stage_display()}; a challenger on a production "
                               "endpoint must be in Staging or Production.", code="version_not_allowed",
                               details={"stage": version.stage})
            unpromoted.append(version)
    if not unpromoted:
        return
    if approved_by is None:
        raise Conflict(f"{', '.join(map(str, unpromoted))} is not in Production: as a challenger on the production "
                       f"endpoint {endpoint.slug} it needs an Approver's approval.", code="approval_required")
    share = sum(weight for _, weight in arms[1:]) / 100.0
    if share > _max_challenger_share() + 1e-9:
        raise Conflict(f"Challengers would get {share:.0%} of {endpoint.slug}'s traffic; at most "
                       f"{_max_challenger_share():.0%} is allowed on a production endpoint.",
                       code="challenger_share_too_high",
                       details={"share": share, "max_share": _max_challenger_share()})


def _new_arm(endpoint: Endpoint, version: ModelVersion, actor) -> Deployment:
    """Deploy ``version`` as an arm: health-checked like any rollout (load,
    SHA-256, compile, smoke predictions), raising 409 when it fails, so that
    no arm starts without a model that answers."""
    from apps.serving.backends import get_backend
    from apps.serving.policy import clean_config
    from apps.serving.services.health import deployment_health_check

    if not (version.signature or {}).get("inputs"):
        raise ValidationFailed(f"{version} has no input signature, so requests cannot be validated.",
                               code="no_signature")
    deployment = Deployment.objects.create(
        endpoint=endpoint, model_version=version, strategy=Strategy.IMMEDIATE,
        config=clean_config(Strategy.IMMEDIATE, None), status=DeploymentStatus.PENDING,
        rollout_state=RolloutState.COMPLETED, created_by=actor)
    result = deployment_health_check(deployment=deployment)
    if not result.ok:
        reason = "; ".join(result.health.get("errors") or ["health check failed"])
        raise Conflict(f"{version} failed its health check: {reason}", code="health_check_failed",
                       details={"model_version_id": version.pk, "health": result.health})
    get_backend().apply(deployment)
    deployment.health = result.health
    deployment.serving_path = result.serving_path
    deployment.serving_path_reason = result.serving_path_reason
    deployment.compiled_artifact = result.compiled_artifact
    deployment.compiled_sha256 = result.compiled_sha256
    deployment.status = DeploymentStatus.HEALTHY
    deployment.started_at = deployment.finished_at = timezone.now()
    deployment.save()
    return deployment


def _timeline(deployment: Deployment, *, kind: str, actor, message: str, data: dict) -> None:
    RolloutEvent.objects.create(deployment=deployment, kind=kind, message=message,
                                traffic_weight=deployment.traffic_weight, data=data,
                                actor=actor if getattr(actor, "is_authenticated", False) else None)


def endpoint_split_start(*, endpoint: Endpoint, arms, owner_label: str, actor, salt: str | None = None,
                         approved_by=None) -> TrafficSplit:
    """Hold ``endpoint`` at ``arms`` = [(model_version, weight), ...] (arm 0
    is the control; weights are normalised to percentages). An arm whose
    version already serves the endpoint keeps its deployment; the others are
    deployed and health-checked now. Refused (409) while a rollout or a bake
    runs, while another split holds the endpoint, or when a deployment with
    traffic is not one of the arms. ``salt`` defaults to a fresh random one."""
    require_perm(actor, "serving.deploy_endpoint", endpoint)
    owner_label = (owner_label or "").strip()[:200]
    if not owner_label:
        raise ValidationFailed("Name who holds the split.", details={"field": "owner_label"})
    salt = salt or secrets.token_hex(16)
    if not isinstance(salt, str) or len(salt) > 64:
        raise ValidationFailed("The salt is a string of at most 64 characters.", details={"field": "salt"})
    cleaned = _clean_arms(arms)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        _check_governance(endpoint, cleaned, approved_by)
        endpoint_split_guard(endpoint_id=endpoint.pk)
        if TrafficSplit.objects.filter(salt=salt).exists():
            raise Conflict("That salt was used by an earlier split; each split needs a new one.",
                           code="salt_reused", details={"field": "salt"})
        live = list(Deployment.objects.select_for_update(of=("self",)).select_related("model_version")
                    .filter(endpoint=endpoint, status__in=LIVE_STATUSES).order_by("-created_at", "-id"))
        busy = [d for d in live if d.rollout_active or d.baking]
        if busy:
            raise Conflict(f"{endpoint.slug} is rolling out or baking deployment {busy[0].pk}; wait for it to "
                           "finish (or roll it back) before you split its traffic.", code="rollout_in_progress",
                           details={"deployment_id": busy[0].pk})
        by_version = {}
        for deployment in live:
            by_version.setdefault(deployment.model_version_id, deployment)
        arm_versions = {version.pk for version, _ in cleaned}
        outside = [d for d in live if d.traffic_weight > 0 and d.model_version_id not in arm_versions]
        if outside:
            raise Conflict(f"{endpoint.slug} serves {outside[0].model_version}, which is not one of the arms.",
                           code="serving_outside_split", details={"deployment_id": outside[0].pk})
        stored = []
        for version, weight in cleaned:
            deployment = by_version.get(version.pk) or _new_arm(endpoint, version, actor)
            deployment.traffic_weight = weight
            deployment.save(update_fields=["traffic_weight", "updated_at"])
            stored.append({"deployment_id": deployment.pk, "model_version_id": version.pk, "weight": weight})
        split = TrafficSplit.objects.create(endpoint=endpoint, salt=salt, arms=stored, owner_label=owner_label,
                                            started_by=actor, approved_by=approved_by)
        message = f"{owner_label} splits {endpoint.slug}: " + ", ".join(
            f"arm {i} {version} {weight:g} %" for i, (version, weight) in enumerate(cleaned))
        for i, arm in enumerate(stored):
            _timeline(Deployment.objects.get(pk=arm["deployment_id"]), kind="split_started", actor=actor,
                      message=message, data={"split_id": split.pk, "arm": i})
        audit_record(actor=actor, action="endpoint.split_started", target=endpoint, message=message,
                     after={"split_id": split.pk, "arms": stored, "held_by": owner_label,
                            "approved_by": getattr(approved_by, "pk", None)})
        transaction.on_commit(bump_routing_stamp)
    return split


def endpoint_split_end(*, endpoint: Endpoint, actor, keep: int = 0, reason: str = "") -> TrafficSplit:
    """End the split that holds ``endpoint``: arm ``keep`` (the control by
    default) takes all traffic, the other arms are superseded and scaled
    down. The kept version must be one the endpoint may serve on its own.
    ``actor=None`` is the platform acting on the holder's own rule (an A/B
    test's guardrail stopping it), which restores the control only."""
    from apps.serving.services.deployments import check_version_allowed

    if actor is not None or keep != 0:
        require_perm(actor, "serving.deploy_endpoint", endpoint)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        split = TrafficSplit.objects.select_for_update().filter(endpoint=endpoint, ended_at__isnull=True).first()
        if split is None:
            raise Conflict(f"No split holds {endpoint.slug}.", code="no_split")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep < len(split.arms):
            raise ValidationFailed(f"keep must be an arm index from 0 to {len(split.arms) - 1}.",
                                   details={"field": "keep"})
        ids = [deployment_id for deployment_id, _ in split.weights]
        deployments = {d.pk: d for d in Deployment.objects.select_for_update(of=("self",))
                       .select_related("model_version").filter(pk__in=ids)}
        kept = deployments[ids[keep]]
        check_version_allowed(endpoint=endpoint, model_version=kept.model_version)
        now = timezone.now()
        message = (f"{split.owner_label} ended: arm {keep} ({kept.model_version}) takes all traffic of "
                   f"{endpoint.slug}." + (f" {reason.strip()}" if reason and reason.strip() else ""))
        dropped = []
        for deployment_id in ids:
            deployment = deployments[deployment_id]
            if deployment.pk == kept.pk:
                deployment.traffic_weight = 100.0
                deployment.save(update_fields=["traffic_weight", "updated_at"])
            else:
                deployment.traffic_weight = 0.0
                deployment.status = DeploymentStatus.SUPERSEDED
                deployment.status_reason = message
                deployment.finished_at = now
                deployment.save(update_fields=["traffic_weight", "status", "status_reason", "finished_at",
                                               "updated_at"])
                dropped.append(deployment)
            _timeline(deployment, kind="split_ended", actor=actor, message=message,
                      data={"split_id": split.pk, "kept_arm": keep})
        split.ended_at, split.ended_by, split.kept_arm = now, actor, keep
        split.save(update_fields=["ended_at", "ended_by", "kept_arm"])
        audit_record(actor=actor, action="endpoint.split_ended", target=endpoint, message=message,
                     before={"split_id": split.pk, "arms": split.arms},
                     after={"split_id": split.pk, "kept_arm": keep, "deployment_id": kept.pk})
        transaction.on_commit(bump_routing_stamp)
        transaction.on_commit(lambda: _scale_down(dropped))
    return split


def _scale_down(deployments: list[Deployment]) -> None:
    from apps.serving.backends import get_backend

    for deployment in deployments:
        try:
            get_backend().scale_down(deployment)
        except Exception:  # the routing change is what matters; a backend hiccup is logged for operators
            logger.exception("scaling down deployment %s failed", deployment.pk)


__all__ = ["endpoint_split_end", "endpoint_split_guard", "endpoint_split_held", "endpoint_split_start",
           "split_arm_for", "split_router"]
