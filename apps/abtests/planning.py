"""The power and sample-size panel and the planner: how many units a test
needs to detect its minimum detectable effect, how long that takes at the
endpoint's current traffic (units a day over the last 7 days, through
serving's :func:`apps.serving.traffic.endpoint_traffic_per_day`), and the
power a running test has reached. Reads only; the arithmetic is
``stats.power``'s (normal approximation, two-sided)."""

from __future__ import annotations

import contextlib
import math

from django.core.cache import cache

from apps.abtests.choices import PROPORTION_METRICS
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.abtests.stats import StatsInputError, power, sample_size_per_arm
from apps.serving.models import Endpoint
from apps.serving.traffic import endpoint_traffic_per_day

# What a proportion is assumed to be before the test has data of its own.
TRAFFIC_CACHE_SECONDS = 300
ASSUMED_BASELINES = {"accuracy": 0.8, "error_rate": 0.01, "positive_rate": 0.5, "review_rate": 0.1}


def sample_plan(*, endpoint: Endpoint, metric: str, mde: float, alpha: float, power_target: float,
                weights: list[float], baseline: float | None = None, std_dev: float | None = None,
                traffic: dict | None = None) -> dict:
    """Units needed (per arm and in total, the smallest arm setting the pace)
    and the expected duration at the endpoint's traffic. A proportion's
    variance is p(1 - p); a mean needs its standard deviation."""
    if traffic is None:
        # Counting a week of distinct units is not free on a busy endpoint: once per endpoint in 5 minutes.
        traffic = cache.get_or_set(f"abtests:traffic:{endpoint.pk}",
                                   lambda: endpoint_traffic_per_day(endpoint=endpoint), TRAFFIC_CACHE_SECONDS)
    plan = {"metric": metric, "mde": mde, "alpha": alpha, "power": power_target, "traffic": traffic,
            "baseline": baseline, "error": None, "per_arm": None, "total": None, "days": None}
    if baseline is None:
        baseline = ASSUMED_BASELINES.get(metric)
        plan["baseline"], plan["assumed"] = baseline, True
    if baseline is None:
        plan["error"] = "give the metric's current mean and standard deviation"
        return plan
    variance = baseline * (1 - baseline) if metric in PROPORTION_METRICS else (std_dev or 0.0) ** 2
    try:
        per_arm = sample_size_per_arm(mde=mde, baseline_mean=baseline, variance=variance, alpha=alpha,
                                      power=power_target)
    except StatsInputError as exc:
        plan["error"] = f"{exc.field}: {exc.message}"
        return plan
    smallest = min(weights) / sum(weights)
    total = math.ceil(per_arm / smallest)
    plan.update(per_arm=per_arm, total=total,
                days=(total / traffic["units_per_day"]) if traffic["units_per_day"] else None)
    return plan


def _control_moments(ab_test: ABTest) -> tuple[float, float, int] | None:
    rows = {row.arm.index: row for row in ABTestArmStatistic.objects.filter(
        arm__ab_test=ab_test, metric=ab_test.primary_metric).select_related("arm")}
    control = rows.get(0)
    if control is None or control.n < 2:
        return None
    mean = control.sum / control.n
    if ab_test.primary_metric in PROPORTION_METRICS:
        variance = mean * (1 - mean)
    else:
        variance = max(control.sum_squares - control.n * mean * mean, 0.0) / (control.n - 1)
    smallest_n = min((row.n for row in rows.values()), default=0)
    return mean, variance, smallest_n


def ab_test_power_panel(*, ab_test: ABTest) -> dict:
    """The test page's panel: the plan from the control's observed mean and
    variance (or an assumed baseline before there is data), the power reached
    with the smallest arm's units so far, and the days still needed."""
    arms = list(ab_test.arms.all())
    moments = _control_moments(ab_test)
    baseline, std_dev, smallest_n = (None, None, 0) if moments is None else (
        moments[0], math.sqrt(moments[1]), moments[2])
    plan = sample_plan(endpoint=ab_test.endpoint, metric=ab_test.primary_metric,
                       mde=ab_test.minimum_detectable_effect, alpha=ab_test.alpha, power_target=ab_test.power,
                       weights=[arm.weight for arm in arms], baseline=baseline, std_dev=std_dev)
    plan["observed"] = moments is not None
    plan["smallest_arm_n"] = smallest_n
    plan["achieved_power"] = None
    if moments is not None and moments[1] > 0 and smallest_n > 0:
        with contextlib.suppress(StatsInputError):
            plan["achieved_power"] = power(n_per_arm=smallest_n, mde=ab_test.minimum_detectable_effect,
                                           baseline_mean=moments[0], variance=moments[1], alpha=ab_test.alpha)
    if plan["per_arm"] and plan["traffic"]["units_per_day"]:
        share = min(arm.weight for arm in arms) / sum(arm.weight for arm in arms)
        missing = max(plan["per_arm"] - smallest_n, 0)
        plan["days_left"] = missing / (plan["traffic"]["units_per_day"] * share)
    return plan
