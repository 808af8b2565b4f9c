"""Gaussian-posterior Bayesian comparison of one treatment arm with the control."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from .result import ZERO_CONTROL_MEAN, Comparison, effect, effect_variance, precheck
from .statistics import Statistic, with_shared_theta


@dataclass(frozen=True)
class GaussianPrior:
    """A proper Gaussian prior on the relative lift (gbstats' ``prior_type="relative"``)."""

    mean: float = 0.0
    variance: float = 1.0


def expected_losses(mu: float, sigma: float) -> tuple[float, float]:
    """Risk of shipping control, E[max(X, 0)], and of shipping treatment, E[max(-X, 0)], for X ~ N(mu, sigma^2).

    Closed forms of gbstats ``EffectBayesianABTest.get_risk`` (bayesian/tests.py),
    which computes P(X>0)·E[X | X>0] and -P(X<0)·E[X | X<0] via truncated normals.
    """
    z = mu / sigma
    pdf = sps.norm.pdf(z)
    risk_control = mu * sps.norm.cdf(z) + sigma * pdf
    risk_treatment = sigma * pdf - mu * sps.norm.sf(z)
    return float(max(risk_control, 0.0)), float(max(risk_treatment, 0.0))


def bayesian_test(
    a: Statistic,
    b: Statistic,
    *,
    alpha: float = 0.05,
    relative: bool = True,
    prior: GaussianPrior | None = None,
) -> Comparison:
    """Gaussian posterior on the effect, as gbstats ``EffectBayesianABTest`` (bayesian/tests.py).

    With no prior the improper flat prior is used (posterior = N(estimate,
    variance)); a proper prior combines by precision weighting. The prior is on
    the relative lift and rescaled by the control mean for absolute differences,
    as gbstats does. Returns chance to win P(effect > 0), the equal-tailed
    credible interval at ``alpha`` and the two risks.
    """
    a, b = with_shared_theta(a, b)
    error = precheck(a, b, relative)
    if error:
        return Comparison(error=error)
    data_mean = effect(a, b, relative)
    data_variance = effect_variance(a, b, relative)
    if prior is None:
        mean, precision = data_mean, 1 / data_variance
    else:
        prior_mean, prior_variance = prior.mean, prior.variance
        if not relative:
            base = a.unadjusted_mean
            if base == 0:
                return Comparison(error=ZERO_CONTROL_MEAN)
            prior_mean, prior_variance = prior_mean * abs(base), prior_variance * base**2
        precision = 1 / data_variance + 1 / prior_variance
        mean = (data_mean / data_variance + prior_mean / prior_variance) / precision
    sigma = math.sqrt(1 / precision)
    lo, hi = sps.norm.ppf([alpha / 2, 1 - alpha / 2], mean, sigma)
    risk_control, risk_treatment = expected_losses(mean, sigma)
    return Comparison(
        estimate=mean,
        ci=(float(lo), float(hi)),
        stddev=sigma,
        chance_to_win=float(sps.norm.sf(0, mean, sigma)),
        risk_control=risk_control,
        risk_treatment=risk_treatment,
    )
