"""Drift methods: their names, default thresholds, and Evidently's default choice.

A method either yields a p-value (drift when it falls below the threshold;
KS drifts at p ≤ threshold, as in Evidently) or a distance (drift when it
reaches the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DriftInputError
from .samples import CATEGORICAL, NUMERIC, ColumnSample

#: Up to this many non-missing reference rows Evidently chooses a test, above it a distance.
SMALL_REFERENCE_ROWS = 1000
#: At most this many distinct values (both sides pooled) make a numeric column "few-valued".
FEW_VALUES = 5


@dataclass(frozen=True)
class Method:
    """A drift method: the statistic it decides on and how."""

    name: str
    statistic: str  # key in the column's ``statistics``
    kinds: tuple[str, ...]
    default_threshold: float
    is_p_value: bool
    drifts_at_equal: bool  # KS: p ≤ t; z and χ²: p < t; distances: d ≥ t
    description: str

    def drifted(self, value: float, threshold: float) -> bool:
        if self.is_p_value:
            return value <= threshold if self.drifts_at_equal else value < threshold
        return value >= threshold


BOTH = (NUMERIC, CATEGORICAL)
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "ks_p_value", (NUMERIC,), 0.05, True, True, "Kolmogorov-Smirnov p-value"),
        Method("z", "z_p_value", BOTH, 0.05, True, False, "Z-test p-value (two values)"),
        Method("chisquare", "chi2_p_value", BOTH, 0.05, True, False, "χ² test of homogeneity p-value"),
        Method("chisquare_gof", "chi2_gof_p_value", BOTH, 0.05, True, False, "χ² goodness-of-fit p-value (Evidently)"),
        Method("wasserstein", "wasserstein_normed", (NUMERIC,), 0.1, False, False, "Wasserstein distance (normed)"),
        Method("jensenshannon", "js_distance", BOTH, 0.1, False, False, "Jensen-Shannon distance"),
        Method("psi", "psi", BOTH, 0.1, False, False, "Population stability index"),
    )
}


def method_get(name: str, kind: str) -> Method:
    """The method called ``name``, checked to apply to a column of ``kind``."""
    method = METHODS.get(name)
    if method is None:
        raise DriftInputError(f"unknown drift method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    if kind not in method.kinds:
        raise DriftInputError(f"drift method {name!r} does not apply to a {kind} column")
    return method


def default_method(sample: ColumnSample) -> Method:
    """Evidently's default choice (``stattests/registry.py: _get_default_stattest``),
    with its χ² replaced by the two-sample test of homogeneity.

    ≤ 1000 reference rows: numeric → z (≤ 2 values), χ² (≤ 5), else KS;
    categorical → z (≤ 2 values) or χ². Above 1000: numeric → Jensen-Shannon
    (≤ 5 values) or normed Wasserstein; categorical → Jensen-Shannon.
    "Values" counts distinct non-missing values over both sides pooled.
    """
    n_values = sample.combined_unique
    if sample.ref_n <= SMALL_REFERENCE_ROWS:
        if sample.kind == NUMERIC and n_values > FEW_VALUES:
            return METHODS["ks"]
        return METHODS["z"] if n_values <= 2 else METHODS["chisquare"]
    if sample.kind == NUMERIC and n_values > FEW_VALUES:
        return METHODS["wasserstein"]
    return METHODS["jensenshannon"]


def applicable_statistics(sample: ColumnSample) -> tuple[str, ...]:
    """Every statistic that makes sense for the column, chosen or not.

    KS and Wasserstein need a numeric column; the count tests (χ², z) need
    few categories — categorical columns, and numeric columns with at most 5
    distinct values; z needs exactly two (or one) values.
    """
    names = ["psi", "js_distance"]
    if sample.kind == NUMERIC:
        names = ["ks_statistic", "ks_p_value", "wasserstein_normed", *names]
    if sample.kind == CATEGORICAL or sample.combined_unique <= FEW_VALUES:
        names += ["chi2_p_value", "chi2_gof_p_value"]
        if sample.combined_unique <= 2:
            names.append("z_p_value")
    return tuple(names)
