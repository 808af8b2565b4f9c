"""The outcome of comparing one treatment arm with the control."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .statistics import Statistic

ZERO_CONTROL_MEAN = "zero_control_mean: the relative lift is undefined when the control mean is 0"
ZERO_VARIANCE = "zero_variance: an arm has zero variance, so no interval or p-value can be computed"
NON_FINITE = "non_finite: the sums are too extreme for floating point; no result can be computed"


@dataclass(frozen=True)
class Comparison:
    """One treatment-vs-control result; ``error`` is set (and the numbers are None) when it cannot be computed."""

    estimate: float | None = None
    ci: tuple[float, float] | None = None
    stddev: float | None = None
    p_value: float | None = None
    dof: float | None = None
    chance_to_win: float | None = None
    risk_control: float | None = None
    risk_treatment: float | None = None
    error: str | None = None

    def is_finite(self) -> bool:
        """Whether every number is finite, so the answer is strict JSON."""
        numbers = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                numbers.extend(value)
            elif isinstance(value, float | int):
                numbers.append(value)
        return all(math.isfinite(x) for x in numbers)


def effect(a: Statistic, b: Statistic, relative: bool) -> float:
    """Point estimate: b - a, or (b - a) / unadjusted mean of a (gbstats ``frequentist_diff``)."""
    if relative:
        return (b.mean - a.mean) / a.unadjusted_mean
    return b.mean - a.mean


def effect_variance(a: Statistic, b: Statistic, relative: bool) -> float:
    """Variance of the estimate; for the relative lift the delta method (gbstats ``frequentist_variance``)."""
    if relative:
        ma, mb = a.unadjusted_mean, b.unadjusted_mean
        return b.variance / (ma**2 * b.n) + a.variance * mb**2 / (ma**4 * a.n)
    return b.variance / b.n + a.variance / a.n


def precheck(a: Statistic, b: Statistic, relative: bool) -> str | None:
    """The per-comparison errors, in gbstats' order: zero control mean (relative only), then zero variance.

    gbstats also refuses an absolute difference when the control mean is 0; a
    difference of means is well defined there, so only the relative lift is refused.
    """
    if relative and (a.mean == 0 or a.unadjusted_mean == 0):
        return ZERO_CONTROL_MEAN
    if a.variance <= 0 or b.variance <= 0:
        return ZERO_VARIANCE
    return None
