"""Statistics core for A/B tests: pure functions on per-arm sufficient statistics.

No Django here: the module imports without settings, and every method is
checked against GrowthBook's gbstats (see ``bench/gbstats_fixture.py``).
"""

from .analyze import analyze
from .bayesian import GaussianPrior, bayesian_test, expected_losses
from .checks import SRM_THRESHOLD, benjamini_hochberg, holm, srm_p_value
from .errors import StatsInputError
from .frequentist import (
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    sequential_test,
    welch_dof,
    welch_p_value,
    welch_t_test,
)
from .inputs import MAX_ARMS
from .power import power, sample_size_per_arm
from .result import Comparison, effect, effect_variance
from .statistics import Proportion, Ratio, RegressionAdjusted, SampleMean, cuped_theta, with_shared_theta

__all__ = [
    "MAX_ARMS",
    "SRM_THRESHOLD",
    "Comparison",
    "GaussianPrior",
    "Proportion",
    "Ratio",
    "RegressionAdjusted",
    "SampleMean",
    "StatsInputError",
    "analyze",
    "bayesian_test",
    "benjamini_hochberg",
    "cuped_theta",
    "effect",
    "effect_variance",
    "expected_losses",
    "holm",
    "power",
    "sample_size_per_arm",
    "sequential_halfwidth",
    "sequential_p_value",
    "sequential_rho",
    "sequential_test",
    "srm_p_value",
    "welch_dof",
    "welch_p_value",
    "welch_t_test",
    "with_shared_theta",
]
