"""One column of reference and current data, prepared once for every test.

A numeric column is kept as its finite values, sorted: one sort per side
gives the unique values, the empirical CDFs (KS, Wasserstein) and the
histogram counts (``searchsorted`` on the bin edges), so no test sorts
again. A categorical column is kept as its category counts. Missing values
(None, NaN) and, for numeric columns, ±inf are dropped first, as Evidently
does in ``get_one_column_drift``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .errors import DriftInputError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)


def _value_counts_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values and their counts of an already sorted array."""
    if values.size == 0:
        return values[:0], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.diff(values) != 0) + 1
    starts = np.concatenate(([0], starts))
    counts = np.diff(np.concatenate((starts, [values.size])))
    return values[starts], counts


def _align_counts(
    ref_keys: np.ndarray, ref_counts: np.ndarray, cur_keys: np.ndarray, cur_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of both sides over the sorted union of their (sorted) keys."""
    keys = np.union1d(ref_keys, cur_keys)
    ref = np.zeros(keys.size, dtype=np.int64)
    cur = np.zeros(keys.size, dtype=np.int64)
    ref[np.searchsorted(keys, ref_keys)] = ref_counts
    cur[np.searchsorted(keys, cur_keys)] = cur_counts
    return keys, ref, cur


@dataclass
class ColumnSample:
    """Reference and current values of one column, cleaned and summarised.

    ``ref_sorted``/``cur_sorted`` are set for numeric columns; ``keys`` with
    ``ref_counts``/``cur_counts`` (counts over the union of observed values)
    are available for both kinds (computed on demand for numeric columns).
    ``integer`` records that the numeric column had an integer dtype, which
    changes NumPy's Sturges bin width floor (width ≥ 1 for integers).
    """

    kind: str
    ref_n: int
    cur_n: int
    ref_sorted: np.ndarray | None = None
    cur_sorted: np.ndarray | None = None
    integer: bool = False
    _counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @cached_property
    def ref_unique(self) -> int:
        """Number of distinct non-missing reference values."""
        if self.kind == NUMERIC:
            return int(np.count_nonzero(np.diff(self.ref_sorted))) + 1
        return int(np.count_nonzero(self.counts[1]))

    @cached_property
    def cur_unique(self) -> int:
        if self.kind == NUMERIC:
            return int(np.count_nonzero(np.diff(self.cur_sorted))) + 1
        return int(np.count_nonzero(self.counts[2]))

    @cached_property
    def combined_unique(self) -> int:
        """Distinct values over both sides (Evidently's choice uses this)."""
        if self.kind == NUMERIC and max(self.ref_unique, self.cur_unique) > 20:
            # Larger than any threshold the choice compares with; exact value not needed.
            return max(self.ref_unique, self.cur_unique)
        return int(self.counts[0].size)

    @property
    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(keys, ref_counts, cur_counts)`` over the union of observed values."""
        if self._counts is None:
            ref_keys, ref_counts = _value_counts_sorted(self.ref_sorted)
            cur_keys, cur_counts = _value_counts_sorted(self.cur_sorted)
            self._counts = _align_counts(ref_keys, ref_counts, cur_keys, cur_counts)
        return self._counts


def _is_integer_dtype(values) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and (pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _finite_sorted(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DriftInputError("a column must be one-dimensional")
    array = array[np.isfinite(array)]
    array.sort()
    return array


def _category_counts(values) -> dict:
    """Non-zero counts per category, missing values dropped (pandas' hash table, not a sort)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    counts = series.value_counts(dropna=True, sort=False)
    return {key: int(n) for key, n in zip(counts.index.tolist(), counts.tolist(), strict=True) if n > 0}


def _sort_keys(keys: list) -> list:
    try:
        return sorted(keys)
    except TypeError:  # mixed types: any fixed order will do for counts
        return sorted(keys, key=lambda key: (type(key).__name__, str(key)))


def column_sample(reference, current, *, kind: str) -> ColumnSample:
    """Prepare one column; raises :class:`DriftInputError` if a side is empty."""
    if kind not in KINDS:
        raise DriftInputError(f"unknown column kind {kind!r}")
    if kind == NUMERIC:
        try:
            ref, cur = _finite_sorted(reference), _finite_sorted(current)
        except (TypeError, ValueError) as exc:
            raise DriftInputError(f"a numeric column holds non-numeric values ({exc})") from exc
        sample = ColumnSample(
            kind=kind,
            ref_n=ref.size,
            cur_n=cur.size,
            ref_sorted=ref,
            cur_sorted=cur,
            integer=_is_integer_dtype(reference) and _is_integer_dtype(current),
        )
    else:
        ref_vc, cur_vc = _category_counts(reference), _category_counts(current)
        keys = _sort_keys(list(set(ref_vc) | set(cur_vc)))
        ref_counts = np.array([ref_vc.get(key, 0) for key in keys], dtype=np.int64)
        cur_counts = np.array([cur_vc.get(key, 0) for key in keys], dtype=np.int64)
        key_array = np.empty(len(keys), dtype=object)
        key_array[:] = keys
        sample = ColumnSample(
            kind=kind,
            ref_n=int(ref_counts.sum()),
            cur_n=int(cur_counts.sum()),
            _counts=(key_array, ref_counts, cur_counts),
        )
    if sample.ref_n == 0:
        raise DriftInputError("the reference has no non-missing values in this column")
    if sample.cur_n == 0:
        raise DriftInputError("the current data has no non-missing values in this column")
    return sample
