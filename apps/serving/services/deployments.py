"""Deployments: naming the version, checking it may be served, building and
starting a deployment (its rollout then runs in ``rollouts.py``), a dry run,
applying a deployment's manifests again, and flagging live deployments whose
version left the stages their endpoint serves."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import snapshot
from apps.registry import selectors as registry_selectors
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from apps.registry.stages import stages_servable_in
from apps.serving.choices import (
    ACTIVE_ROLLOUT_STATES,
    DeploymentStatus,
    Environment,
    FollowMode,
    RolloutState,
    Strategy,
)
from apps.serving.models import Deployment, Endpoint
from apps.serving.policy import ConfigError, clean_config
from apps.serving.services._transition import (
    DEPLOYMENT_AUDIT_FIELDS,
    LIVE_STATUSES,
    _lock,
    _record,
    _save,
    _schedule_tick,
)
from apps.serving.services.splits import endpoint_split_guard


def model_version_resolve(*, actor, model: str | None = None, version: int | None = None,
                          model_version_id: int | None = None) -> ModelVersion:
    """The version named by ``model`` + ``version`` or by id, if the actor may see its model."""
    if model_version_id is None and not (model and version is not None):
        raise ValidationFailed('Name the version: {"model": "sample-qc", "version": 2} or {"model_version_id": 7}.',
                               details={"fields": {"model": ["required"]}})
    found = registry_selectors.model_version_find(user=actor, model=model, version=version,
                                                  model_version_id=model_version_id)
    if found is None:
        raise NotFound("No such model version.")
    return found


def check_version_allowed(*, endpoint: Endpoint, model_version: ModelVersion) -> None:
    """A production endpoint serves only Production versions; a staging
    endpoint Staging or Production ones."""
    allowed = stages_servable_in(endpoint.environment)
    if model_version.stage not in allowed:
        names = " or ".join(s.label for s in Stage if s in allowed)
        raise Conflict(
            f"{model_version} is in {model_version.get_stage_display()}; the {endpoint.environment} endpoint "
            f"{endpoint.slug} only serves versions in {names}.",
            code="version_not_allowed",
            details={"stage": model_version.stage, "allowed_stages": list(allowed)},
        )


def deployment_build(*, endpoint: Endpoint, model_version: ModelVersion, strategy: str, config: dict | None,
                     actor) -> Deployment:
    """A validated, unsaved deployment (what a dry run renders)."""
    require_perm(actor, "serving.deploy_endpoint", endpoint)
    return build_unchecked(endpoint=endpoint, model_version=model_version, strategy=strategy, config=config,
                           actor=actor)


def bake_minutes_default(endpoint: Endpoint) -> float:
    if endpoint.bake_minutes is not None:
        return endpoint.bake_minutes
    return getattr(settings, "DEPLOYMENT_BAKE_MINUTES", 15)


def build_unchecked(*, endpoint: Endpoint, model_version: ModelVersion, strategy: str, config: dict | None,
                    actor) -> Deployment:
    """``deployment_build`` without the actor's deploy right: for moves the
    platform makes on its own (following the registry), where the approval
    or rollback that caused them was the authorised decision."""
    try:
        cleaned = clean_config(strategy, config)
    except ConfigError as exc:
        raise ValidationFailed(str(exc), details={"fields": {exc.field: [str(exc)]}})
    cleaned.setdefault("bake_minutes", bake_minutes_default(endpoint))
    check_version_allowed(endpoint=endpoint, model_version=model_version)
    if not (model_version.signature or {}).get("inputs"):
        raise ValidationFailed(f"{model_version} has no input signature, so requests cannot be validated.",
                               code="no_signature")
    return Deployment(endpoint=endpoint, model_version=model_version, strategy=strategy, config=cleaned,
                      created_by=actor)


def deployment_dry_run(*, endpoint: Endpoint, model_version: ModelVersion, strategy: str, config: dict | None,
                       actor) -> list[dict]:
    """Validate a deployment and return the manifests the backend would apply, creating nothing."""
    from apps.serving.backends import get_backend

    deployment = deployment_build(endpoint=endpoint, model_version=model_version, strategy=strategy,
                                  config=config, actor=actor)
    return get_backend().apply(deployment, dry_run=True)


def deployment_start(*, endpoint: Endpoint, model_version: ModelVersion, strategy: str = Strategy.IMMEDIATE,
                     config: dict | None = None, actor) -> Deployment:
    """Create a deployment and start its rollout (health check first, on the
    ``rollouts`` queue). One rollout per endpoint at a time."""
    deployment = deployment_build(endpoint=endpoint, model_version=model_version, strategy=strategy,
                                  config=config, actor=actor)
    try:
        with transaction.atomic():
            Endpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
            busy = (Deployment.objects.filter(endpoint=endpoint, rollout_state__in=ACTIVE_ROLLOUT_STATES)
                    .select_related("model_version__registered_model").first())
            if busy is not None:
                raise Conflict(
                    f"{endpoint.slug} is already rolling out {busy.model_version} (deployment {busy.pk}); "
                    "promote or roll it back first.", code="rollout_in_progress",
                    details={"deployment_id": busy.pk})
            queue_new(deployment, actor=actor,
                      message=f"{model_version} to {endpoint.slug} ({deployment.get_strategy_display()})")
    except IntegrityError:
        raise Conflict(f"{endpoint.slug} already has a rollout in progress.", code="rollout_in_progress")
    return deployment


def queue_new(deployment: Deployment, *, actor, message: str, data: dict | None = None) -> None:
    """Save a built deployment as queued and send its first tick (inside the
    caller's transaction, with the endpoint row locked)."""
    endpoint_split_guard(endpoint_id=deployment.endpoint_id)
    deployment.status = DeploymentStatus.PENDING
    deployment.rollout_state = RolloutState.QUEUED
    deployment.rollout_seq = 1
    deployment.next_check_at = timezone.now()
    deployment.save()
    _record(deployment, kind="created", actor=actor, before=None, message=message,
            data={"config": deployment.config, **(data or {})})
    _schedule_tick(deployment)


def deployments_note_stage_change(*, model_version_id: int, from_stage: str, to_stage: str, actor=None) -> int:
    """A deployed version left the stage its endpoint requires (e.g. archived
    after a newer version reached Production): flag the deployments, without
    cutting traffic (that would take the lab's endpoint down); the timeline
    and webhooks tell the team to deploy the current version."""
    flagged = 0
    live = Deployment.objects.filter(model_version_id=model_version_id, status__in=LIVE_STATUSES)
    for candidate in live.select_related("endpoint", "model_version"):
        allowed = stages_servable_in(candidate.endpoint.environment)
        if to_stage in allowed:
            continue
        if (candidate.endpoint.environment == Environment.PRODUCTION
                and candidate.endpoint.follow_mode == FollowMode.AUTO
                and registry_selectors.production_version(
                    registered_model=candidate.model_version.registered_model) is not None):
            # The endpoint follows the registry: the new Production version is
            # being rolled out to it (services/following.py), which flags the
            # endpoint itself if that cannot happen.
            continue
        with transaction.atomic():
            deployment, _others = _lock(candidate.pk)
            if deployment.status not in LIVE_STATUSES:
                continue
            before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
            deployment.status = DeploymentStatus.DEGRADED
            deployment.status_reason = (f"{deployment.model_version} moved from {from_stage} to {to_stage}; the "
                                        f"{deployment.endpoint.environment} endpoint should serve a version in "
                                        f"{' or '.join(allowed)}.")
            _save(deployment, "status", "status_reason")
            _record(deployment, kind="version_stage_changed", actor=actor, before=before,
                    message=deployment.status_reason, data={"from_stage": from_stage, "to_stage": to_stage})
            flagged += 1
    return flagged

