"""The per-column statistics, computed from a prepared :class:`ColumnSample`.

Each function reproduces the statistic Evidently 0.7.23 computes in
``evidently/legacy/calculations/stattests`` (file named per function) on
the same cleaned data, to floating-point rounding; only the way of getting
there differs (one sort per side, counts instead of pandas ``value_counts``).
The one addition is :func:`chi2_homogeneity_p_value`, the two-sample test
used to decide on categorical columns (see ``docs/monitoring.md``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from .samples import NUMERIC, ColumnSample

#: scipy's ``ks_2samp`` switches from the exact to the asymptotic p-value above this size.
KS_EXACT_MAX_N = 10_000
#: Evidently's floor for the reference standard deviation in the normed Wasserstein distance.
WASSERSTEIN_STD_FLOOR = 0.001
#: Evidently's replacement share for empty bins in PSI (``utils.get_binned_data``).
PSI_ZERO_FILL = 0.0001
#: Above this many distinct reference values a numeric column is binned (Sturges), else shared per value.
BINNING_MIN_UNIQUE = 20


def _cdfs_at_all(sample: ColumnSample) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pooled sorted values and both empirical CDFs along them, by merging the two sorted sides.

    A stable argsort of the two concatenated sorted runs is a linear merge
    (timsort); cumulative counts along it give F_ref and F_cur at every pooled
    position. Inside a run of equal values the counts are partial, but there the
    gap to the next value is 0, and the last position of the run carries the full
    counts, the values scipy's ``searchsorted(..., side="right")`` gives. ``last``
    marks those positions.
    """
    ref, cur = sample.ref_sorted, sample.cur_sorted
    n1, n2 = ref.size, cur.size
    both = np.concatenate((ref, cur))
    order = np.argsort(both, kind="stable")
    pooled = both[order]
    cur_count = np.cumsum(order >= n1)
    ref_count = np.arange(1, n1 + n2 + 1) - cur_count
    last = np.empty(n1 + n2, dtype=bool)
    np.not_equal(pooled[1:], pooled[:-1], out=last[:-1])
    last[-1] = True
    return pooled, ref_count / n1, cur_count / n2, last


def ks_and_wasserstein(sample: ColumnSample) -> tuple[float, float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value, and the normed Wasserstein distance.

    KS: ``scipy.stats.ks_2samp`` (two-sided; exact p-value up to 10 000 rows
    a side, else Smirnov's asymptotic ``kstwo.sf(D, round(n·m/(n+m)))``),
    as in Evidently's ``ks_stattest.py``. Wasserstein: W1 between the
    empirical distributions, ∫|F_ref - F_cur| dx (``scipy.stats.wasserstein_distance``),
    divided by ``max(std(reference), 0.001)`` with the population std, as in
    ``wasserstein_distance_norm.py``. Both come from one pass over the pooled sorted values.
    """
    pooled, ref_cdf, cur_cdf, last = _cdfs_at_all(sample)
    diffs = ref_cdf - cur_cdf
    at_values = diffs[last]
    d = float(max(np.clip(-at_values.min(), 0, 1), at_values.max()))
    n1, n2 = sample.ref_n, sample.cur_n
    if max(n1, n2) <= KS_EXACT_MAX_N:
        p_value = float(stats.ks_2samp(sample.ref_sorted, sample.cur_sorted).pvalue)
    else:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        p_value = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))
    wasserstein = float(np.dot(np.abs(diffs[:-1]), np.diff(pooled)))
    norm = max(float(np.std(sample.ref_sorted)), WASSERSTEIN_STD_FLOOR)
    return d, p_value, wasserstein / norm


def _sturges_edges(sample: ColumnSample) -> np.ndarray:
    """``np.histogram_bin_edges(concat(ref, cur), bins="sturges")`` without concatenating."""
    first = min(sample.ref_sorted[0], sample.cur_sorted[0])
    last = max(sample.ref_sorted[-1], sample.cur_sorted[-1])
    size = sample.ref_n + sample.cur_n
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (last - first) / (np.log2(size) + 1.0)
    if width:
        if sample.integer and width < 1:
            width = 1
        n_bins = int(np.ceil((last - first) / width))
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def _histogram_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values: bins [e_i, e_i+1), the last one closed."""
    left = np.searchsorted(sorted_values, edges[:-1], side="left")
    right_end = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(np.concatenate((left, [right_end])))


def binned_shares(sample: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current shares per bin, before any zero fill (``utils.get_binned_data``).

    Numeric columns with more than 20 distinct reference values: Sturges bins
    on the pooled data; otherwise one bin per observed value.
    """
    if sample.kind == NUMERIC and sample.ref_unique > BINNING_MIN_UNIQUE:
        edges = _sturges_edges(sample)
        ref = _histogram_counts(sample.ref_sorted, edges)
        cur = _histogram_counts(sample.cur_sorted, edges)
    else:
        _, ref, cur = sample.counts
    return ref / sample.ref_n, cur / sample.cur_n


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Evidently's zero fill: 0.0001, or a millionth of the smallest share if that is ≤ 0.0001."""
    shares = shares.copy()
    smallest = shares[shares != 0].min()
    shares[shares == 0] = smallest / 10**6 if smallest <= PSI_ZERO_FILL else PSI_ZERO_FILL
    return shares


def psi(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    """Population stability index Σ (r - c)·ln(r / c) over zero-filled shares (``psi.py``)."""
    ref, cur = _fill_zeroes(ref_shares), _fill_zeroes(cur_shares)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def js_distance(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log, of the unfilled shares (``jensenshannon.py``)."""
    return float(distance.jensenshannon(ref_shares, cur_shares))


def z_p_value(sample: ColumnSample) -> float:
    """Two-proportion z-test, two-sided, pooled variance (``z_stattest.py``).

    The proportion is of values other than the smallest key; with one and the
    same value on both sides the p-value is 1.
    """
    _, ref_counts, cur_counts = sample.counts
    if ref_counts.size == 1:
        return 1.0
    n1, n2 = sample.ref_n, sample.cur_n
    p1 = float(n1 - ref_counts[0]) / n1
    p2 = float(n2 - cur_counts[0]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(np.abs(z))))  # ndtr is scipy's norm.cdf


def chi2_gof_p_value(sample: ColumnSample) -> float:
    """Evidently's χ² (``chisquare_stattest.py``): goodness of fit of the current counts
    to the reference shares scaled to the current size, i.e. treating the
    reference shares as exact. It ignores the reference's own sampling noise,
    so with no drift it alarms far more often than its nominal level."""
    _, ref_counts, cur_counts = sample.counts
    expected = ref_counts * (sample.cur_n / sample.ref_n)
    if ref_counts.size < 2:
        return math.nan  # scipy's chisquare with no degree of freedom (Evidently reports NaN)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.sum((cur_counts - expected) ** 2 / expected)  # inf when a new category appears
    return float(special.chdtrc(ref_counts.size - 1, statistic))  # chdtrc is scipy's chi2.sf


def chi2_homogeneity_p_value(sample: ColumnSample) -> float:
    """Pearson's χ² test of homogeneity on the 2xk table of reference and current counts
    (the value ``scipy.stats.chi2_contingency(correction=False)`` gives): both sides are
    samples, so the test's false-alarm rate under no drift is its level."""
    _, ref_counts, cur_counts = sample.counts
    if ref_counts.size < 2:
        return 1.0
    n1, n2 = sample.ref_n, sample.cur_n
    totals = ref_counts + cur_counts
    expected_ref = totals * (n1 / (n1 + n2))
    expected_cur = totals * (n2 / (n1 + n2))
    statistic = np.sum((ref_counts - expected_ref) ** 2 / expected_ref) + np.sum(
        (cur_counts - expected_cur) ** 2 / expected_cur
    )
    return float(special.chdtrc(ref_counts.size - 1, statistic))


def is_finite(value: float) -> bool:
    return value is not None and math.isfinite(value)
