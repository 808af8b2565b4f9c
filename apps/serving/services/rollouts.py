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

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.core.errors import InvalidState, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import snapshot
from apps.serving.choices import ACTIVE_ROLLOUT_STATES, DeploymentStatus, RolloutState, Strategy
from apps.serving.models import Deployment
from apps.serving.policy import judge
from apps.serving.runtime import bump_routing_stamp
from apps.serving.services._transition import (
    DEPLOYMENT_AUDIT_FIELDS,
    _bump,
    _check_interval,
    _lock,
    _record,
    _save,
    _scale_down_later,
    _schedule_tick,
    _set_weights,
    send_tick,
)
from apps.serving.services.splits import endpoint_split_guard


def rollout_tick(*, deployment_id: int, seq: int, actor=None) -> str:
    """Advance one rollout by one step if its tick is due. Returns what it
    did. The rollout moves on its own: ``actor`` is ``None`` (the platform),
    and its transitions are recorded without one."""
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
    from apps.serving.judges import canary_analysis
    from apps.serving.selectors import deployment_window_stats

    current = Deployment.objects.only("step_started_at", "rollout_state", "rollout_step", "config",
                                      "rollout_baseline").get(pk=deployment_id)
    # Read the live numbers before taking locks: it may scan many log rows.
    judged = current.rollout_state == RolloutState.OBSERVING or current.rollout_step >= 0
    stats = analysis = None
    if judged and current.step_started_at is not None:
        stats = deployment_window_stats(deployment_id=deployment_id, start=current.step_started_at)
        analysis = canary_analysis(deployment=current, start=current.step_started_at)
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
        verdict = judge(stats, config, analysis_breach=analysis) if stats is not None else None
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
        endpoint_split_guard(endpoint_id=deployment.endpoint_id)
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
        endpoint_split_guard(endpoint_id=deployment.endpoint_id)
        if deployment.rollout_state not in ACTIVE_ROLLOUT_STATES:
            raise InvalidState(
                f"Deployment {deployment.pk}'s rollout is {deployment.get_rollout_state_display().lower()}; the "
                "version it replaced is scaled down. Deploy that version again (or use the registry's model "
                "rollback) instead.", details={"rollout_state": deployment.rollout_state})
        _rollback(deployment, others, actor=actor, before=before, reason=reason, automatic=False)
    return deployment


def rollouts_resume(*, due_only: bool = False, actor=None) -> int:
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
