"""Lift over time: the primary metric's lift of each challenger over the
control with its interval, day by day on the cumulative data, for the test
page's chart. The per-day sums come from serving
(:func:`apps.serving.traffic.split_daily_sums`, database aggregates over the
split's indexed rows); the result is cached until the test's statistics
cursors move, so a page view does not re-aggregate the log each time.
Metrics that live inside the answers (positive rate, confidence, review
rate) are not aggregated by day here: their chart says so."""

from __future__ import annotations

from collections import defaultdict

from django.core.cache import cache

from apps.abtests.choices import PROPORTION_METRICS, TestMetric
from apps.abtests.models import ABTest
from apps.abtests.stats import StatsInputError, analyze
from apps.serving.traffic import split_daily_sums

# metric -> (source, n field, sum field, sum-of-squares field)
DAILY_SUMS = {
    TestMetric.ERROR_RATE: ("predictions", "requests", "errors", "errors"),
    TestMetric.LATENCY_MS: ("predictions", "answered", "latency_sum", "latency_squares"),
    TestMetric.ACCURACY: ("feedback", "labelled", "correct", "correct"),
    TestMetric.ABS_ERROR: ("feedback", "abs_n", "abs_sum", "abs_squares"),
}
CACHE_SECONDS = 300


def _cumulative(rows: list[dict], fields: tuple[str, str, str], arms: int) -> list[tuple]:
    """[(day, [[n, sum, squares] per arm]), ...] summed up to each day."""
    by_day = defaultdict(dict)
    for row in rows:
        by_day[row["day"]][row["arm"]] = row
    totals = [[0, 0.0, 0.0] for _ in range(arms)]
    out = []
    for day in sorted(by_day):
        for arm, row in by_day[day].items():
            if arm < arms:
                for k, field in enumerate(fields):
                    totals[arm][k] += row[field] or 0
        out.append((day, [list(t) for t in totals]))
    return out


def ab_test_lift_history(*, ab_test: ABTest) -> dict:
    """``{"metric", "error", "series": [{"arm", "days", "estimate", "lower", "upper"}]}``."""
    metric = ab_test.primary_metric
    key = f"abtests:lift:{ab_test.pk}:{metric}:{ab_test.stats_prediction_cursor}:{ab_test.stats_feedback_cursor}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = _history(ab_test, metric)
    cache.set(key, result, CACHE_SECONDS)
    return result


def _history(ab_test: ABTest, metric: str) -> dict:
    result = {"metric": metric, "error": None, "series": []}
    if ab_test.split_id is None:
        result["error"] = "The test has not started: no traffic yet."
        return result
    if metric not in DAILY_SUMS:
        result["error"] = f"Lift over time is not drawn for {TestMetric(metric).label.lower()}; see the table."
        return result
    arms = list(ab_test.arms.order_by("index"))
    source, *fields = DAILY_SUMS[metric]
    days = _cumulative(split_daily_sums(split_id=ab_test.split_id)[source], tuple(fields), len(arms))
    total = sum(arm.weight for arm in arms)
    series = {arm.index: {"arm": arm.name, "days": [], "estimate": [], "lower": [], "upper": []} for arm in arms[1:]}
    for day, sums in days:
        if any(n < 2 for n, _, _ in sums):
            continue
        try:
            analysis = analyze(
                "proportion" if metric in PROPORTION_METRICS else "mean",
                [{"name": arm.name, "n": n, "sum": s, "sum_squares": q} for arm, (n, s, q) in zip(arms, sums,
                                                                                               strict=True)],
                expected_weights=[arm.weight / total for arm in arms], engine=ab_test.engine, difference="relative",
                alpha=ab_test.alpha, correction={"bh": "benjamini-hochberg"}.get(ab_test.correction,
                                                                               ab_test.correction))
        except StatsInputError:
            continue
        for index, comparison in enumerate(analysis["comparisons"], start=1):
            if comparison.get("estimate") is None or not comparison.get("ci"):
                continue
            point = series[index]
            point["days"].append(day.isoformat())
            point["estimate"].append(comparison["estimate"])
            point["lower"].append(comparison["ci"][0])
            point["upper"].append(comparison["ci"][1])
    result["series"] = [s for s in series.values() if s["days"]]
    if not result["series"]:
        result["error"] = "Not enough data yet: every arm needs at least 2 observations."
    return result
