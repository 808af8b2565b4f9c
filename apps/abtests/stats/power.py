"""Power and sample size for a two-sided two-sample comparison of means."""

from __future__ import annotations

import math

from scipy import stats as sps

from .errors import StatsInputError


def _absolute_effect(mde: float, baseline_mean: float, relative: bool) -> float:
    if mde == 0:
        raise StatsInputError("mde", "the minimum detectable effect must not be 0")
    delta = mde * baseline_mean if relative else mde
    if delta == 0:
        raise StatsInputError("baseline_mean", "a relative effect needs a non-zero baseline mean")
    return abs(delta)


def _check(variance: float, alpha: float) -> None:
    if not variance > 0:
        raise StatsInputError("variance", "must be positive")
    if not 0 < alpha < 1:
        raise StatsInputError("alpha", "must be between 0 and 1")


def power(
    *, n_per_arm: float, mde: float, baseline_mean: float, variance: float, alpha: float = 0.05, relative: bool = True
) -> float:
    """Power of the two-sided z-test with ``n_per_arm`` units in each of two arms.

    Textbook normal approximation (e.g. Chow, Shao & Wang, *Sample Size
    Calculations in Clinical Research*, §3.2), both rejection tails counted, as
    statsmodels ``NormalIndPower``: Phi(delta/se - z) + Phi(-delta/se - z), se = sigmasqrt(2/n).
    ``mde`` is relative to ``baseline_mean`` unless ``relative`` is False.
    """
    _check(variance, alpha)
    if not n_per_arm > 0:
        raise StatsInputError("n_per_arm", "must be positive")
    delta = _absolute_effect(mde, baseline_mean, relative)
    se = math.sqrt(2 * variance / n_per_arm)
    z = sps.norm.isf(alpha / 2)
    return float(sps.norm.cdf(delta / se - z) + sps.norm.cdf(-delta / se - z))


def sample_size_per_arm(
    *, mde: float, baseline_mean: float, variance: float, alpha: float = 0.05, power: float = 0.8, relative: bool = True
) -> int:
    """Units needed in each arm to detect ``mde`` with the given power, two-sided, equal arms.

    n = 2sigma^2(z_{1-alpha/2} + z_{power})^2 / delta^2 (same reference as :func:`power`),
    rounded up; the far rejection tail is ignored, as in the textbook formula,
    which makes n conservative by less than one unit in practice.
    """
    _check(variance, alpha)
    if not 0 < power < 1:
        raise StatsInputError("power", "must be between 0 and 1")
    delta = _absolute_effect(mde, baseline_mean, relative)
    z_total = sps.norm.isf(alpha / 2) + sps.norm.ppf(power)
    return math.ceil(2 * variance * z_total**2 / delta**2 - 1e-9)
