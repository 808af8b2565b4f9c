"""What a concluded test leads to: the evidence of its decision, and shipping
its winner.

    concluded (winner) ──ship──> promotion request (registry: gates, four eyes)
        ──approved──> deployment of the winner through serving (default: a
                      canary judged against the old version by the sequential test)
        ──rejected / cancelled──> ship declined
        ──deployment refused (a rollout or split on the endpoint)──> ship failed

The state of the ship lives in ``ABTest.decision["ship"]``. The registry does
not know about tests: abtests subscribes (``AbtestsConfig.ready``) to the
registry's promotion events and finds the test by the request's id; the
deployment runs in a task, in the name of the person who shipped (who holds
the deploy right on the endpoint). Every step is audited on the test.
"""

from __future__ import annotations

import math
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.abtests.choices import PROPORTION_METRICS, TestStatus
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.abtests.stats import StatsInputError
from apps.abtests.stats import power as power_of
from apps.core import events
from apps.core.errors import ApplicationError, InvalidState, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.registry.choices import RegistryEvent, Stage
from apps.registry.services.promotion_requests import promotion_request_create
from apps.serving import services as serving
from apps.serving.policy import ConfigError, clean_config

SHIP_REQUESTED, SHIP_DEPLOYED, SHIP_DECLINED, SHIP_FAILED = "requested", "deployed", "declined", "failed"
DEFAULT_SHIP_STRATEGY = "canary"
DEFAULT_SHIP_CONFIG = {"analysis": "sequential"}


def achieved_power(*, ab_test: ABTest) -> float | None:
    """Power the test had to detect its minimum detectable effect (relative to
    the control's mean) on the primary metric with the units it collected:
    the smallest arm's n, the control's variance, the test's alpha (see
    ``stats.power``). None while an arm has fewer than 2 units or the control
    has no spread."""
    arms = list(ab_test.arms.order_by("index"))
    rows = {row.arm_id: row for row in ABTestArmStatistic.objects.filter(arm__in=arms,
                                                                         metric=ab_test.primary_metric)}
    counted = [rows.get(arm.pk) for arm in arms]
    if any(row is None or row.n < 2 for row in counted):
        return None
    control = counted[0]
    mean = control.sum / control.n
    if ab_test.primary_metric in PROPORTION_METRICS:
        variance = mean * (1 - mean)
    else:
        variance = (control.sum_squares - control.sum ** 2 / control.n) / (control.n - 1)
    try:
        value = power_of(n_per_arm=min(row.n for row in counted), mde=ab_test.minimum_detectable_effect,
                         baseline_mean=mean, variance=variance, alpha=ab_test.alpha)
    except StatsInputError:
        return None
    return round(value, 4) if math.isfinite(value) else None


def decision_evidence(*, ab_test: ABTest, winner: int | None, summary: str) -> dict:
    """The decision a conclusion records. Without a winner it says "no
    detectable difference" and how likely the test was to find the effect it
    was sized for (so a reader can tell "no effect" from "too few units")."""
    if winner not in (None, 0):
        return {"winner": winner, "summary": summary or f"arm {winner} wins"}
    reached = achieved_power(ab_test=ab_test)
    default = "no detectable difference" + (
        f" (achieved power {reached:.0%} for a {ab_test.minimum_detectable_effect:g} relative effect "
        f"at alpha {ab_test.alpha:g})" if reached is not None else " (too few units to compute its power)")
    return {"winner": winner, "summary": summary or default, "no_detectable_difference": True,
            "achieved_power": reached, "target_power": ab_test.power}


def _ship_record(ab_test: ABTest, *, actor, action: str, ship: dict, message: str) -> None:
    before = dict(ab_test.decision.get("ship") or {})
    ab_test.decision = {**ab_test.decision, "ship": ship}
    ab_test.save(update_fields=["decision", "updated_at"])
    audit_record(actor=actor, action=action, target=ab_test, before={"ship": before} if before else None,
                 after={"ship": ship}, message=message)


def ab_test_ship(*, ab_test: ABTest, actor, strategy: str = DEFAULT_SHIP_STRATEGY, config: dict | None = None):
    """Ship the winner of a concluded test: a promotion request to Production
    for the winning version (its gates are evaluated, another person approves
    it); the deployment follows the approval. A winner already in Production
    (a test on a staging endpoint) is deployed at once. Returns the promotion
    request, or None when the deployment started at once."""
    require_perm(actor, "serving.deploy_endpoint", ab_test.endpoint)
    config = DEFAULT_SHIP_CONFIG if config is None and strategy == DEFAULT_SHIP_STRATEGY else (config or {})
    try:
        clean_config(strategy, config)
    except ConfigError as exc:
        raise ValidationFailed(str(exc), details={"fields": {exc.field: [str(exc)]}}) from exc
    with transaction.atomic():
        ab_test = ABTest.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=ab_test.pk)
        winner = (ab_test.decision or {}).get("winner")
        if ab_test.status != TestStatus.CONCLUDED or winner in (None, 0):
            raise InvalidState(f"{ab_test.label} has no winner to ship: only a concluded test whose challenger "
                               "won can be shipped.", code="no_winner")
        ship = ab_test.decision.get("ship") or {}
        if ship.get("status") in (SHIP_REQUESTED, SHIP_DEPLOYED):
            raise InvalidState(f"{ab_test.label} is already shipped ({ship['status']}).", code="already_shipped",
                               details={"ship": ship})
        version = ab_test.arms.select_related("model_version__registered_model").get(index=winner).model_version
        ship = {"status": SHIP_REQUESTED, "model_version_id": version.pk, "strategy": strategy, "config": config,
                "shipped_by": actor.pk, "requested_at": timezone.now().isoformat(), "promotion_request_id": None}
        if version.stage == Stage.PRODUCTION:
            _ship_record(ab_test, actor=actor, action="ab_test.ship_requested", ship=ship,
                         message=f"{ab_test.label}: shipping {version}, already in Production.")
            _deploy(ab_test, version=version, actor=actor)
            return None
        request = promotion_request_create(
            version=version, actor=actor, target_stage=Stage.PRODUCTION,
            justification=f"A/B test {ab_test.label} on {ab_test.endpoint.slug} concluded: "
                          f"{ab_test.decision.get('summary', '')}")
        ship["promotion_request_id"] = request.pk
        _ship_record(ab_test, actor=actor, action="ab_test.ship_requested", ship=ship,
                     message=f"{ab_test.label}: promotion of {version} to Production requested "
                             f"(request {request.pk}).")
        events.publish("abtests.ab_test.ship_requested", {"ab_test_id": ab_test.pk, "endpoint": ab_test.endpoint.slug,
                                                          "promotion_request_id": request.pk,
                                                          "model_version_id": version.pk})
    return request


def _deploy(ab_test: ABTest, *, version, actor) -> None:
    """Start the winner's deployment (locked test, caller's transaction); a
    refusal by serving is recorded as a failed ship, not raised."""
    ship = dict(ab_test.decision["ship"])
    try:
        if actor is None:
            raise InvalidState("the person who shipped the test no longer exists")
        with transaction.atomic():
            deployment = serving.deployment_start(endpoint=ab_test.endpoint, model_version=version,
                                                  strategy=ship["strategy"], config=ship["config"], actor=actor)
    except ApplicationError as exc:  # a rollout or split in the way, a right withdrawn meanwhile
        ship.update(status=SHIP_FAILED, error=str(exc))
        _ship_record(ab_test, actor=actor, action="ab_test.ship_failed", ship=ship,
                     message=f"{ab_test.label}: {version} could not be deployed: {exc}")
        return
    ship.update(status=SHIP_DEPLOYED, deployment_id=deployment.pk, deployed_at=timezone.now().isoformat())
    _ship_record(ab_test, actor=actor, action="ab_test.shipped", ship=ship,
                 message=f"{ab_test.label}: {version} deploying to {ab_test.endpoint.slug} "
                         f"(deployment {deployment.pk}, {ship['strategy']}).")
    events.publish("abtests.ab_test.shipped", {"ab_test_id": ab_test.pk, "endpoint": ab_test.endpoint.slug,
                                               "deployment_id": deployment.pk, "model_version_id": version.pk})


def ab_test_ship_continue(*, promotion_request_id: int, approved: bool) -> str:
    """After the registry decided the promotion a ship asked for: deploy the
    winner (approved) or record that the ship was declined. The platform acts
    on the shipper's behalf (their deploy right is checked again). Idempotent:
    a ship that moved on is left alone."""
    with transaction.atomic():
        ab_test = (ABTest.objects.select_for_update(of=("self",)).select_related("endpoint")
                   .filter(decision__ship__promotion_request_id=promotion_request_id).first())
        if ab_test is None or ab_test.decision["ship"].get("status") != SHIP_REQUESTED:
            return "stale"
        ship = dict(ab_test.decision["ship"])
        shipper = get_user_model().objects.filter(pk=ship["shipped_by"]).first()
        if not approved:
            ship["status"] = SHIP_DECLINED
            _ship_record(ab_test, actor=None, action="ab_test.ship_declined", ship=ship,
                         message=f"{ab_test.label}: the promotion was not approved; nothing deployed.")
            return SHIP_DECLINED
        version = ab_test.arms.select_related("model_version__registered_model").get(
            model_version_id=ship["model_version_id"]).model_version
        _deploy(ab_test, version=version, actor=shipper)
        return ab_test.decision["ship"]["status"]


def on_promotion_decided(event: str, payload: dict) -> None:
    """Registry subscription: hand a decided promotion to the worker (only
    when a ship is waiting for it, to keep unrelated approvals free)."""
    from apps.abtests.tasks import ab_test_ship_continue as task

    request_id = payload.get("request_id")
    if request_id is None or not ABTest.objects.filter(decision__ship__promotion_request_id=request_id).exists():
        return
    approved = event == RegistryEvent.PROMOTION_REQUEST_APPROVED
    transaction.on_commit(partial(task.delay, request_id, approved))


__all__ = ["ab_test_ship", "ab_test_ship_continue", "achieved_power", "decision_evidence", "on_promotion_decided"]
