"""Production endpoints follow the registry.

When a version enters Production (an approved promotion, or a registry
rollback), every production endpoint serving another version of that model
moves to it: a promotion rolls out with the endpoint's ``follow_strategy``
(canary by default), a rollback deploys ``immediate``ly. Both go through the
same health check and rollout state machine as a deployment started by hand,
in the name of whoever approved or rolled back.

An endpoint in ``manual`` follow mode is not moved: it is flagged as serving
a stale version, and ``endpoint.stale_version`` goes to webhooks and domain
subscribers so that somebody decides.

The registry is below serving and never calls it; serving learns of the move
from ``registry.model_version.stage_changed`` (handlers.py). Each move is
identified by its ``StageTransition``, so a redelivered event is a no-op.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from apps.core import events
from apps.core.errors import ApplicationError
from apps.core.selectors import audit_events_for
from apps.core.services import audit_record, snapshot
from apps.registry.choices import Stage, TransitionKind
from apps.registry.models import ModelVersion, StageTransition
from apps.registry.selectors import stage_transition_get
from apps.serving.choices import ACTIVE_ROLLOUT_STATES, Environment, FollowMode, Strategy
from apps.serving.models import Deployment, Endpoint
from apps.serving.services._transition import DEPLOYMENT_AUDIT_FIELDS, LIVE_STATUSES, _lock
from apps.serving.services.deployments import build_unchecked, queue_new
from apps.serving.services.rollouts import _rollback

logger = logging.getLogger(__name__)

STALE_EVENT = "endpoint.stale_version"
FOLLOWED_KINDS = (TransitionKind.APPROVAL, TransitionKind.ROLLBACK)


def _serving(endpoint: Endpoint, registered_model_id: int) -> list[Deployment]:
    """The endpoint's deployments of this model that serve or are rolling out."""
    return list(Deployment.objects.filter(endpoint=endpoint, model_version__registered_model_id=registered_model_id)
                .filter(status__in=LIVE_STATUSES)
                .select_related("model_version__registered_model", "endpoint").order_by("id"))


def stale_deployments(endpoint: Endpoint) -> list[Deployment]:
    """Live deployments of a production endpoint whose version is no longer
    in Production (what the endpoint page and API flag as stale)."""
    if endpoint.environment != Environment.PRODUCTION:
        return []
    return [d for d in Deployment.objects.filter(endpoint=endpoint, status__in=LIVE_STATUSES, traffic_weight__gt=0)
            .select_related("model_version__registered_model") if d.model_version.stage != Stage.PRODUCTION]


def endpoint_announce_stale(*, endpoint: Endpoint, current: ModelVersion | None, reason: str,
                            transition_id: int | None = None, actor=None) -> bool:
    """Audit and announce that ``endpoint`` serves a version that is no longer
    in Production (inside the caller's transaction). Once per transition."""
    if transition_id is not None and audit_events_for(obj=endpoint).filter(
            action=STALE_EVENT, after__transition_id=transition_id).exists():
        return False
    stale = stale_deployments(endpoint)
    if not stale:
        return False
    model = stale[0].model_version.registered_model
    payload = {
        "endpoint": endpoint.slug, "environment": endpoint.environment, "follow_mode": endpoint.follow_mode,
        "model": model.name, "serving_versions": sorted({d.model_version.version for d in stale}),
        "deployment_ids": [d.pk for d in stale],
        "production_version": current.version if current is not None else None,
        "transition_id": transition_id, "reason": reason,
    }
    audit_record(actor=actor, action=STALE_EVENT, target=endpoint, after=payload, message=reason)
    # Webhooks hear of it as ``endpoint.stale_version``; the apps above as ``serving.endpoint.stale_version``.
    events.publish(STALE_EVENT, payload, subject=model, envelope={"registered_model": model.name})
    events.publish(f"serving.{STALE_EVENT}", payload, webhooks=False)
    return True


def _follow_one(*, endpoint: Endpoint, version: ModelVersion, transition: StageTransition) -> str:
    model = version.registered_model
    kind = transition.kind
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().select_related("owner").get(pk=endpoint.pk)
        if Deployment.objects.filter(endpoint=endpoint, registry_transition=transition).exists():
            return "duplicate"
        serving = _serving(endpoint, model.pk)
        if not serving:
            return "not_serving"
        active = next((d for d in serving if d.rollout_state in ACTIVE_ROLLOUT_STATES), None)
        if active is None:
            active = (Deployment.objects.filter(endpoint=endpoint, rollout_state__in=ACTIVE_ROLLOUT_STATES)
                      .select_related("model_version__registered_model", "endpoint").first())
        if {d.model_version_id for d in serving} == {version.pk} and active is None:
            return "up_to_date"
        if active is not None and active.model_version_id == version.pk:
            return "already_rolling_out"
        reason = (f"{version} entered Production ({TransitionKind(kind).label.lower()} by "
                  f"{transition.actor.get_username() if transition.actor else 'the platform'}).")
        if endpoint.follow_mode == FollowMode.MANUAL:
            endpoint_announce_stale(endpoint=endpoint, current=version, transition_id=transition.pk,
                                    reason=f"{reason} {endpoint.slug} follows manually and still serves "
                                           f"{', '.join(sorted({str(d.model_version) for d in serving}))}.")
            return "stale"
        # The approver (or whoever rolled back) acts; the stage move they made
        # is the authorised decision. Should their account be gone, the owner
        # of the endpoint answers for the deployment.
        actor = transition.actor or endpoint.owner
        strategy = Strategy.IMMEDIATE if kind == TransitionKind.ROLLBACK else endpoint.follow_strategy
        try:
            with transaction.atomic():
                if active is not None:
                    locked, others = _lock(active.pk)
                    _rollback(locked, others, actor=actor, before=snapshot(locked, DEPLOYMENT_AUDIT_FIELDS),
                              reason=f"{reason} This rollout's version is no longer the one to serve.",
                              automatic=True)
                deployment = build_unchecked(endpoint=endpoint, model_version=version, strategy=strategy,
                                             config=None, actor=actor)
                deployment.registry_transition = transition
                queue_new(deployment, actor=actor,
                          message=f"Follows the registry: {reason} {version} to {endpoint.slug} "
                                  f"({deployment.get_strategy_display()}).",
                          data={"follows": {"transition_id": transition.pk, "kind": kind}})
        except IntegrityError:
            return "duplicate"
        except ApplicationError as exc:
            endpoint_announce_stale(endpoint=endpoint, current=version, transition_id=transition.pk,
                                    reason=f"{reason} {endpoint.slug} could not follow: {exc.message}")
            return "stale"
        audit_record(actor=actor, action="endpoint.followed_registry", target=endpoint,
                     after={"deployment_id": deployment.pk, "model": model.name, "version": version.version,
                            "strategy": strategy, "transition_id": transition.pk, "kind": kind},
                     message=reason)
        return "started"


def endpoints_follow_registry(*, model_version_id: int, transition_id: int) -> dict:
    """Move every production endpoint serving the model of ``model_version_id``
    to that version, which the stage move ``transition_id`` put in
    Production. Returns what happened per endpoint slug."""
    transition = stage_transition_get(pk=transition_id, version_id=model_version_id)
    if transition is None or transition.to_stage != Stage.PRODUCTION or transition.kind not in FOLLOWED_KINDS:
        return {}
    version = transition.version
    if version.stage != Stage.PRODUCTION:
        # A later move overtook this one; its own event moves the endpoints.
        return {}
    endpoints = (Endpoint.objects.filter(environment=Environment.PRODUCTION,
                                         deployments__model_version__registered_model=version.registered_model,
                                         deployments__status__in=LIVE_STATUSES).distinct().order_by("pk"))
    outcome = {}
    for endpoint in endpoints:
        try:
            outcome[endpoint.slug] = _follow_one(endpoint=endpoint, version=version, transition=transition)
        except Exception:  # one endpoint's trouble must not keep the others on the old version
            logger.exception("endpoint %s could not follow %s", endpoint.slug, version)
            outcome[endpoint.slug] = "error"
    return outcome


__all__ = ["STALE_EVENT", "endpoint_announce_stale", "endpoints_follow_registry", "stale_deployments"]
