"""The contract of the stateless analysis endpoint: arms in, SRM and comparisons out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .bayesian import GaussianPrior, bayesian_test
from .checks import SRM_THRESHOLD, benjamini_hochberg, holm, srm_p_value
from .errors import StatsInputError
from .frequentist import sequential_test, welch_t_test
from .inputs import arm_statistics
from .inputs import expected_weights as weights_for
from .result import NON_FINITE, Comparison

ENGINES = ("frequentist", "sequential", "bayesian")
DIFFERENCES = ("relative", "absolute")
CORRECTIONS = {"none": None, "holm": holm, "benjamini-hochberg": benjamini_hochberg}


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise StatsInputError(field, "must be a positive number")
    return float(value)


def _prior(prior: Mapping[str, Any] | None) -> GaussianPrior | None:
    if prior is None:
        return None
    if not isinstance(prior, Mapping):
        raise StatsInputError("prior", "must be an object with mean and variance")
    mean = prior.get("mean", 0.0)
    if isinstance(mean, bool) or not isinstance(mean, int | float) or not math.isfinite(mean):
        raise StatsInputError("prior.mean", "must be a finite number")
    return GaussianPrior(mean=float(mean), variance=_positive(prior.get("variance"), "prior.variance"))


def _significant(comparison: Comparison, engine: str, alpha: float, p_value: float | None) -> bool:
    if comparison.error:
        return False
    if engine == "bayesian":
        # The equal-tailed credible interval excludes 0.
        return comparison.ci[0] > 0 or comparison.ci[1] < 0
    return p_value < alpha


def analyze(
    metric_type: str,
    arms: Sequence[Mapping[str, Any]],
    *,
    expected_weights: Sequence[float] | None = None,
    engine: str = "frequentist",
    difference: str = "relative",
    alpha: float = 0.05,
    prior: Mapping[str, Any] | None = None,
    sequential_tuning: float = 5000,
    correction: str = "none",
) -> dict[str, Any]:
    """Analyse one metric of an experiment from per-arm sufficient statistics.

    Arm 0 is the control; each other arm is compared with it by ``engine``:
    ``frequentist`` (Welch t-test, gbstats ``TwoSidedTTest``), ``sequential``
    (asymptotic confidence sequence, Waudby-Smith et al. 2021, gbstats
    ``SequentialTwoSidedTTest``, tuned by ``sequential_tuning``) or ``bayesian``
    (Gaussian posterior, gbstats ``EffectBayesianABTest``; flat prior unless
    ``prior={"mean", "variance"}`` on the relative lift is given). ``srm`` is
    gbstats' ``check_srm`` on the units per arm, flagged below p = 0.001.
    ``correction`` ("holm", Holm 1979, or "benjamini-hochberg", Benjamini &
    Hochberg 1995) adjusts the frequentist p-values across the comparisons; the
    adjusted values are reported in ``p_value`` and drive ``significant``.

    A comparison that cannot be computed (zero control mean for a relative lift,
    an arm with zero variance) comes back with ``error`` set and null numbers;
    invalid input raises :class:`StatsInputError` naming the field.
    """
    if engine not in ENGINES:
        raise StatsInputError("engine", f"must be one of {', '.join(ENGINES)}")
    if difference not in DIFFERENCES:
        raise StatsInputError("difference", f"must be one of {', '.join(DIFFERENCES)}")
    if correction not in CORRECTIONS:
        raise StatsInputError("correction", f"must be one of {', '.join(CORRECTIONS)}")
    if engine == "bayesian" and correction != "none":
        raise StatsInputError("correction", "applies to p-values, which the bayesian engine does not produce")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise StatsInputError("alpha", "must be between 0 and 1")
    tuning = _positive(sequential_tuning, "sequential_tuning")
    gaussian_prior = _prior(prior)
    if gaussian_prior is not None and engine != "bayesian":
        raise StatsInputError("prior", "only the bayesian engine takes a prior")
    statistics = arm_statistics(metric_type, arms)
    weights = weights_for(expected_weights, len(arms))
    relative = difference == "relative"

    control = statistics[0]
    results: list[Comparison] = []
    for treatment in statistics[1:]:
        # Valid but extreme sums can overflow or underflow mid-formula; that is one
        # comparison's error, never an exception (a 500) or a NaN in the answer.
        try:
            if engine == "frequentist":
                result = welch_t_test(control, treatment, alpha=alpha, relative=relative)
            elif engine == "sequential":
                result = sequential_test(control, treatment, alpha=alpha, relative=relative, tuning=tuning)
            else:
                result = bayesian_test(control, treatment, alpha=alpha, relative=relative, prior=gaussian_prior)
        except (OverflowError, ZeroDivisionError):
            result = Comparison(error=NON_FINITE)
        results.append(result if result.is_finite() else Comparison(error=NON_FINITE))

    p_values = [r.p_value for r in results]
    adjust = CORRECTIONS[correction]
    if adjust is not None:
        valid = [i for i, p in enumerate(p_values) if p is not None]
        for i, p in zip(valid, adjust([p_values[i] for i in valid]), strict=True):
            p_values[i] = p

    comparisons = []
    for arm, result, p_value in zip(arms[1:], results, p_values, strict=True):
        risk = None
        if result.risk_control is not None:
            risk = {"control": result.risk_control, "treatment": result.risk_treatment}
        comparisons.append(
            {
                "arm": arm.get("name"),
                "estimate": result.estimate,
                "ci": list(result.ci) if result.ci else None,
                "p_value": p_value,
                "stddev": result.stddev,
                "dof": result.dof,
                "chance_to_win": result.chance_to_win,
                "risk": risk,
                "significant": _significant(result, engine, alpha, p_value),
                "error": result.error,
            }
        )
    srm_p = srm_p_value([s.n for s in statistics], weights)
    return {"srm": {"p_value": srm_p, "mismatch": srm_p < SRM_THRESHOLD}, "comparisons": comparisons}
