"""The bake: watching a new version after its rollout completed.

Every strategy, ``immediate`` included, ends in a bake of ``bake_minutes``
(deployment config, else the endpoint's, else ``DEPLOYMENT_BAKE_MINUTES``)
when something served before it. During the bake the deployment(s) it
replaced stay ready (status superseded, not scaled down), and the periodic
health check judges the new version's live numbers over the last
``HEALTH_WINDOW`` (never before the bake began) with its own thresholds
(``max_error_rate``, ``max_p95_ms``, once ``min_requests`` were seen). A
breach restores the previous deployment's traffic at once — the post-promotion
analysis of Argo Rollouts. When the bake ends the deployment is baked: the
replaced ones are scaled down and a breach only marks it degraded.

An automatic bake rollback never restores a version the registry rolled back
from (``ModelVersion.rolled_back_at``): that would undo a human decision. The
new deployment is then only marked degraded.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.core.services import snapshot
from apps.registry.selectors import production_version
from apps.serving.choices import DeploymentStatus, RolloutState
from apps.serving.models import Deployment
from apps.serving.policy import judge
from apps.serving.runtime import bump_routing_stamp
from apps.serving.services._transition import (
    DEPLOYMENT_AUDIT_FIELDS,
    HEALTH_WINDOW,
    _bump,
    _lock,
    _record,
    _save,
    _scale_down_later,
)
from apps.serving.services.rollouts import end_bake


def _baking():
    return Deployment.objects.filter(bake_until__isnull=False, baked_at__isnull=True,
                                     rollout_state=RolloutState.COMPLETED,
                                     status__in=(DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED))


def deployments_check_bake(*, now: datetime | None = None, actor=None) -> dict:
    """Judge every baking deployment once: roll it back if it breaks its
    thresholds, or close its bake when the time is up (``actor`` ``None``:
    the platform, each minute)."""
    from apps.serving.selectors import deployment_window_stats

    now = now or timezone.now()
    changed = {"rolled_back": 0, "baked": 0}
    for candidate in _baking().only("pk", "config", "bake_until", "finished_at"):
        if candidate.bake_until <= now:
            with transaction.atomic():
                deployment, _others = _lock(candidate.pk)
                if deployment.baking:
                    end_bake(deployment, message="Baked: no threshold broken during the bake; the previous "
                                                 "version is scaled down.")
                    changed["baked"] += 1
            continue
        start = max(candidate.finished_at or now - HEALTH_WINDOW, now - HEALTH_WINDOW)
        stats = deployment_window_stats(deployment_id=candidate.pk, start=start, end=now)
        verdict = judge(stats, candidate.config)
        if verdict.breach and _bake_rollback(candidate.pk, reason=verdict.breach, stats=stats.as_dict()):
            changed["rolled_back"] += 1
    return changed


def _bake_rollback(deployment_id: int, *, reason: str, stats: dict) -> bool:
    from apps.serving.services.following import endpoint_announce_stale

    with transaction.atomic():
        deployment, others = _lock(deployment_id)
        if not deployment.baking:
            return False
        baseline = {int(k): float(v) for k, v in (deployment.rollout_baseline or {}).items() if float(v) > 0}
        previous = list(Deployment.objects.select_for_update(of=("self",))
                        .select_related("endpoint", "model_version__registered_model")
                        .filter(pk__in=baseline, endpoint_id=deployment.endpoint_id,
                                status=DeploymentStatus.SUPERSEDED).order_by("id"))
        if not previous or any(p.model_version.rolled_back_at is not None for p in previous):
            return False
        before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
        message = (f"Rolled back automatically during its bake: {reason}. Restored "
                   f"{', '.join(str(p.model_version) for p in previous)}.")
        for other in others:  # anything deployed next to it since keeps no traffic
            if other.traffic_weight:
                other.traffic_weight = 0.0
                _save(other, "traffic_weight")
        for restored in previous:
            restored_before = snapshot(restored, DEPLOYMENT_AUDIT_FIELDS)
            restored.traffic_weight = baseline[restored.pk]
            restored.status = DeploymentStatus.HEALTHY
            restored.status_reason = f"Restored: deployment {deployment.pk} broke its thresholds during its bake."
            _save(restored, "traffic_weight", "status", "status_reason")
            _record(restored, kind="restored", actor=None, before=restored_before, message=restored.status_reason,
                    data={"rolled_back": deployment.pk})
        deployment.traffic_weight = 0.0
        deployment.status = DeploymentStatus.ROLLED_BACK
        deployment.status_reason = reason
        deployment.baked_at = None
        _save(deployment, "traffic_weight", "status", "status_reason")
        _bump(deployment, state=RolloutState.ROLLED_BACK, next_check_in=None)
        transaction.on_commit(bump_routing_stamp)
        data = {"automatic": True, "bake": True, "stats": stats,
                "restored": {str(k): v for k, v in baseline.items()}}
        _record(deployment, kind="rolled_back", actor=None, before=before, message=message, data=data)
        _scale_down_later(deployment)
        # A production endpoint may now serve a version that left Production
        # meanwhile: say so, rather than leave it unnoticed.
        current = production_version(registered_model=deployment.model_version.registered_model)
        endpoint_announce_stale(endpoint=deployment.endpoint, current=current,
                                reason=f"{deployment.endpoint.slug} went back to "
                                       f"{', '.join(str(p.model_version) for p in previous)} after "
                                       f"{deployment.model_version} broke its thresholds during its bake.")
    return True


__all__ = ["deployments_check_bake"]
