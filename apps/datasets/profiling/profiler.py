"""The two passes: pass 1 over every column, pass 2 over the numeric ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from apps.datasets.fileformats import (
    as_strings,
    boolean_masks,
    datetime_mask,
    integer_mask,
    number_mask,
    strings_to_datetime,
    strings_to_float,
)
from apps.datasets.profiling.columns import (
    HASH_MULTIPLIER,
    HISTOGRAM_BINS,
    KMV_K,
    NULL_HASH,
    SAMPLE_SIZE,
    TRACK_LIMIT,
    ColumnAccumulator,
    casts_to,
    earlier,
    hash_values,
    infer_type,
    is_mixed,
    kmv_merge,
    numeric_summary,
    readable_as,
    repeats,
)


class Profiler:
    """Feed record batches (pass 1), then numeric batches (pass 2), then
    ``result()``. Usable on its own for data that is not in a file."""

    def __init__(self, columns: list[str], *, block_rows: int, unique_columns: set[str] = frozenset(),
                 seed: int = 0):
        self.columns = {name: ColumnAccumulator(name=name, track_unique=name in unique_columns) for name in columns}
        self.order = list(columns)
        self.rows = 0
        self.block_rows = max(1, block_rows)
        self.row_hashes: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)
        self.types: dict[str, str] = {}
        self.declared: dict[str, str] = {}
        self.pass2: _SecondPass | None = None

    # --- pass 1 -------------------------------------------------------------------

    def add_batch(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if n == 0:
            return
        start = self.rows
        block_index = (np.arange(start, start + n) // self.block_rows)
        n_blocks = int(block_index[-1]) + 1
        row_hash = np.zeros(n, dtype=np.uint64)
        for name in self.order:
            column_hash = self._add_column(self.columns[name], batch.column(name), block_index, n_blocks)
            # Order-dependent combination (wrapping uint64 arithmetic), so that
            # swapped values in two columns make a different row.
            row_hash = row_hash * HASH_MULTIPLIER ^ column_hash
        self.row_hashes.append(row_hash)
        self.rows += n

    def _add_column(self, acc: ColumnAccumulator, arr: pa.Array, block_index: np.ndarray,
                    n_blocks: int) -> np.ndarray:
        """Update the column's summaries from one batch; returns a 64-bit hash
        per row of the column's values (for the duplicate-row count).

        Work is done on the batch's distinct values (a dictionary encoding)
        weighted by their counts, so a categorical column costs as much as
        its categories, not its rows."""
        n = len(arr)
        acc.rows += n
        null_mask = arr.is_null().to_numpy(zero_copy_only=False)
        nulls = int(null_mask.sum())
        acc.nulls += nulls
        if acc.missing_blocks.size < n_blocks:
            acc.missing_blocks = np.pad(acc.missing_blocks, (0, n_blocks - acc.missing_blocks.size))
        if nulls:
            acc.missing_blocks += np.bincount(block_index[null_mask], minlength=n_blocks)[:n_blocks]
        if nulls == n:
            return np.full(n, NULL_HASH, dtype=np.uint64)
        atype = arr.type
        strings = as_strings(arr)
        encoded = pc.dictionary_encode(strings)
        dictionary = encoded.dictionary
        index = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        present = index >= 0
        counts = np.bincount(index[present], minlength=len(dictionary))
        values = dictionary.to_numpy(zero_copy_only=False)
        value_hashes = hash_values(values)
        row_hash = np.where(present, value_hashes[np.maximum(index, 0)], NULL_HASH)
        non_null = n - nulls
        if pa.types.is_integer(atype) or pa.types.is_floating(atype) or pa.types.is_decimal(atype):
            acc.native = "integer" if pa.types.is_integer(atype) else "float"
            acc.n_number += non_null
            if pa.types.is_integer(atype):
                acc.n_integer += non_null
            self._add_numbers(acc, pc.cast(pc.drop_null(arr), pa.float64()).to_numpy(zero_copy_only=False))
        elif pa.types.is_boolean(atype):
            acc.native = "boolean"
            acc.n_true += pc.sum(pc.fill_null(arr, False)).as_py() or 0
            acc.n_false += pc.sum(pc.fill_null(pc.invert(arr), False)).as_py() or 0
        elif pa.types.is_timestamp(atype) or pa.types.is_date(atype):
            acc.native = "datetime"
            acc.n_datetime += non_null
            self._add_datetimes(acc, strings_to_datetime(pc.drop_null(arr)))
        else:
            self._add_string_evidence(acc, pc.drop_null(strings), dictionary, values=values, counts=counts,
                                      non_null=non_null)
        self._count_values(acc, values, counts, value_hashes, row_hash[present])
        return row_hash

    def _add_string_evidence(self, acc: ColumnAccumulator, valid: pa.Array, dictionary: pa.Array, *,
                             values: np.ndarray, counts: np.ndarray, non_null: int) -> None:
        """What the distinct strings of a batch could be read as, weighted by their counts.

        Booleans and datetimes matter only when every value is one (the
        type is all or nothing), so their full checks run only when a cheap
        look says they might; numbers are always counted exactly, because a
        column that is mostly numbers must be reported as mixed."""
        if casts_to(dictionary, pa.float64()):
            # Clean numbers (the common case): no pattern matching needed.
            acc.n_number += non_null
            if casts_to(dictionary, pa.int64()):
                acc.n_integer += non_null
            self._add_numbers(acc, strings_to_float(valid).to_numpy(zero_copy_only=False))
        else:
            is_number = number_mask(dictionary).to_numpy(zero_copy_only=False)
            n_number = int(counts[is_number].sum())
            acc.n_number += n_number
            if n_number:
                acc.n_integer += int(counts[integer_mask(dictionary).to_numpy(zero_copy_only=False)].sum())
            if n_number == non_null:  # numbers with spaces around them
                self._add_numbers(acc, strings_to_float(valid).to_numpy(zero_copy_only=False))
            else:
                self._add_boolean_and_datetime_evidence(acc, dictionary, counts)
                if n_number and len(acc.text_examples) < 5:
                    for value in values[~is_number][:5].tolist():
                        if len(acc.text_examples) < 5 and value not in acc.text_examples:
                            acc.text_examples.append(value)
        lengths = pc.utf8_length(dictionary).to_numpy(zero_copy_only=False)
        acc.length_sum += int((lengths * counts).sum())

    def _add_boolean_and_datetime_evidence(self, acc: ColumnAccumulator, dictionary: pa.Array,
                                           counts: np.ndarray) -> None:
        # At most 3 spellings (true, True, TRUE) of 4 words can all be booleans.
        if len(dictionary) <= 12:
            true, false = boolean_masks(dictionary)
            acc.n_true += int(counts[true.to_numpy(zero_copy_only=False)].sum())
            acc.n_false += int(counts[false.to_numpy(zero_copy_only=False)].sum())
        if not pc.all(datetime_mask(dictionary.slice(0, 64))).as_py():
            return
        is_datetime = datetime_mask(dictionary)
        datetime_np = is_datetime.to_numpy(zero_copy_only=False)
        if datetime_np.any():
            acc.n_datetime += int(counts[datetime_np].sum())
            self._add_datetimes(acc, strings_to_datetime(pc.filter(dictionary, is_datetime)))

    def _add_numbers(self, acc: ColumnAccumulator, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        n_b = values.size
        if not n_b:
            return
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        n_a = acc.count
        delta = mean_b - acc.mean
        total = n_a + n_b
        acc.mean += delta * n_b / total
        acc.m2 += m2_b + delta * delta * n_a * n_b / total
        acc.count = total
        acc.minimum = min(acc.minimum, float(values.min()))
        acc.maximum = max(acc.maximum, float(values.max()))
        acc.zeros += int((values == 0).sum())
        keys = self.rng.random(n_b)
        sample = np.concatenate([acc.sample, values])
        sample_keys = np.concatenate([acc.sample_keys, keys])
        if sample.size > SAMPLE_SIZE:
            keep = np.argpartition(sample_keys, SAMPLE_SIZE)[:SAMPLE_SIZE]
            sample, sample_keys = sample[keep], sample_keys[keep]
        acc.sample, acc.sample_keys = sample, sample_keys

    @staticmethod
    def _add_datetimes(acc: ColumnAccumulator, values: pa.Array) -> None:
        values = pc.drop_null(values)
        if not len(values):
            return
        low, high = pc.min(values).as_py(), pc.max(values).as_py()
        low, high = pd.Timestamp(low), pd.Timestamp(high)
        acc.dt_min = low if acc.dt_min is None or earlier(low, acc.dt_min) else acc.dt_min
        acc.dt_max = high if acc.dt_max is None or earlier(acc.dt_max, high) else acc.dt_max

    def _count_values(self, acc: ColumnAccumulator, values: np.ndarray, counts: np.ndarray,
                      value_hashes: np.ndarray, row_hashes: np.ndarray) -> None:
        """Exact counts per value (by text form) up to TRACK_LIMIT distinct
        values, a k-minimum-values sketch beyond."""
        if acc.track_unique:
            acc.value_hashes.append(row_hashes)
        if acc.counts is not None:
            if len(values) <= TRACK_LIMIT:
                for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                    acc.counts[value] = acc.counts.get(value, 0) + count
                if len(acc.counts) <= TRACK_LIMIT:
                    return
            # Too many distinct values to count: keep a distinct-count sketch from now on.
            known = np.asarray(list(acc.counts), dtype=object)
            acc.kmv = kmv_merge(None, hash_values(known)) if known.size else None
            acc.counts = None
        acc.kmv = kmv_merge(acc.kmv, value_hashes)

    # --- types ----------------------------------------------------------------------

    def infer_types(self, declared: dict[str, str] | None = None) -> dict[str, str]:
        """Column types after pass 1. ``declared`` types (from expectations)
        win when the data can be read as them."""
        declared = declared or {}
        types = {}
        self.declared = {name: wanted for name, wanted in declared.items() if name in self.columns}
        for name in self.order:
            acc = self.columns[name]
            inferred = infer_type(acc)
            wanted = declared.get(name)
            types[name] = wanted if wanted and readable_as(acc, wanted) else inferred
        self.types = types
        return types

    def distinct(self, acc: ColumnAccumulator) -> tuple[int, bool]:
        """(distinct non-null values, whether the count is exact)."""
        if acc.counts is not None:
            return len(acc.counts), True
        if acc.kmv is None:
            return 0, True
        if acc.kmv.size < KMV_K:
            return int(acc.kmv.size), True
        estimate = (KMV_K - 1) / (float(acc.kmv[KMV_K - 1]) / 2.0**64)
        return int(min(round(estimate), acc.non_null)), False

    # --- pass 2 -------------------------------------------------------------------

    def numeric_columns(self) -> list[str]:
        return [name for name in self.order if self.types.get(name) in ("integer", "float")
                and self.columns[name].count > 0]

    def start_second_pass(self) -> list[str]:
        names = self.numeric_columns()
        stats = {name: numeric_summary(self.columns[name], self.types[name]) for name in names}
        self.pass2 = _SecondPass(names, stats)
        return names

    def add_numeric_batch(self, batch: pa.RecordBatch) -> None:
        self.pass2.add(batch)

    # --- result -------------------------------------------------------------------

    def mixed(self, name: str) -> bool:
        """Mixed types, unless an expectation declared the column's type."""
        return name not in self.declared and is_mixed(self.columns[name], self.types[name])

    def duplicate_rows(self) -> int:
        if not self.row_hashes:
            return 0
        return repeats(np.concatenate(self.row_hashes))

    def duplicate_values(self, name: str) -> int | None:
        """Exact count of repeated non-null values (only for ``unique_columns``)."""
        acc = self.columns[name]
        if acc.counts is not None:
            return sum(count - 1 for count in acc.counts.values() if count > 1)
        if not acc.track_unique:
            return None
        return repeats(np.concatenate(acc.value_hashes)) if acc.value_hashes else 0


class _SecondPass:
    """Exact outlier counts, histograms and correlations over numeric columns."""

    def __init__(self, names: list[str], stats: dict[str, dict]):
        self.names = names
        self.stats = stats
        self.fences, self.edges = {}, {}
        for name in names:
            s = stats[name]
            iqr = (s["q3"] or 0.0) - (s["q1"] or 0.0)
            self.fences[name] = ((s["q1"] or 0.0) - 1.5 * iqr, (s["q3"] or 0.0) + 1.5 * iqr)
            low, high = s["min"], s["max"]
            if s["integer"] and high - low <= HISTOGRAM_BINS * 2:
                self.edges[name] = np.arange(low - 0.5, high + 1.5, 1.0)
            elif high > low:
                self.edges[name] = np.linspace(low, high, HISTOGRAM_BINS + 1)
            else:
                self.edges[name] = np.array([low - 0.5, high + 0.5])
        k = len(names)
        self.outliers = {name: [0, 0] for name in names}
        self.hist = {name: np.zeros(len(self.edges[name]) - 1, dtype=np.int64) for name in names}
        self.range_checks: dict[str, tuple[float | None, float | None, list[int]]] = {}
        self.centre = np.array([stats[name]["mean"] or 0.0 for name in names])
        self.sxy = np.zeros((k, k))
        self.sx = np.zeros((k, k))
        self.sx2 = np.zeros((k, k))
        self.n = np.zeros((k, k))

    def check_range(self, name: str, low: float | None, high: float | None) -> None:
        self.range_checks[name] = (low, high, [0, 0])

    def add(self, batch: pa.RecordBatch) -> None:
        if not self.names:
            return
        matrix = np.empty((batch.num_rows, len(self.names)))
        for j, name in enumerate(self.names):
            values = strings_to_float(batch.column(name)).to_numpy(zero_copy_only=False).astype(np.float64)
            matrix[:, j] = values
            finite = values[np.isfinite(values)]
            low, high = self.fences[name]
            self.outliers[name][0] += int((finite < low).sum())
            self.outliers[name][1] += int((finite > high).sum())
            self.hist[name] += np.histogram(finite, bins=self.edges[name])[0]
            if name in self.range_checks:
                r_low, r_high, counts = self.range_checks[name]
                if r_low is not None:
                    counts[0] += int((finite < r_low).sum())
                if r_high is not None:
                    counts[1] += int((finite > r_high).sum())
        present = np.isfinite(matrix).astype(np.float64)
        centred = np.where(present > 0, matrix - self.centre, 0.0)
        self.sxy += centred.T @ centred
        self.sx += centred.T @ present
        self.sx2 += (centred**2).T @ present
        self.n += present.T @ present

    def correlation(self) -> np.ndarray:
        """Pairwise-complete Pearson r from the centred sums."""
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = n * self.sxy - self.sx * self.sx.T
            var_x = n * self.sx2 - self.sx**2
            var_y = var_x.T
            r = cov / np.sqrt(var_x * var_y)
        r[~np.isfinite(r)] = np.nan
        np.fill_diagonal(r, 1.0)
        return np.clip(r, -1.0, 1.0)
