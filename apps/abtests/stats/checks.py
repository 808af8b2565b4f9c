"""Experiment-level checks: sample-ratio mismatch and multiple-comparison corrections."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

SRM_THRESHOLD = 0.001


def srm_p_value(units: Sequence[float], weights: Sequence[float]) -> float:
    """Sample-ratio mismatch: Pearson chi^2 goodness of fit of units per arm against the expected weights.

    As gbstats ``check_srm`` (gbstats/utils.py): expected counts are the
    normalised weights times the total, chi^2 with (arms - 1) degrees of freedom,
    p from the survival function; arms with weight <= 0 add nothing.
    Returns 1 when there are no units at all.
    """
    total = float(sum(units))
    if not total:
        return 1.0
    total_weight = float(sum(weights))
    chi2 = 0.0
    for observed, weight in zip(units, weights, strict=True):
        if weight <= 0:
            continue
        expected = weight / total_weight * total
        chi2 += (observed - expected) ** 2 / expected
    return float(sps.chi2.sf(chi2, len(units) - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979).

    Same semantics as statsmodels ``multipletests(method="holm")``: sorted
    ascending, p_(i) * (m - i + 1), made monotone non-decreasing, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg false-discovery-rate adjusted p-values (Benjamini & Hochberg 1995).

    Same semantics as statsmodels ``multipletests(method="fdr_bh")``: sorted
    ascending, p_(i) * m / i, made monotone from the largest down, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()
