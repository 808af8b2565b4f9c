"""Experiment-level checks: sample-ratio mismatch and multiple-comparison corrections."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

SRM_THRESHOLD = 0.001


def srm_p_value(units, weights: Sequence[float]):
    """Sample-ratio mismatch: Pearson chi^2 goodness of fit of units per arm against the expected weights.

    As gbstats ``check_srm`` (gbstats/utils.py): expected counts are the
    normalised weights times the total, chi^2 with (arms - 1) degrees of freedom,
    p from the survival function; arms with weight <= 0 add nothing; p = 1
    when there are no units at all. ``units`` may also be a 2-D array (one
    experiment per row), for simulations; then an array of p-values is returned.
    """
    observed = np.asarray(units, dtype=float)
    w = np.asarray(weights, dtype=float)
    counted = w > 0
    total = observed.sum(axis=-1, keepdims=True)
    expected = np.where(counted, w / w.sum(), 1.0) * np.where(total > 0, total, 1.0)
    chi2 = np.where(counted, (observed - expected) ** 2 / expected, 0.0).sum(axis=-1)
    p = np.where(total[..., 0] > 0, sps.chi2.sf(chi2, observed.shape[-1] - 1), 1.0)
    return float(p) if p.ndim == 0 else p


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
