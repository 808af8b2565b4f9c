"""An A/B test's life: create, (approve,) start, stop, conclude or abort.

    draft ──start──> running ──stop──> stopped ──conclude──> concluded
      │  (production endpoint, a challenger outside Production)
      └─start──> pending_approval ──approve (an Approver, not the creator)──> running
    any state before concluded ──abort──> aborted

Each transition locks the test row, checks its state, writes the change and
its audit event in one transaction. Starting asks serving to hold the arms
as a split (its own salt); stopping and aborting a running test give all
traffic back to the control. Rights go through the endpoint: seeing a test
needs ``serving.view_endpoint``, creating and steering it
``serving.deploy_endpoint``, approving it ``registry.approve_registeredmodel``
on every challenger's model.
"""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone

from apps.abtests.choices import OPEN_STATUSES, TestCorrection, TestEngine, TestKind, TestMetric, TestStatus
from apps.abtests.models import ABTest, ABTestArm
from apps.core import events
from apps.core.errors import InvalidState, PermissionDenied, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.registry.choices import Stage
from apps.serving import services as serving
from apps.serving.choices import Environment
from apps.serving.models import Endpoint

AUDIT_FIELDS = ["status", "approved_by", "split_id", "started_at", "stopped_at", "concluded_at", "decision"]
ARM_LIMITS = {TestKind.CHAMPION_CHALLENGER: (2, 2), TestKind.MULTIVARIATE: (2, 6)}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": {field: [message]}})


def _choice(field: str, value, choices) -> str:
    if value not in choices.values:
        raise _invalid(field, f"must be one of {', '.join(choices.values)}")
    return value


def _metric_list(field: str, values) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise _invalid(field, "must be a list of metrics")
    cleaned = [_choice(f"{field}[{i}]", value, TestMetric) for i, value in enumerate(values)]
    if len(set(cleaned)) != len(cleaned):
        raise _invalid(field, "names a metric twice")
    return cleaned


def _number(field: str, value, low: float, high: float, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(field, "must be a number")
    if value < low or value > high or (open_low and value == low):
        raise _invalid(field, f"must be {'above' if open_low else 'at least'} {low:g} and at most {high:g}")
    return float(value)


def _clean_arms(kind: str, arms, actor) -> list[dict]:
    low, high = ARM_LIMITS[kind]
    if not isinstance(arms, list) or not low <= len(arms) <= high:
        raise _invalid("arms", f"a {TestKind(kind).label.lower()} test has {low}" + (f" to {high}" if high != low
                                                                                       else "") + " arms")
    cleaned, seen = [], set()
    for i, arm in enumerate(arms):
        version = arm.get("model_version")
        if version is None:
            raise _invalid(f"arms[{i}].model_version", "required")
        require_perm(actor, "registry.view_registeredmodel", version.registered_model)
        if version.pk in seen:
            raise _invalid(f"arms[{i}].model_version", "each arm must test a different model version")
        seen.add(version.pk)
        weight = _number(f"arms[{i}].weight", arm.get("weight", 1), 0, 1e6, open_low=True)
        name = (arm.get("name") or ("control" if i == 0 else f"{version.registered_model.name} v{version.version}"))
        cleaned.append({"index": i, "name": str(name)[:100], "model_version": version, "weight": weight})
    return cleaned


def ab_test_create(*, endpoint: Endpoint, name: str, arms: list[dict], actor, kind: str = TestKind.CHAMPION_CHALLENGER,
                   hypothesis: str = "", primary_metric: str = TestMetric.ACCURACY,
                   secondary_metrics: list | None = None, guardrail_metrics: list | None = None,
                   minimum_detectable_effect: float = 0.02, alpha: float = 0.05, power: float = 0.8,
                   engine: str = TestEngine.SEQUENTIAL, correction: str = TestCorrection.HOLM) -> ABTest:
    """A draft test on ``endpoint``. ``arms`` = [{"model_version", "weight",
    "name"?}, ...], arm 0 the control (usually what the endpoint serves)."""
    require_perm(actor, "serving.deploy_endpoint", endpoint)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise _invalid("name", "required, at most 200 characters")
    kind = _choice("kind", kind, TestKind)
    fields = {
        "kind": kind,
        "hypothesis": (hypothesis or "").strip(),
        "primary_metric": _choice("primary_metric", primary_metric, TestMetric),
        "secondary_metrics": _metric_list("secondary_metrics", secondary_metrics),
        "guardrail_metrics": _metric_list("guardrail_metrics", guardrail_metrics),
        "minimum_detectable_effect": _number("minimum_detectable_effect", minimum_detectable_effect, 0, 10,
                                             open_low=True),
        "alpha": _number("alpha", alpha, 0.0001, 0.5),
        "power": _number("power", power, 0.5, 0.999),
        "engine": _choice("engine", engine, TestEngine),
        "correction": _choice("correction", correction, TestCorrection),
    }
    cleaned = _clean_arms(kind, arms, actor)
    with transaction.atomic():
        test = ABTest.objects.create(endpoint=endpoint, name=name, created_by=actor, **fields)
        ABTestArm.objects.bulk_create([ABTestArm(ab_test=test, **arm) for arm in cleaned])
        audit_record(actor=actor, action="ab_test.created", target=test, message=f"{test.label} on {endpoint.slug}",
                     after={**snapshot(test, ["endpoint", "kind", "primary_metric", "engine", "correction", "alpha",
                                              "power", "minimum_detectable_effect"]),
                            "arms": [{"model_version_id": a["model_version"].pk, "weight": a["weight"]}
                                     for a in cleaned]})
    return test


def ab_test_needs_approval(ab_test: ABTest) -> bool:
    """A production endpoint serves a version outside Production only as the
    challenger of an approved test."""
    if ab_test.endpoint.environment != Environment.PRODUCTION:
        return False
    return any(arm.model_version.stage != Stage.PRODUCTION for arm in _arms(ab_test)[1:])


def _arms(ab_test: ABTest) -> list[ABTestArm]:
    return list(ab_test.arms.select_related("model_version__registered_model").order_by("index"))


def _lock(ab_test: ABTest, allowed: tuple, verb: str) -> tuple[ABTest, dict]:
    locked = ABTest.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=ab_test.pk)
    if locked.status not in allowed:
        raise InvalidState(f"{locked.label} is {locked.get_status_display().lower()}; it cannot be {verb}.",
                           details={"status": locked.status})
    return locked, snapshot(locked, AUDIT_FIELDS)


def _run(ab_test: ABTest, *, actor, split_actor, before: dict) -> None:
    """Hold the arms as a split and mark the test running (locked, in the caller's transaction)."""
    split = serving.endpoint_split_start(
        endpoint=ab_test.endpoint, owner_label=ab_test.label, actor=split_actor, approved_by=ab_test.approved_by,
        arms=[(arm.model_version, arm.weight) for arm in _arms(ab_test)])
    ab_test.split_id = split.pk
    ab_test.status = TestStatus.RUNNING
    ab_test.started_at = timezone.now()
    ab_test.save(update_fields=["split_id", "status", "started_at", "updated_at"])
    audit_record(actor=actor, action="ab_test.started", target=ab_test, before=before,
                 after=snapshot(ab_test, AUDIT_FIELDS), message=f"{ab_test.label} started (split {split.pk}).")


def ab_test_start(*, ab_test: ABTest, actor) -> ABTest:
    """Start a draft test, or ask for its approval first when a challenger on
    a production endpoint is not in Production."""
    require_perm(actor, "serving.deploy_endpoint", ab_test.endpoint)
    with transaction.atomic():
        ab_test, before = _lock(ab_test, (TestStatus.DRAFT,), "started")
        if ab_test_needs_approval(ab_test):
            ab_test.status = TestStatus.PENDING_APPROVAL
            ab_test.save(update_fields=["status", "updated_at"])
            audit_record(actor=actor, action="ab_test.approval_requested", target=ab_test, before=before,
                         after=snapshot(ab_test, AUDIT_FIELDS),
                         message=f"{ab_test.label} waits for an Approver: a challenger is not in Production.")
            events.publish("abtests.ab_test.approval_requested", _payload(ab_test))
        else:
            _run(ab_test, actor=actor, split_actor=actor, before=before)
    return ab_test


def ab_test_approve(*, ab_test: ABTest, actor) -> ABTest:
    """Approve a production test (four eyes: not its creator; the approve right
    on every challenger's model) and start it. The split is started in the
    name of the creator, who asked for it with their deploy right; the
    approval is the authorised decision that lets the challengers serve."""
    with transaction.atomic():
        ab_test, before = _lock(ab_test, (TestStatus.PENDING_APPROVAL,), "approved")
        if ab_test.created_by_id == actor.pk:
            raise PermissionDenied("Four eyes: someone other than the test's creator approves it.",
                                   code="four_eyes", details={"created_by": ab_test.created_by.get_username()})
        for arm in _arms(ab_test)[1:]:
            require_perm(actor, "registry.approve_registeredmodel", arm.model_version.registered_model)
        ab_test.approved_by = actor
        ab_test.approved_at = timezone.now()
        ab_test.save(update_fields=["approved_by", "approved_at", "updated_at"])
        arms = ", ".join(f"{arm.name} ({arm.model_version}) {arm.weight:g}" for arm in _arms(ab_test))
        audit_record(actor=actor, action="ab_test.approved", target=ab_test, before=before,
                     after=snapshot(ab_test, AUDIT_FIELDS), message=f"{ab_test.label} approved: {arms}.")
        _run(ab_test, actor=actor, split_actor=ab_test.created_by, before=snapshot(ab_test, AUDIT_FIELDS))
    return ab_test


def _payload(ab_test: ABTest, **extra) -> dict:
    return {"ab_test_id": ab_test.pk, "name": ab_test.name, "endpoint": ab_test.endpoint.slug,
            "status": ab_test.status, **extra}


def _end(ab_test: ABTest, *, actor, status: str, reason: str, action: str, before: dict) -> None:
    if ab_test.status == TestStatus.RUNNING:
        serving.endpoint_split_end(endpoint=ab_test.endpoint, actor=actor, keep=0, reason=reason)
        ab_test.stopped_at = timezone.now()
    ab_test.status = status
    ab_test.stop_reason = reason
    ab_test.save(update_fields=["status", "stopped_at", "stop_reason", "updated_at"])
    audit_record(actor=actor, action=action, target=ab_test, before=before, after=snapshot(ab_test, AUDIT_FIELDS),
                 message=f"{ab_test.label} {status}: {reason}" if reason else f"{ab_test.label} {status}.")
    # Webhooks hear of a stop once, as ``abtest.stopped`` (below).
    events.publish(f"abtests.ab_test.{status}", _payload(ab_test, reason=reason),
                   webhooks=status != TestStatus.STOPPED)
    if status == TestStatus.STOPPED:
        # The notification teams subscribe to (webhooks), whoever stopped it: a guardrail or a person.
        events.publish("abtest.stopped", {
            "ab_test_id": ab_test.pk, "endpoint": ab_test.endpoint.slug, "reason": reason,
            "arms": [{"index": arm.index, "name": arm.name, "model_version_id": arm.model_version_id,
                      "model": arm.model_version.registered_model.name, "version": arm.model_version.version,
                      "weight": arm.weight} for arm in _arms(ab_test)]})


def ab_test_stop(*, ab_test: ABTest, actor, reason: str = "") -> ABTest:
    """Stop a running test: the control takes all traffic again."""
    require_perm(actor, "serving.deploy_endpoint", ab_test.endpoint)
    with transaction.atomic():
        ab_test, before = _lock(ab_test, (TestStatus.RUNNING,), "stopped")
        _end(ab_test, actor=actor, status=TestStatus.STOPPED, reason=(reason or "").strip(), action="ab_test.stopped",
             before=before)
    return ab_test


def ab_test_abort(*, ab_test: ABTest, actor, reason: str) -> ABTest:
    """Give a test up without a decision (a running one restores the control)."""
    require_perm(actor, "serving.deploy_endpoint", ab_test.endpoint)
    reason = (reason or "").strip()
    if not reason:
        raise _invalid("reason", "say why the test is aborted")
    with transaction.atomic():
        ab_test, before = _lock(ab_test, OPEN_STATUSES, "aborted")
        _end(ab_test, actor=actor, status=TestStatus.ABORTED, reason=reason, action="ab_test.aborted", before=before)
    return ab_test


def ab_test_guardrails_check(*, ab_test_id: int) -> list[dict]:
    """Stop a running test on its own when a guardrail breaks (a challenger
    significantly worse on a guardrail metric): the control takes all traffic
    again, and ``abtests.ab_test.stopped`` tells the team. The platform acts
    (no actor). Returns the breaches."""
    from apps.abtests.selectors import ab_test_guardrail_breaches

    with transaction.atomic():
        ab_test = ABTest.objects.select_for_update(of=("self",)).select_related("endpoint").filter(
            pk=ab_test_id).first()
        if ab_test is None or ab_test.status != TestStatus.RUNNING:
            return []
        breaches = ab_test_guardrail_breaches(ab_test=ab_test)
        if breaches:
            reason = "Guardrail broken: " + "; ".join(
                f"{b['arm']} is significantly worse on {b['metric']} (difference {b['estimate']:+.4g})"
                for b in breaches)
            _end(ab_test, actor=None, status=TestStatus.STOPPED, reason=reason, action="ab_test.stopped",
                 before=snapshot(ab_test, AUDIT_FIELDS))
    return breaches


def ab_test_conclude(*, ab_test: ABTest, actor, winner: int | None = None, summary: str = "") -> ABTest:
    """Record the decision of a stopped test with the results it rests on
    (frozen). A winner needs its primary metric significant against the
    control at the test's alpha (after correction) and no sample-ratio
    mismatch; otherwise the test concludes "no detectable difference"."""
    from apps.abtests.selectors import ab_test_results
    from apps.abtests.services.decisions import decision_evidence
    from apps.abtests.services.statistics import ab_test_stats_update

    require_perm(actor, "serving.deploy_endpoint", ab_test.endpoint)
    ab_test_stats_update(ab_test_id=ab_test.pk)  # what was logged up to the stop
    with transaction.atomic():
        ab_test, before = _lock(ab_test, (TestStatus.STOPPED,), "concluded")
        results = ab_test_results(ab_test=ab_test)
        if winner is not None:
            arms = {arm.index: arm for arm in _arms(ab_test)}
            if isinstance(winner, bool) or not isinstance(winner, int) or winner not in arms:
                raise _invalid("winner", f"must be an arm index from 0 to {len(arms) - 1}, or null")
            if winner != 0:
                primary = results.get("primary") or {}
                if (results.get("srm") or {}).get("mismatch"):
                    raise InvalidState("The test has a sample-ratio mismatch: its assignment is broken, so it "
                                       "cannot name a winner.", code="srm_mismatch")
                significant = [c for c in primary.get("comparisons", [])
                               if c.get("arm_index") == winner and c.get("significant") and (c.get("estimate") or 0)
                               * results.get("direction", 1) > 0]
                if not significant:
                    raise InvalidState(f"Arm {winner} is not a significant winner on {ab_test.primary_metric} at "
                                       f"alpha {ab_test.alpha:g}.", code="not_significant")
        ab_test.decision = decision_evidence(ab_test=ab_test, winner=winner, summary=(summary or "").strip())
        ab_test.result_snapshot = results
        ab_test.status = TestStatus.CONCLUDED
        ab_test.concluded_at = timezone.now()
        ab_test.save(update_fields=["decision", "result_snapshot", "status", "concluded_at", "updated_at"])
        audit_record(actor=actor, action="ab_test.concluded", target=ab_test, before=before,
                     after=snapshot(ab_test, AUDIT_FIELDS), message=f"{ab_test.label}: {ab_test.decision['summary']}")
        events.publish("abtests.ab_test.concluded", _payload(ab_test, decision=ab_test.decision))
    return ab_test


__all__ = ["ab_test_abort", "ab_test_approve", "ab_test_conclude", "ab_test_create", "ab_test_guardrails_check",
           "ab_test_needs_approval", "ab_test_start", "ab_test_stop"]
