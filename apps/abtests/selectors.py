"""Reads of the A/B testing app. A test is seen by whoever may see its endpoint."""

from __future__ import annotations

import copy

from django.db.models import Prefetch, QuerySet

from apps.abtests.choices import PROPORTION_METRICS, TestMetric
from apps.abtests.models import ABTest, ABTestArm, ABTestArmStatistic
from apps.abtests.services.units import UNIT_METRICS
from apps.abtests.stats import StatsInputError, analyze
from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, require_perm

# Metrics where a lower value is better (a winner lowers them).
LOWER_IS_BETTER = frozenset({TestMetric.ERROR_RATE, TestMetric.LATENCY_MS, TestMetric.ABS_ERROR,
                             TestMetric.REVIEW_RATE})


def ab_test_list(*, user) -> QuerySet[ABTest]:
    arms = ABTestArm.objects.select_related("model_version__registered_model").order_by("index")
    return (filter_visible(user, ABTest.objects.all(), "serving.view_endpoint", via="endpoint")
            .select_related("endpoint", "created_by", "approved_by").prefetch_related(Prefetch("arms", queryset=arms)))


def ab_test_get(*, user, pk: int, perm: str = "serving.view_endpoint") -> ABTest:
    """The test ``pk``; 404 when missing or its endpoint is hidden, 403 without ``perm`` on it."""
    test = ABTest.objects.select_related("endpoint", "created_by", "approved_by").filter(pk=pk).first()
    if test is None:
        raise NotFound(f"No A/B test {pk}.")
    require_perm(user, perm, test.endpoint)
    return test


def _analysis(metric: str, rows: list) -> str:
    """How a metric is analysed: ``unit_cuped`` (the mean of the units' means,
    CUPED on their pre-period metric) when some units have a covariate;
    ``unit_ratio`` (delta method on per-unit sums) when units repeat;
    else ``request`` (each request its own unit, as gbstats takes them). A
    test whose rows predate the per-unit sums (units 0) stays on requests."""
    if any(row.units < 2 for row in rows):
        return "request"
    if UNIT_METRICS[metric][2] and all(row.covariate_units > 0 for row in rows):
        return "unit_cuped"
    if any(row.units < row.n for row in rows):
        return "unit_ratio"
    return "request"


def _arm_input(arm: ABTestArm, row, analysis: str) -> dict:
    if analysis == "unit_ratio":
        return {"name": arm.name, "n": row.units, "sum": row.sum, "sum_squares": row.unit_sum_squares,
                "denominator_sum": float(row.n), "denominator_sum_squares": row.unit_count_squares,
                "sum_product": row.unit_sum_product}
    if analysis == "unit_cuped":
        return {"name": arm.name, "n": row.units, "sum": row.unit_mean_sum, "sum_squares": row.unit_mean_sum_squares,
                "covariate_sum": row.covariate_sum, "covariate_sum_squares": row.covariate_sum_squares,
                "covariate_sum_product": row.covariate_sum_product}
    return {"name": arm.name, "n": row.n, "sum": row.sum, "sum_squares": row.sum_squares}


ANALYSIS_METRIC_TYPE = {"unit_ratio": "ratio", "unit_cuped": "mean"}


def _metric_result(ab_test: ABTest, metric: str, arms: list[ABTestArm], stats: dict, *,
                   engine: str | None = None, difference: str = "relative") -> dict:
    rows = [stats.get((arm.pk, metric)) for arm in arms]
    per_arm = [{"arm": arm.name, "arm_index": arm.index, "n": row.n if row else 0,
                "units": row.units if row else 0,
                "mean": (row.sum / row.n) if row and row.n else None} for arm, row in zip(arms, rows, strict=True)]
    result = {"metric": metric, "arms": per_arm, "direction": -1 if metric in LOWER_IS_BETTER else 1,
              "comparisons": [], "error": None, "analysis": "request"}
    if any(row is None or row.n < 2 for row in rows):
        result["error"] = "not enough data yet (every arm needs at least 2 observations)"
        return result
    analysis = result["analysis"] = _analysis(metric, rows)
    default_type = "proportion" if metric in PROPORTION_METRICS else "mean"
    total = sum(arm.weight for arm in arms)
    try:
        analysis_result = analyze(
            ANALYSIS_METRIC_TYPE.get(analysis, default_type),
            [_arm_input(arm, row, analysis) for arm, row in zip(arms, rows, strict=True)],
            expected_weights=[arm.weight / total for arm in arms], engine=engine or ab_test.engine,
            difference=difference,
            alpha=ab_test.alpha, correction={"bh": "benjamini-hochberg"}.get(ab_test.correction, ab_test.correction))
    except StatsInputError as exc:
        result["error"] = f"{exc.field}: {exc.message}"
        return result
    for index, comparison in enumerate(analysis_result["comparisons"], start=1):
        comparison["arm_index"] = index
    result.update(comparisons=analysis_result["comparisons"], srm=analysis_result["srm"])
    return result


def ab_test_results(*, ab_test: ABTest) -> dict:
    """Per-arm numbers and comparisons with the control for every metric of
    the test, from the incrementally kept statistics (no log scan). ``srm``
    is checked on the requests per arm of the error-rate counts."""
    arms = list(ab_test.arms.order_by("index"))
    stats = {(row.arm_id, row.metric): row for row in ABTestArmStatistic.objects.filter(arm__ab_test=ab_test)}
    metrics = [ab_test.primary_metric, *ab_test.secondary_metrics, *ab_test.guardrail_metrics]
    by_metric = {metric: _metric_result(ab_test, metric, arms, stats) for metric in dict.fromkeys(metrics)}
    primary = by_metric[ab_test.primary_metric]
    srm = _metric_result(ab_test, TestMetric.ERROR_RATE, arms, stats).get("srm") if ab_test.primary_metric != \
        TestMetric.ERROR_RATE else primary.get("srm")
    return {"primary": primary, "direction": primary["direction"], "srm": srm,
            "secondary": [by_metric[m] for m in ab_test.secondary_metrics],
            "guardrails": [by_metric[m] for m in ab_test.guardrail_metrics]}


def _smoothed(row):
    """A proportion with one success and one failure added (Agresti & Caffo
    2000), for guardrails only: a control without a single error has zero
    variance, which would leave a failing challenger unjudged. The two are
    added as two pseudo-units of one request each (x = 1 and x = 0, no
    pre-period covariate), so the per-unit analyses see them too."""
    if row.n < 2:
        return row
    row = copy.copy(row)
    row.n, row.sum, row.sum_squares = row.n + 2, row.sum + 1, row.sum_squares + 1
    if row.units:
        row.units += 2
        row.unit_sum_squares += 1
        row.unit_count_squares += 2
        row.unit_sum_product += 1
        row.unit_mean_sum += 1
        row.unit_mean_sum_squares += 1
    return row


def ab_test_guardrail_breaches(*, ab_test: ABTest) -> list[dict]:
    """Guardrail metrics on which a challenger is significantly worse than the
    control, judged by the sequential test whatever the test's engine, so
    that checking after every update keeps the false-alarm rate at alpha."""
    arms = list(ab_test.arms.order_by("index"))
    stats = {(row.arm_id, row.metric): _smoothed(row) if row.metric in PROPORTION_METRICS else row
             for row in ABTestArmStatistic.objects.filter(arm__ab_test=ab_test)}
    breaches = []
    for metric in ab_test.guardrail_metrics:
        # The absolute difference: a relative lift on a near-zero control
        # rate (errors) is too unstable to notice a version that fails.
        result = _metric_result(ab_test, metric, arms, stats, engine="sequential", difference="absolute")
        for comparison in result["comparisons"]:
            estimate = comparison.get("estimate")
            if comparison.get("significant") and estimate is not None and estimate * result["direction"] < 0:
                breaches.append({"metric": metric, "arm_index": comparison["arm_index"], "arm": comparison["arm"],
                                 "estimate": estimate, "ci": comparison.get("ci")})
    return breaches


def verdict(results: dict) -> str:
    """The primary metric's standing in words, for lists and banners."""
    if (results.get("srm") or {}).get("mismatch"):
        return "sample-ratio mismatch: assignment broken"
    primary = results.get("primary") or {}
    if primary.get("error"):
        return "collecting data"
    words = []
    for comparison in primary.get("comparisons", []):
        estimate = comparison.get("estimate")
        if comparison.get("significant") and estimate is not None:
            better = estimate * primary.get("direction", 1) > 0
            words.append(f"{comparison['arm']} {'better' if better else 'worse'} than control")
    return "; ".join(words) or "no significant difference yet"


def ab_test_verdicts(*, tests: list[ABTest]) -> dict[int, str]:
    """The current verdict of each test (its decision once concluded), with
    one query for all the tests' statistics; ``tests`` come from
    :func:`ab_test_list` (arms prefetched)."""
    live = [t for t in tests if t.status not in ("draft", "pending_approval", "concluded", "aborted")]
    stats = {(row.arm_id, row.metric): row
             for row in ABTestArmStatistic.objects.filter(arm__ab_test__in=live)}
    verdicts = {}
    for test in tests:
        if test.status == "concluded":
            verdicts[test.pk] = (test.decision or {}).get("summary", "concluded")
        elif test not in live:
            verdicts[test.pk] = "not started" if test.status != "aborted" else "aborted"
        else:
            arms = list(test.arms.all())
            primary = _metric_result(test, test.primary_metric, arms, stats)
            srm = _metric_result(test, TestMetric.ERROR_RATE, arms, stats).get("srm")
            verdicts[test.pk] = verdict({"primary": primary, "srm": srm})
    return verdicts


def ab_test_for_split(*, split_id: int) -> ABTest | None:
    return ABTest.objects.filter(split_id=split_id).first()
