"""Validation of the per-arm sufficient statistics and their conversion into statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import StatsInputError
from .statistics import Base, Proportion, Ratio, RegressionAdjusted, SampleMean, Statistic

METRIC_TYPES = ("proportion", "mean", "ratio")
# Each comparison costs about a millisecond; an unbounded list would let one request hold a worker.
MAX_ARMS = 50
# Unit counts stay exact integers in a float below 2**53; no experiment comes near.
MAX_UNITS = 10**15
# Relative slack on sum_squares - sum^2/n: float sums of many values lose this much.
VARIANCE_TOLERANCE = 1e-9


def _number(arm: Mapping[str, Any], key: str, field: str, *, required: bool = True) -> float | None:
    value = arm.get(key)
    if value is None:
        if required:
            raise StatsInputError(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatsInputError(field, "must be a number")
    if not math.isfinite(value):
        raise StatsInputError(field, "must be finite")
    return float(value)


def _check_spread(n: int, total: float, squares: float, *, prefix: str, key: str, squares_key: str) -> None:
    if not math.isfinite(total * total):
        raise StatsInputError(f"{prefix}.{key}", "is too large to square in floating point")
    field = f"{prefix}.{squares_key}"
    centred = squares - total * total / n
    if centred < -VARIANCE_TOLERANCE * max(abs(squares), total**2 / n, 1.0):
        raise StatsInputError(field, "is smaller than sum^2/n, which would make the variance negative")


def _proportion(n: int, arm: Mapping[str, Any], prefix: str, key: str, squares_key: str) -> Proportion:
    total = _number(arm, key, f"{prefix}.{key}")
    squares = _number(arm, squares_key, f"{prefix}.{squares_key}", required=False)
    if not 0 <= total <= n:
        raise StatsInputError(f"{prefix}.{key}", "must be between 0 and n for a proportion")
    if squares is not None and squares != total:
        raise StatsInputError(f"{prefix}.{squares_key}", f"must equal {key} for a proportion (values are 0 or 1)")
    return Proportion(n=n, sum=total)


def _sample_mean(n: int, arm: Mapping[str, Any], prefix: str, key: str, squares_key: str) -> SampleMean:
    total = _number(arm, key, f"{prefix}.{key}")
    squares = _number(arm, squares_key, f"{prefix}.{squares_key}")
    _check_spread(n, total, squares, prefix=prefix, key=key, squares_key=squares_key)
    return SampleMean(n=n, sum=total, sum_squares=squares)


def arm_statistic(metric_type: str, arm: Mapping[str, Any], index: int) -> Statistic:
    """Validate one arm's sufficient statistics and build its statistic.

    Keys: ``n``, ``sum``, ``sum_squares``; ratio metrics add ``denominator_sum``,
    ``denominator_sum_squares`` and ``sum_product`` (numerator x denominator);
    CUPED adds ``covariate_sum``, ``covariate_sum_squares`` and
    ``covariate_sum_product`` (metric x covariate), the covariate being of the
    metric's own type.
    """
    prefix = f"arms[{index}]"
    if not isinstance(arm, Mapping):
        raise StatsInputError(prefix, "must be an object")
    n = _number(arm, "n", f"{prefix}.n")
    if n != int(n):
        raise StatsInputError(f"{prefix}.n", "must be a whole number of units")
    n = int(n)
    if not 2 <= n <= MAX_UNITS:
        raise StatsInputError(f"{prefix}.n", f"must be between 2 and {MAX_UNITS} units")
    build = _proportion if metric_type == "proportion" else _sample_mean
    main: Base = build(n, arm, prefix, "sum", "sum_squares")
    if metric_type == "ratio":
        denominator = _sample_mean(n, arm, prefix, "denominator_sum", "denominator_sum_squares")
        product = _number(arm, "sum_product", f"{prefix}.sum_product")
        return Ratio(numerator=main, denominator=denominator, sum_product=product)
    if arm.get("covariate_sum") is None:
        return main
    pre = build(n, arm, prefix, "covariate_sum", "covariate_sum_squares")
    product = _number(arm, "covariate_sum_product", f"{prefix}.covariate_sum_product")
    return RegressionAdjusted(post=main, pre=pre, sum_product=product)


def arm_statistics(metric_type: str, arms: Sequence[Mapping[str, Any]]) -> list[Statistic]:
    """Validate every arm (at least two; arm 0 is the control) and build their statistics."""
    if metric_type not in METRIC_TYPES:
        raise StatsInputError("metric_type", f"must be one of {', '.join(METRIC_TYPES)}")
    if isinstance(arms, str | bytes | Mapping) or not isinstance(arms, Sequence) or not 2 <= len(arms) <= MAX_ARMS:
        raise StatsInputError("arms", f"must be a list of 2 to {MAX_ARMS} arms (the control first)")
    statistics = [arm_statistic(metric_type, arm, i) for i, arm in enumerate(arms)]
    names = [str(arm.get("name", i)) for i, arm in enumerate(arms)]
    if len(set(names)) != len(names):
        raise StatsInputError("arms", "arm names must be unique")
    covariates = {isinstance(s, RegressionAdjusted) for s in statistics}
    if len(covariates) > 1:
        raise StatsInputError("arms", "either every arm or none carries a covariate")
    return statistics


def expected_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The expected share of units per arm: equal shares when omitted; else positive and summing to 1."""
    if weights is None:
        return [1 / count] * count
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence) or len(weights) != count:
        raise StatsInputError("expected_weights", f"must be a list of {count} weights, one per arm")
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
            raise StatsInputError(f"expected_weights[{i}]", "must be a positive number")
    if abs(sum(weights) - 1) > 1e-6:
        raise StatsInputError("expected_weights", "must sum to 1")
    return [float(w) for w in weights]
