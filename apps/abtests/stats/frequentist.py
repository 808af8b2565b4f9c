"""Welch t-test and always-valid sequential confidence sequences for one comparison."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .result import Comparison, effect, effect_variance, precheck
from .statistics import Statistic, with_shared_theta


def welch_dof(a: Statistic, b: Statistic) -> float:
    """Welch-Satterthwaite degrees of freedom from the per-arm variances (gbstats ``TTest.dof``)."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (vb**2 / (b.n - 1) + va**2 / (a.n - 1))


def welch_p_value(estimate, stddev, dof):
    """Two-sided p-value 2 * t.sf(|estimate / stddev|, dof); works on numpy arrays.

    The survival function keeps the far tail that gbstats' ``2 * (1 - t.cdf(...))`` rounds to 0.
    """
    return 2 * sps.t.sf(np.abs(np.asarray(estimate) / stddev), dof)


def welch_t_test(a: Statistic, b: Statistic, *, alpha: float = 0.05, relative: bool = True) -> Comparison:
    """Two-sided Welch t-test of treatment ``b`` against control ``a``.

    Estimate, variance (delta method for the relative lift), CI and p-value as in
    gbstats ``frequentist/tests.py`` ``TwoSidedTTest``, except that the p-value is
    ``2 * t.sf(|t|, dof)`` instead of ``2 * (1 - t.cdf(...))``, so it stays
    positive far in the tail (gbstats returns exactly 0 past |t| ~ 8.3).
    """
    a, b = with_shared_theta(a, b)
    error = precheck(a, b, relative)
    if error:
        return Comparison(error=error)
    estimate = effect(a, b, relative)
    stddev = math.sqrt(effect_variance(a, b, relative))
    dof = welch_dof(a, b)
    p_value = float(welch_p_value(estimate, stddev, dof))
    width = float(sps.t.ppf(1 - alpha / 2, dof)) * stddev
    return Comparison(
        estimate=estimate, ci=(estimate - width, estimate + width), stddev=stddev, p_value=min(p_value, 1.0), dof=dof
    )


def sequential_rho(alpha: float, tuning: float) -> float:
    """The mixture parameter rho tuned for sample size ``tuning`` (Waudby-Smith et al. 2021, eq. 161; gbstats)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_halfwidth(variance, n_total, *, alpha: float, tuning: float):
    """Half-width of the confidence sequence (Waudby-Smith et al. 2021, eq. 9; gbstats); works on numpy arrays."""
    rho = sequential_rho(alpha, tuning)
    tr2p1 = n_total * rho**2 + 1
    return np.sqrt(variance * n_total) * np.sqrt(2 * tr2p1 * np.log(np.sqrt(tr2p1) / alpha) / (n_total * rho) ** 2)


def sequential_p_value(estimate, variance, n_total, *, alpha: float, tuning: float):
    """Always-valid p-value min(1, 1/e) (Waudby-Smith et al. 2021, eq. 155; gbstats); works on numpy arrays.

    Computed as exp(-log e) so that a large statistic gives a tiny p instead of
    overflowing e to infinity and p to 0.
    """
    rho = sequential_rho(alpha, tuning)
    tr2p1 = n_total * rho**2 + 1
    st2 = np.square(estimate) * n_total / variance
    log_evalue = rho**2 * st2 / (2 * tr2p1) - 0.5 * np.log(tr2p1)
    return np.exp(-np.maximum(log_evalue, 0.0))


def sequential_test(
    a: Statistic, b: Statistic, *, alpha: float = 0.05, relative: bool = True, tuning: float = 5000
) -> Comparison:
    """Always-valid two-sided test: asymptotic confidence sequence and its p-value.

    Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2021), "Time-uniform central
    limit theory and asymptotic confidence sequences", eq. 9 (interval) and
    eq. 155 (e-value, p = min(1, 1/e)); parametrised as gbstats
    ``SequentialTwoSidedTTest`` with ``sequential_tuning_parameter`` = ``tuning``.
    """
    a, b = with_shared_theta(a, b)
    error = precheck(a, b, relative)
    if error:
        return Comparison(error=error)
    estimate = effect(a, b, relative)
    variance = effect_variance(a, b, relative)
    big_n = a.n + b.n
    width = float(sequential_halfwidth(variance, big_n, alpha=alpha, tuning=tuning))
    p_value = float(sequential_p_value(estimate, variance, big_n, alpha=alpha, tuning=tuning))
    return Comparison(
        estimate=estimate, ci=(estimate - width, estimate + width), stddev=math.sqrt(variance), p_value=p_value
    )
