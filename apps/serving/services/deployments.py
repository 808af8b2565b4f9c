"""Deployments and their rollout state machine.

States (``Deployment.rollout_state``) and who moves them::

    queued ──tick: health check + backend.apply──> progressing ──tick: steps pass──> completed
       │                         │      ▲                │ (blue-green: switch)
       │ health check fails      │ pause│resume          ▼
       ▼                         ▼      │             observing ──window over / promote──> completed
     failed                    paused ──┘                │
                                 │                       │ threshold broken / rollback
    any active state ── rollback (manual, or a broken threshold) ──> rolled_back

Every transition locks the endpoint row and then the deployment rows (always
in that order, so two transitions cannot deadlock), checks the state, writes
the change, a timeline event, an audit event and webhook deliveries in one
transaction, bumps ``rollout_seq`` and schedules the next tick after commit.
A tick carries the ``rollout_seq`` it was scheduled for and does nothing when
the deployment has moved on since, so duplicate or stale ticks are harmless
and a worker restart only needs to re-send one tick per active rollout
(``rollouts_resume``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import Conflict, InvalidState, NotFound, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from apps.serving.choices import (
    ACTIVE_ROLLOUT_STATES,
    DeploymentStatus,
    Environment,
    FollowMode,
    RolloutState,
    Strategy,
)
from apps.serving.models import Deployment, Endpoint, RolloutEvent
from apps.serving.policy import ConfigError, clean_config, judge
from apps.serving.runtime import bump_routing_stamp

logger = logging.getLogger(__name__)

DEPLOYMENT_AUDIT_FIELDS = ["status", "rollout_state", "traffic_weight", "rollout_step", "paused_reason",
                           "status_reason"]
LIVE_STATUSES = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)
# Transitions published as domain events (``serving.deployment.<kind>``) for
# the apps above and the inbox: the ones somebody has to look at.
PUBLISHED_KINDS = ("degraded", "rolled_back", "paused", "failed")
# How long after the last request window a healthy deployment is judged (degraded / recovered).
HEALTH_WINDOW = timedelta(minutes=5)


# --- Helpers ---------------------------------------------------------------------------

def _emit_webhook(deployment: Deployment, event: str, payload: dict) -> None:
    """``deployment.<kind>``, scoped to the deployed model: what webhooks
    receive (the in-process twin is ``serving.deployment.<kind>``)."""
    model = deployment.model_version.registered_model
    events.publish(f"deployment.{event}", payload, subject=model, envelope={"registered_model": model.name})


def deployment_payload(deployment: Deployment, **extra) -> dict:
    """The JSON body of deployment webhooks (``data`` of the envelope)."""
    version = deployment.model_version
    return {
        "deployment_id": deployment.pk, "endpoint": deployment.endpoint.slug,
        "environment": deployment.endpoint.environment, "model": version.registered_model.name,
        "version": version.version, "model_version_id": version.pk, "strategy": deployment.strategy,
        "status": deployment.status, "rollout_state": deployment.rollout_state,
        "traffic_weight": deployment.traffic_weight, "rollout_step": deployment.rollout_step, **extra,
    }


def _record(deployment: Deployment, *, kind: str, actor, message: str, before: dict | None, data: dict | None = None,
            webhook: bool = True) -> None:
    """Timeline event + audit event + webhooks for one transition (inside its transaction)."""
    RolloutEvent.objects.create(deployment=deployment, kind=kind, message=message,
                                traffic_weight=deployment.traffic_weight, data=data or {},
                                actor=actor if getattr(actor, "is_authenticated", False) else None)
    audit_record(actor=actor, action=f"deployment.{kind}", target=deployment, before=before,
                 after=snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS), message=message)
    if webhook:
        _emit_webhook(deployment, kind, deployment_payload(deployment, message=message, **(data or {})))
    if kind in PUBLISHED_KINDS:
        events.publish(f"serving.deployment.{kind}", deployment_payload(deployment, message=message, **(data or {})),
                       webhooks=False)


def rollout_queue() -> str:
    return getattr(settings, "SERVING_ROLLOUT_QUEUE", "rollouts") or "rollouts"


def send_tick(deployment_id: int, seq: int, countdown: float = 0.0) -> None:
    from apps.serving.tasks import rollout_tick

    rollout_tick.apply_async(args=(deployment_id, seq), countdown=max(0.0, countdown), queue=rollout_queue())


def _schedule_tick(deployment: Deployment) -> None:
    """Send the tick for the deployment's current state after commit."""
    if deployment.next_check_at is None or deployment.rollout_state not in ACTIVE_ROLLOUT_STATES:
        return
    countdown = (deployment.next_check_at - timezone.now()).total_seconds()
    transaction.on_commit(partial(send_tick, deployment.pk, deployment.rollout_seq, countdown))


def _scale_down_later(deployment: Deployment) -> None:
    def run():
        from apps.serving.backends import get_backend

        try:
            get_backend().scale_down(deployment)
        except Exception:  # the routing change is what matters; a backend hiccup is logged for operators
            logger.exception("scaling down deployment %s failed", deployment.pk)

    transaction.on_commit(run)


def _lock(deployment_id: int) -> tuple[Deployment, list[Deployment]]:
    """Lock the endpoint, then the deployment and its live siblings."""
    endpoint_id = Deployment.objects.filter(pk=deployment_id).values_list("endpoint_id", flat=True).first()
    if endpoint_id is None:
        raise NotFound(f"No deployment {deployment_id}.")
    Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    deployment = (Deployment.objects.select_for_update(of=("self",))
                  .select_related("endpoint", "model_version__registered_model").get(pk=deployment_id))
    others = list(Deployment.objects.select_for_update(of=("self",))
                  .select_related("endpoint", "model_version__registered_model")
                  .filter(endpoint_id=endpoint_id, status__in=LIVE_STATUSES).exclude(pk=deployment_id)
                  .order_by("id"))
    return deployment, others


def _save(deployment: Deployment, *fields: str) -> None:
    deployment.save(update_fields=[*fields, "updated_at"])


def _set_weights(deployment: Deployment, others: list[Deployment], weight: float) -> None:
    """Give ``deployment`` ``weight`` % and share the rest among the baseline
    deployments in proportion to their weights before the rollout."""
    baseline = {int(k): float(v) for k, v in (deployment.rollout_baseline or {}).items()}
    total = sum(baseline.values())
    remaining = max(0.0, 100.0 - weight)
    deployment.traffic_weight = float(weight)
    _save(deployment, "traffic_weight")
    for other in others:
        share = baseline.get(other.pk, 0.0)
        new_weight = round(remaining * share / total, 6) if total else 0.0
        if other.traffic_weight != new_weight:
            other.traffic_weight = new_weight
            _save(other, "traffic_weight")
    transaction.on_commit(bump_routing_stamp)


def _bump(deployment: Deployment, *, state: str, next_check_in: float | None) -> None:
    deployment.rollout_state = state
    deployment.rollout_seq += 1
    deployment.next_check_at = (timezone.now() + timedelta(seconds=next_check_in)
                                if next_check_in is not None else None)
    _save(deployment, "rollout_state", "rollout_seq", "next_check_at")


def _check_interval(deployment: Deployment, remaining: float) -> float:
    interval = float(deployment.config.get("check_interval_s", 10))
    return max(0.0, min(interval, remaining))


# --- Starting ----------------------------------------------------------------------------

def model_version_resolve(*, actor, model: str | None = None, version: int | None = None,
                          model_version_id: int | None = None) -> ModelVersion:
    """The version named by ``model`` + ``version`` or by id, if the actor may see its model."""
    qs = ModelVersion.objects.select_related("registered_model")
    if model_version_id is not None:
        found = qs.filter(pk=model_version_id).first()
    elif model and version is not None:
        found = qs.filter(registered_model__name=model, version=version).first()
    else:
        raise ValidationFailed('Name the version: {"model": "sample-qc", "version": 2} or {"model_version_id": 7}.',
                               details={"fields": {"model": ["required"]}})
    if found is None:
        raise NotFound("No such model version.")
    require_perm(actor, "registry.view_registeredmodel", found.registered_model)
    return found


def check_version_allowed(*, endpoint: Endpoint, model_version: ModelVersion) -> None:
    """A production endpoint serves only Production versions; a staging
    endpoint Staging or Production ones."""
    allowed = ((Stage.PRODUCTION,) if endpoint.environment == Environment.PRODUCTION
               else (Stage.STAGING, Stage.PRODUCTION))
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
    deployment.status = DeploymentStatus.PENDING
    deployment.rollout_state = RolloutState.QUEUED
    deployment.rollout_seq = 1
    deployment.next_check_at = timezone.now()
    deployment.save()
    _record(deployment, kind="created", actor=actor, before=None, message=message,
            data={"config": deployment.config, **(data or {})})
    _schedule_tick(deployment)


# --- The state machine (called by the rollout_tick task) ------------------------------------

def rollout_tick(*, deployment_id: int, seq: int) -> str:
    """Advance one rollout by one step if its tick is due. Returns what it did."""
    deployment = (Deployment.objects.select_related("endpoint", "model_version__registered_model")
                  .filter(pk=deployment_id).first())
    if deployment is None:
        return "gone"
    if deployment.rollout_seq != seq or deployment.rollout_state not in ACTIVE_ROLLOUT_STATES:
        return "stale"
    if deployment.rollout_state == RolloutState.PAUSED or deployment.next_check_at is None:
        return "paused"
    remaining = (deployment.next_check_at - timezone.now()).total_seconds()
    if remaining > 0:
        # Early (a clock difference, or a resumed worker re-sending ticks):
        # come back when it is due. Same seq, so at most one of the copies acts.
        send_tick(deployment_id, seq, remaining)
        return "early"
    if deployment.rollout_state == RolloutState.QUEUED:
        return _run_health_check(deployment, seq)
    return _advance(deployment_id, seq)


def _run_health_check(deployment: Deployment, seq: int) -> str:
    from apps.serving.backends import get_backend
    from apps.serving.services.health import deployment_health_check

    result = deployment_health_check(deployment=deployment)
    manifests: list = []
    if result.ok:
        try:
            manifests = get_backend().apply(deployment)
        except Exception as exc:  # any backend failure stops the rollout before traffic moves
            result.health["ok"] = False
            result.health.setdefault("errors", []).append(f"deployment backend: {type(exc).__name__}: {exc}"[:500])
            result.ok = False
    with transaction.atomic():
        deployment, others = _lock(deployment.pk)
        if deployment.rollout_seq != seq or deployment.rollout_state != RolloutState.QUEUED:
            return "stale"
        before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
        deployment.health = result.health
        deployment.serving_path = result.serving_path
        deployment.serving_path_reason = result.serving_path_reason
        deployment.compiled_artifact = result.compiled_artifact
        deployment.compiled_sha256 = result.compiled_sha256
        _save(deployment, "health", "serving_path", "serving_path_reason", "compiled_artifact", "compiled_sha256")
        if not result.ok:
            reason = "; ".join(result.health.get("errors") or ["health check failed"])
            deployment.status = DeploymentStatus.FAILED
            deployment.status_reason = reason
            deployment.finished_at = timezone.now()
            _save(deployment, "status", "status_reason", "finished_at")
            _bump(deployment, state=RolloutState.FAILED, next_check_in=None)
            _record(deployment, kind="failed", actor=None, before=before, message=f"Health check failed: {reason}",
                    data={"health": result.health})
            return "failed"
        _record(deployment, kind="health_checked", actor=None, before=before, webhook=False,
                message=(f"Healthy: loads in {result.health.get('load_ms', 0):.0f} ms, smoke predictions in "
                         f"{result.health.get('smoke_latency_ms', 0):.1f} ms; serves through "
                         f"{deployment.get_serving_path_display()} ({deployment.serving_path_reason})"),
                data={"manifests": len(manifests)})
        return _begin(deployment, others)


def _begin(deployment: Deployment, others: list[Deployment]) -> str:
    """First traffic decision after a passed health check."""
    before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
    baseline = {str(o.pk): o.traffic_weight for o in others if o.traffic_weight > 0}
    deployment.rollout_baseline = baseline
    deployment.started_at = timezone.now()
    _save(deployment, "rollout_baseline", "started_at")
    if deployment.strategy == Strategy.IMMEDIATE or not baseline:
        note = "" if deployment.strategy == Strategy.IMMEDIATE else " (nothing else serves here, so no steps)"
        _complete(deployment, others, actor=None, before=before, kind="promoted",
                  message=f"Takes all traffic at once{note}.")
        return "completed"
    deployment.status = DeploymentStatus.DEPLOYING
    _save(deployment, "status")
    if deployment.strategy == Strategy.BLUE_GREEN:
        _set_weights(deployment, others, 0.0)
        deployment.rollout_step = -1
        deployment.step_started_at = timezone.now()
        _save(deployment, "rollout_step", "step_started_at")
        _bump(deployment, state=RolloutState.PROGRESSING, next_check_in=float(deployment.config.get("warmup_s", 2)))
        _record(deployment, kind="warming", actor=None, before=before,
                message="Warming up at 0 % next to the current version.")
        _schedule_tick(deployment)
        return "warming"
    _enter_step(deployment, others, 0, actor=None, before=before)
    return "step"


def _enter_step(deployment: Deployment, others: list[Deployment], step: int, *, actor, before: dict) -> None:
    weight = float(deployment.config["steps"][step])
    _set_weights(deployment, others, weight)
    deployment.rollout_step = step
    deployment.step_started_at = timezone.now()
    _save(deployment, "rollout_step", "step_started_at")
    step_seconds = float(deployment.config.get("step_seconds", 60))
    _bump(deployment, state=RolloutState.PROGRESSING, next_check_in=_check_interval(deployment, step_seconds))
    total = len(deployment.config["steps"])
    _record(deployment, kind="traffic_shifted", actor=actor, before=before,
            message=f"Step {step + 1} of {total}: {weight:g} % of traffic.", data={"step": step})
    _schedule_tick(deployment)


def _complete(deployment: Deployment, others: list[Deployment], *, actor, before: dict, kind: str,
              message: str) -> None:
    _set_weights(deployment, [], 100.0)
    now = timezone.now()
    baseline = {int(k): float(v) for k, v in (deployment.rollout_baseline or {}).items() if float(v) > 0}
    bake = float(deployment.config.get("bake_minutes", 0) or 0)
    # What served before stays ready during the bake, so that it can be
    # restored at once if the new version breaks its thresholds.
    restorable = [other for other in others if other.pk in baseline] if bake > 0 else []
    for other in others:
        other_before = snapshot(other, DEPLOYMENT_AUDIT_FIELDS)
        other.traffic_weight = 0.0
        other.status = DeploymentStatus.SUPERSEDED
        other.status_reason = f"Replaced by deployment {deployment.pk} ({deployment.model_version})."
        other.finished_at = other.finished_at or now
        _save(other, "traffic_weight", "status", "status_reason", "finished_at")
        _record(other, kind="superseded", actor=actor, before=other_before, message=other.status_reason,
                data={"replaced_by": deployment.pk})
        if other.baking:
            end_bake(other, message=f"Bake ended early: replaced by deployment {deployment.pk}.")
        if other not in restorable:
            _scale_down_later(other)
    deployment.status = DeploymentStatus.HEALTHY
    deployment.status_reason = ""
    deployment.paused_reason = ""
    deployment.finished_at = now
    fields = ["status", "status_reason", "paused_reason", "finished_at"]
    if restorable:
        deployment.bake_until = now + timedelta(minutes=bake)
        deployment.previous_deployment = max(restorable, key=lambda other: baseline[other.pk])
        fields += ["bake_until", "previous_deployment"]
        message = f"{message} Bakes until {deployment.bake_until:%H:%M:%S} UTC; the previous version stays ready."
    _save(deployment, *fields)
    _bump(deployment, state=RolloutState.COMPLETED, next_check_in=None)
    _record(deployment, kind=kind, actor=actor, before=before, message=message)


def _rollback(deployment: Deployment, others: list[Deployment], *, actor, before: dict, reason: str,
              automatic: bool, stats: dict | None = None) -> None:
    baseline = {int(k): float(v) for k, v in (deployment.rollout_baseline or {}).items()}
    for other in others:
        weight = baseline.get(other.pk, 0.0)
        if other.traffic_weight != weight:
            other.traffic_weight = weight
            _save(other, "traffic_weight")
    deployment.traffic_weight = 0.0
    deployment.status = DeploymentStatus.ROLLED_BACK
    deployment.status_reason = reason
    deployment.finished_at = timezone.now()
    _save(deployment, "traffic_weight", "status", "status_reason", "finished_at")
    _bump(deployment, state=RolloutState.ROLLED_BACK, next_check_in=None)
    transaction.on_commit(bump_routing_stamp)
    _record(deployment, kind="rolled_back", actor=actor, before=before,
            message=("Rolled back automatically: " if automatic else "Rolled back: ") + reason,
            data={"automatic": automatic, "stats": stats or {}, "restored": {str(k): v for k, v in baseline.items()}})
    _scale_down_later(deployment)


def end_bake(deployment: Deployment, *, message: str) -> None:
    """Close a deployment's bake (locked, in the caller's transaction): the
    deployments it replaced are scaled down now."""
    deployment.baked_at = timezone.now()
    _save(deployment, "baked_at")
    baseline = [int(k) for k in (deployment.rollout_baseline or {})]
    kept = Deployment.objects.filter(pk__in=baseline, endpoint_id=deployment.endpoint_id,
                                     status=DeploymentStatus.SUPERSEDED).select_related("endpoint", "model_version")
    for previous in kept:
        _scale_down_later(previous)
    _record(deployment, kind="baked", actor=None, before=None, message=message, webhook=False)


def _advance(deployment_id: int, seq: int) -> str:
    from apps.serving.selectors import deployment_window_stats

    current = Deployment.objects.only("step_started_at", "rollout_state", "rollout_step").get(pk=deployment_id)
    # Read the live numbers before taking locks: it may scan many log rows.
    judged = current.rollout_state == RolloutState.OBSERVING or current.rollout_step >= 0
    stats = None
    if judged and current.step_started_at is not None:
        stats = deployment_window_stats(deployment_id=deployment_id, start=current.step_started_at)
    with transaction.atomic():
        deployment, others = _lock(deployment_id)
        if deployment.rollout_seq != seq or deployment.rollout_state not in (RolloutState.PROGRESSING,
                                                                             RolloutState.OBSERVING):
            return "stale"
        before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
        config = deployment.config
        now = timezone.now()
        if deployment.strategy == Strategy.BLUE_GREEN and deployment.rollout_state == RolloutState.PROGRESSING:
            return _switch_blue_green(deployment, others, before)
        verdict = judge(stats, config) if stats is not None else None
        if verdict is not None and verdict.breach:
            _rollback(deployment, others, actor=None, before=before, reason=verdict.breach, automatic=True,
                      stats=stats.as_dict())
            return "rolled_back"
        if deployment.rollout_state == RolloutState.OBSERVING:
            window = float(config.get("rollback_window_s", 300))
            remaining = window - (now - deployment.step_started_at).total_seconds()
            if remaining <= 0:
                _complete(deployment, others, actor=None, before=before, kind="promoted",
                          message="Rollback window closed; the previous version is scaled down.")
                return "completed"
            _bump(deployment, state=RolloutState.OBSERVING, next_check_in=_check_interval(deployment, remaining))
            _schedule_tick(deployment)
            return "observing"
        step_seconds = float(config.get("step_seconds", 60))
        remaining = step_seconds - (now - deployment.step_started_at).total_seconds()
        if remaining > 0:
            _bump(deployment, state=RolloutState.PROGRESSING, next_check_in=_check_interval(deployment, remaining))
            _schedule_tick(deployment)
            return "waiting"
        if not verdict.enough and deployment.strategy == Strategy.CANARY:
            reason = (f"Step {deployment.rollout_step + 1} saw {stats.requests} request(s), fewer than the "
                      f"{config.get('min_requests')} needed to judge it; paused until someone resumes, "
                      "promotes or rolls back.")
            deployment.paused_reason = reason
            _save(deployment, "paused_reason")
            _bump(deployment, state=RolloutState.PAUSED, next_check_in=None)
            _record(deployment, kind="paused", actor=None, before=before, message=reason,
                    data={"automatic": True, "stats": stats.as_dict()})
            return "paused"
        steps = config["steps"]
        if deployment.rollout_step + 1 >= len(steps):
            _complete(deployment, others, actor=None, before=before, kind="promoted",
                      message=f"Every step passed; takes all traffic ({stats.requests} requests in the last step).")
            return "completed"
        _enter_step(deployment, others, deployment.rollout_step + 1, actor=None, before=before)
        return "step"


def _switch_blue_green(deployment: Deployment, others: list[Deployment], before: dict) -> str:
    _set_weights(deployment, others, 100.0)
    deployment.status = DeploymentStatus.HEALTHY
    deployment.rollout_step = 0
    deployment.step_started_at = timezone.now()
    _save(deployment, "status", "rollout_step", "step_started_at")
    window = float(deployment.config.get("rollback_window_s", 300))
    _bump(deployment, state=RolloutState.OBSERVING, next_check_in=_check_interval(deployment, window))
    _record(deployment, kind="traffic_shifted", actor=None, before=before,
            message=f"Switched: 100 % of traffic; the previous version stays ready for {window:g} s.")
    _schedule_tick(deployment)
    return "switched"


# --- Manual controls ---------------------------------------------------------------------

def _manual(deployment: Deployment, actor) -> tuple[Deployment, list[Deployment], dict]:
    require_perm(actor, "serving.deploy_endpoint", deployment.endpoint)
    locked, others = _lock(deployment.pk)
    return locked, others, snapshot(locked, DEPLOYMENT_AUDIT_FIELDS)


def deployment_promote(*, deployment: Deployment, actor) -> Deployment:
    """Skip the remaining steps (or close the rollback window): the new
    version takes all traffic and the previous one is scaled down."""
    with transaction.atomic():
        deployment, others, before = _manual(deployment, actor)
        if deployment.rollout_state not in (RolloutState.PROGRESSING, RolloutState.PAUSED, RolloutState.OBSERVING):
            raise InvalidState(
                f"Deployment {deployment.pk} is {deployment.get_rollout_state_display().lower()}; only a rollout "
                "that passed its health check can be promoted.", details={"rollout_state": deployment.rollout_state})
        _complete(deployment, others, actor=actor, before=before, kind="promoted",
                  message=f"Promoted by {actor.get_username()}: takes all traffic.")
    return deployment


def deployment_pause(*, deployment: Deployment, actor, reason: str = "") -> Deployment:
    """Hold the traffic split where it is until resumed."""
    with transaction.atomic():
        deployment, _others, before = _manual(deployment, actor)
        if deployment.rollout_state != RolloutState.PROGRESSING:
            raise InvalidState(f"Deployment {deployment.pk} is {deployment.get_rollout_state_display().lower()}; "
                               "only a rollout that is moving traffic can be paused.",
                               details={"rollout_state": deployment.rollout_state})
        deployment.paused_reason = reason.strip() or f"Paused by {actor.get_username()}."
        _save(deployment, "paused_reason")
        _bump(deployment, state=RolloutState.PAUSED, next_check_in=None)
        _record(deployment, kind="paused", actor=actor, before=before, message=deployment.paused_reason,
                data={"automatic": False})
    return deployment


def deployment_resume(*, deployment: Deployment, actor) -> Deployment:
    """Carry on from the current step; its time window starts again."""
    with transaction.atomic():
        deployment, _others, before = _manual(deployment, actor)
        if deployment.rollout_state != RolloutState.PAUSED:
            raise InvalidState(f"Deployment {deployment.pk} is not paused.",
                               details={"rollout_state": deployment.rollout_state})
        deployment.paused_reason = ""
        deployment.step_started_at = timezone.now()
        _save(deployment, "paused_reason", "step_started_at")
        if deployment.rollout_step < 0:
            wait = float(deployment.config.get("warmup_s", 2))
        else:
            wait = _check_interval(deployment, float(deployment.config.get("step_seconds", 60)))
        _bump(deployment, state=RolloutState.PROGRESSING, next_check_in=wait)
        _record(deployment, kind="resumed", actor=actor, before=before,
                message=f"Resumed by {actor.get_username()} at {deployment.traffic_weight:g} % of traffic.")
        _schedule_tick(deployment)
    return deployment


def deployment_rollback(*, deployment: Deployment, actor, reason: str) -> Deployment:
    """Stop the rollout and give the traffic back to what served before."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why you roll back.", details={"fields": {"reason": ["Required."]}})
    with transaction.atomic():
        deployment, others, before = _manual(deployment, actor)
        if deployment.rollout_state not in ACTIVE_ROLLOUT_STATES:
            raise InvalidState(
                f"Deployment {deployment.pk}'s rollout is {deployment.get_rollout_state_display().lower()}; the "
                "version it replaced is scaled down. Deploy that version again (or use the registry's model "
                "rollback) instead.", details={"rollout_state": deployment.rollout_state})
        _rollback(deployment, others, actor=actor, before=before, reason=reason, automatic=False)
    return deployment


# --- After the rollout ------------------------------------------------------------------------

def deployments_check_health(*, window: timedelta = HEALTH_WINDOW) -> dict:
    """Mark serving deployments degraded when their live numbers break their
    thresholds over ``window``, and healthy again when they recover."""
    from apps.serving.selectors import deployment_window_stats

    changed = {"degraded": 0, "recovered": 0}
    start = timezone.now() - window
    candidates = Deployment.objects.filter(status__in=(DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED),
                                           rollout_state=RolloutState.COMPLETED, traffic_weight__gt=0)
    for candidate in candidates.only("pk", "config", "status"):
        stats = deployment_window_stats(deployment_id=candidate.pk, start=start)
        verdict = judge(stats, candidate.config)
        if not verdict.enough:
            continue
        wanted = DeploymentStatus.DEGRADED if verdict.breach else DeploymentStatus.HEALTHY
        if wanted == candidate.status:
            continue
        with transaction.atomic():
            deployment, _others = _lock(candidate.pk)
            if deployment.status not in (DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED) or \
                    deployment.status == wanted:
                continue
            before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
            deployment.status = wanted
            deployment.status_reason = verdict.breach or ""
            _save(deployment, "status", "status_reason")
            kind = "degraded" if verdict.breach else "recovered"
            _record(deployment, kind=kind, actor=None, before=before,
                    message=verdict.breach or "Live numbers are back within the thresholds.",
                    data={"stats": stats.as_dict()})
            transaction.on_commit(bump_routing_stamp)
            changed[kind] += 1
    return changed


def deployments_note_stage_change(*, model_version_id: int, from_stage: str, to_stage: str) -> int:
    """A deployed version left the stage its endpoint requires (e.g. archived
    after a newer version reached Production): flag the deployments, without
    cutting traffic (that would take the lab's endpoint down); the timeline
    and webhooks tell the team to deploy the current version."""
    flagged = 0
    live = Deployment.objects.filter(model_version_id=model_version_id, status__in=LIVE_STATUSES)
    for candidate in live.select_related("endpoint", "model_version"):
        allowed = ((Stage.PRODUCTION,) if candidate.endpoint.environment == Environment.PRODUCTION
                   else (Stage.STAGING, Stage.PRODUCTION))
        if to_stage in allowed:
            continue
        if (candidate.endpoint.environment == Environment.PRODUCTION
                and candidate.endpoint.follow_mode == FollowMode.AUTO
                and ModelVersion.objects.filter(registered_model_id=candidate.model_version.registered_model_id,
                                                stage=Stage.PRODUCTION).exists()):
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
            _record(deployment, kind="version_stage_changed", actor=None, before=before,
                    message=deployment.status_reason, data={"from_stage": from_stage, "to_stage": to_stage})
            flagged += 1
    return flagged


def rollouts_resume(*, due_only: bool = False) -> int:
    """Re-send one tick per active rollout (a worker just started, or beat
    found a tick overdue). Ticks for a state that moved on are ignored."""
    now = timezone.now()
    active = Deployment.objects.filter(rollout_state__in=ACTIVE_ROLLOUT_STATES, next_check_at__isnull=False)
    if due_only:
        # A tick is normally sent at the transition; one overdue by this much was lost.
        active = active.filter(next_check_at__lte=now - timedelta(seconds=5))
    sent = 0
    for pk, seq, due in active.values_list("pk", "rollout_seq", "next_check_at"):
        send_tick(pk, seq, (due - now).total_seconds())
        sent += 1
    return sent


__all__ = [
    "check_version_allowed",
    "deployment_build",
    "deployment_dry_run",
    "deployment_pause",
    "deployment_payload",
    "deployment_promote",
    "deployment_resume",
    "deployment_rollback",
    "deployment_start",
    "deployments_check_health",
    "deployments_note_stage_change",
    "model_version_resolve",
    "rollout_queue",
    "rollout_tick",
    "rollouts_resume",
    "send_tick",
]
