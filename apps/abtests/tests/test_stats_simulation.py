"""Monte Carlo checks of the error rates the statistics core promises.

Vectorised over simulated experiments with the core's own building blocks
(statistics on numpy arrays, the p-value functions), seeded, a second or two each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from apps.abtests.stats import (
    SRM_THRESHOLD,
    Proportion,
    effect,
    effect_variance,
    sequential_p_value,
    srm_p_value,
    welch_dof,
    welch_p_value,
)

ALPHA = 0.05


def mc_se(rate: float, runs: int) -> float:
    return math.sqrt(rate * (1 - rate) / runs)


@pytest.fixture(scope="module")
def aa_peeks():
    """2,000 A/A experiments on a 10 % conversion rate, 500 units per arm arriving between each of 20 peeks."""
    rng = np.random.default_rng(20261203)
    experiments, peeks, batch = 2000, 20, 500
    conversions = rng.binomial(batch, 0.10, size=(2, experiments, peeks)).cumsum(axis=2)
    n = batch * np.arange(1, peeks + 1)
    control, treatment = Proportion(n=n, sum=conversions[0]), Proportion(n=n, sum=conversions[1])
    estimate = effect(control, treatment, relative=True)
    variance = effect_variance(control, treatment, relative=True)
    return {
        "runs": experiments,
        "naive": welch_p_value(estimate, np.sqrt(variance), welch_dof(control, treatment)),
        "sequential_5000": sequential_p_value(estimate, variance, 2 * n, alpha=ALPHA, tuning=5000),
        "sequential_1000": sequential_p_value(estimate, variance, 2 * n, alpha=ALPHA, tuning=1000),
    }


def test_one_look_frequentist_test_holds_alpha(aa_peeks):
    rate = (aa_peeks["naive"][:, -1] < ALPHA).mean()
    assert abs(rate - ALPHA) <= 3 * mc_se(ALPHA, aa_peeks["runs"])


def test_naive_peeking_inflates_false_positives(aa_peeks):
    rate = (aa_peeks["naive"] < ALPHA).any(axis=1).mean()
    # Twenty looks at a fixed-horizon test reject a true null several times too often.
    assert rate > 2 * ALPHA


@pytest.mark.parametrize("tuning", ["sequential_5000", "sequential_1000"])
def test_sequential_testing_keeps_alpha_under_peeking(aa_peeks, tuning):
    rate = (aa_peeks[tuning] < ALPHA).any(axis=1).mean()
    assert rate <= ALPHA + 3 * mc_se(ALPHA, aa_peeks["runs"])


def test_srm_false_flags_at_the_nominal_rate_under_correct_weights():
    rng = np.random.default_rng(7)
    runs, weights = 200_000, [0.5, 0.25, 0.25]
    units = rng.multinomial(10_000, weights, size=runs)
    rate = (srm_p_value(units, weights) < SRM_THRESHOLD).mean()
    assert abs(rate - SRM_THRESHOLD) <= 3 * mc_se(SRM_THRESHOLD, runs)


def test_srm_detects_a_52_48_split_at_large_n():
    rng = np.random.default_rng(8)
    units = rng.multinomial(50_000, [0.52, 0.48], size=2000)
    rate = (srm_p_value(units, [0.5, 0.5]) < SRM_THRESHOLD).mean()
    assert rate > 0.99
