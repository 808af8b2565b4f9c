"""Schema inference and profiling of a table in two streaming passes.

No Django here; the validation task and ``bench/data_profile.py`` call
``profile_file``. Memory stays bounded by the batch size plus small per-column
summaries, never the whole table:

* **Pass 1** reads every column as strings (CSV) or native types (Parquet)
  and keeps, per column: null count; how many fields parse as numbers,
  integers, booleans and ISO 8601 datetimes; streaming moments (Chan et al.'s
  parallel update of mean and M2); a uniform random sample of numeric values
  for quantiles (bottom-k by random key); exact value counts up to
  ``TRACK_LIMIT`` distinct values, then a k-minimum-values sketch for the
  distinct count (Bar-Yossef et al. 2002, Beyer et al. 2007); and a 64-bit
  hash per row to count duplicate rows.
* **Pass 2** reads only the numeric columns, now that their types, exact
  minimum/maximum and quartiles are known, to count IQR outliers exactly, fill
  the histograms and accumulate pairwise-complete Pearson correlations from
  centred sums.

Quantiles are exact up to ``SAMPLE_SIZE`` values per column and estimated
from the uniform sample beyond that (the schema says which).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from apps.datasets import expectations as expectation_rules
from apps.datasets import quality
from apps.datasets.fileformats import (
    BadRows,
    Sniffed,
    as_strings,
    boolean_masks,
    datetime_mask,
    integer_mask,
    iter_batches,
    number_mask,
    strings_to_datetime,
    strings_to_float,
)

CATEGORY_LIMIT = 200      # most frequent values kept in the schema of a column
TRACK_LIMIT = 2000        # distinct values counted exactly per column
SAMPLE_SIZE = 50_000      # numeric values sampled per column for quantiles
KMV_K = 4096              # hashes kept by the distinct-count sketch
HISTOGRAM_BINS = 30
MISSING_MAP_BLOCKS = 60
MIXED_TYPE_SHARE = 0.8    # a string column this numeric is a number column with typos
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|barcode|accession)$|^id_", re.IGNORECASE)

ProgressFn = Callable[[float, str], None]
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_HASH_MULTIPLIER = np.uint64(1_000_003)


@dataclass
class ColumnAccumulator:
    """Everything pass 1 learns about one column."""

    name: str
    track_unique: bool = False
    rows: int = 0
    nulls: int = 0
    native: str = "string"  # string | integer | float | boolean | datetime
    n_number: int = 0
    n_integer: int = 0
    n_true: int = 0
    n_false: int = 0
    n_datetime: int = 0
    text_examples: list[str] = field(default_factory=list)
    # Moments of the values that parse as numbers.
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    zeros: int = 0
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample_keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    dt_min: pd.Timestamp | None = None
    dt_max: pd.Timestamp | None = None
    length_sum: int = 0
    counts: dict | None = field(default_factory=dict)
    kmv: np.ndarray | None = None
    value_hashes: list = field(default_factory=list)
    missing_blocks: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls


def _kmv_merge(current: np.ndarray | None, hashes: np.ndarray) -> np.ndarray:
    """The KMV_K smallest distinct hashes of ``current`` and ``hashes``."""
    if hashes.size > KMV_K:
        hashes = np.partition(hashes, KMV_K)[: KMV_K + 1]
    return _sorted_distinct(hashes if current is None else np.concatenate([current, hashes]))[:KMV_K]


def _casts(arr: pa.Array, target: pa.DataType) -> bool:
    try:
        pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    # Sort-based: much faster than numpy's hash-based unique for uint64.
    values = np.sort(values)
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def _repeats(values: np.ndarray) -> int:
    """How many values repeat an earlier one."""
    values = np.sort(values)
    return int((values[1:] == values[:-1]).sum()) if values.size > 1 else 0


def _hash_values(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of values by their text form (pandas' SipHash-based hash_array)."""
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


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
            row_hash = row_hash * _HASH_MULTIPLIER ^ column_hash
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
            return np.full(n, _NULL_HASH, dtype=np.uint64)
        atype = arr.type
        strings = as_strings(arr)
        encoded = pc.dictionary_encode(strings)
        dictionary = encoded.dictionary
        index = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        present = index >= 0
        counts = np.bincount(index[present], minlength=len(dictionary))
        values = dictionary.to_numpy(zero_copy_only=False)
        value_hashes = _hash_values(values)
        row_hash = np.where(present, value_hashes[np.maximum(index, 0)], _NULL_HASH)
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
        if _casts(dictionary, pa.float64()):
            # Clean numbers (the common case): no pattern matching needed.
            acc.n_number += non_null
            if _casts(dictionary, pa.int64()):
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
        acc.dt_min = low if acc.dt_min is None or _earlier(low, acc.dt_min) else acc.dt_min
        acc.dt_max = high if acc.dt_max is None or _earlier(acc.dt_max, high) else acc.dt_max

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
            acc.kmv = _kmv_merge(None, _hash_values(known)) if known.size else None
            acc.counts = None
        acc.kmv = _kmv_merge(acc.kmv, value_hashes)

    # --- types ----------------------------------------------------------------------

    def infer_types(self, declared: dict[str, str] | None = None) -> dict[str, str]:
        """Column types after pass 1. ``declared`` types (from expectations)
        win when the data can be read as them."""
        declared = declared or {}
        types = {}
        self.declared = {name: wanted for name, wanted in declared.items() if name in self.columns}
        for name in self.order:
            acc = self.columns[name]
            inferred = _infer_type(acc)
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
        return _repeats(np.concatenate(self.row_hashes))

    def duplicate_values(self, name: str) -> int | None:
        """Exact count of repeated non-null values (only for ``unique_columns``)."""
        acc = self.columns[name]
        if acc.counts is not None:
            return sum(count - 1 for count in acc.counts.values() if count > 1)
        if not acc.track_unique:
            return None
        return _repeats(np.concatenate(acc.value_hashes)) if acc.value_hashes else 0


def _earlier(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
    return a < b


def _infer_type(acc: ColumnAccumulator) -> str:
    nn = acc.non_null
    if acc.native != "string":
        return acc.native
    if nn == 0:
        return "float"  # an empty column; pandas reads it as float NaN too
    if acc.n_number == nn:
        return "integer" if acc.n_integer == nn else "float"
    if acc.n_true + acc.n_false == nn:
        return "boolean"
    if acc.n_datetime == nn:
        return "datetime"
    if acc.counts is not None:
        distinct = len(acc.counts)
        if distinct <= CATEGORY_LIMIT and (distinct * 2 <= nn or nn < 20):
            return "categorical"
    return "text"


def readable_as(acc: ColumnAccumulator, wanted: str) -> bool:
    """Whether every non-null value of the column can be read as ``wanted``."""
    nn = acc.non_null
    if wanted in ("categorical", "text"):
        return acc.native in ("string", "integer", "boolean") or wanted == "text"
    if wanted == "float":
        return acc.n_number == nn
    if wanted == "integer":
        return acc.n_integer == nn
    if wanted == "boolean":
        return acc.n_true + acc.n_false == nn
    if wanted == "datetime":
        return acc.n_datetime == nn
    return False


def is_mixed(acc: ColumnAccumulator, column_type: str) -> bool:
    """A string column whose fields are mostly numbers: typos such as 'n.d.'
    or '<0.5' in a measurement column."""
    nn = acc.non_null
    return (column_type in ("categorical", "text") and acc.native == "string" and 0 < acc.n_number < nn
            and acc.n_number >= MIXED_TYPE_SHARE * nn)


def numeric_summary(acc: ColumnAccumulator, column_type: str) -> dict:
    sample = np.sort(acc.sample)
    q1, median, q3 = (float(np.quantile(sample, q)) for q in (0.25, 0.5, 0.75)) if sample.size else (None,) * 3
    std = math.sqrt(acc.m2 / (acc.count - 1)) if acc.count > 1 else 0.0
    return {
        "count": acc.count, "min": _num(acc.minimum), "max": _num(acc.maximum), "mean": _num(acc.mean),
        "std": _num(std), "q1": _num(q1), "median": _num(median), "q3": _num(q3), "zeros": acc.zeros,
        "quantiles_exact": acc.count <= SAMPLE_SIZE, "integer": column_type == "integer",
    }


def _num(value):
    if value is None or not math.isfinite(value):
        return None
    return float(round(value, 10))


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


# --- Driving the passes over a file -------------------------------------------------


@dataclass
class ProfileResult:
    """Schema, quality report and expectation results of one file."""

    schema: dict
    quality_report: dict
    expectation_results: list[dict]
    row_count: int
    column_count: int
    problems: list[str]


def profile_file(
    open_file: Callable[[], object],
    *,
    sniffed: Sniffed,
    size_bytes: int,
    target: str = "",
    expectations: list[dict] | None = None,
    progress: ProgressFn | None = None,
    seed: int = 0,
) -> ProfileResult:
    """Profile a stored file in two passes. ``open_file()`` returns a fresh
    binary file object each time. Returns problems (reasons the version is
    invalid) rather than raising for bad content; raises ``BadFile`` only
    when the file cannot be read at all."""
    expectations = expectations or []
    report = progress or (lambda fraction, message: None)
    bad_rows = BadRows()
    estimate = _estimate_rows(sniffed, size_bytes)
    profiler = Profiler(
        sniffed.columns,
        block_rows=max(1, math.ceil(estimate / MISSING_MAP_BLOCKS)),
        unique_columns=expectation_rules.unique_columns(expectations),
        seed=seed,
    )
    report(0.02, "Reading and inferring the schema")
    with open_file() as handle:
        for batch, fraction in iter_batches(handle, sniffed=sniffed, bad_rows=bad_rows, total_bytes=size_bytes):
            profiler.add_batch(batch)
            report(0.02 + 0.6 * fraction, f"Pass 1: {profiler.rows:,} rows read")
    profiler.infer_types(expectation_rules.declared_types(expectations))
    numeric = profiler.start_second_pass()
    expectation_rules.prepare_range_checks(expectations, profiler.pass2)
    if numeric and profiler.rows:
        report(0.64, "Pass 2: outliers, histograms, correlations")
        with open_file() as handle:
            for batch, fraction in iter_batches(handle, sniffed=sniffed, columns=numeric,
                                                bad_rows=BadRows(), total_bytes=size_bytes):
                profiler.add_numeric_batch(batch)
                report(0.64 + 0.3 * fraction, "Pass 2: outliers, histograms, correlations")
    report(0.96, "Writing the schema and the quality report")
    schema = build_schema(profiler, target=target)
    results = expectation_rules.evaluate(expectations, profiler=profiler, schema=schema)
    report_dict = quality.build_report(profiler, schema=schema, target=target, bad_rows=bad_rows)
    problems = []
    if profiler.rows == 0:
        problems.append("The file has no data rows.")
    if bad_rows.count:
        example = bad_rows.examples[0]
        problems.append(
            f"{bad_rows.count:,} row(s) do not have the {example['expected']} fields of the header, "
            f"e.g. {example['text']!r} has {example['actual']}."
        )
    for mixed in report_dict["mixed_types"]:
        problems.append(
            f"Column {mixed['column']!r} has mixed types: {mixed['numeric_share']:.1%} numbers but "
            f"{mixed['text_count']:,} text value(s) such as {', '.join(repr(e) for e in mixed['examples'][:3])}. "
            "Fix the values, or add a type expectation (categorical or text) to keep the column as text."
        )
    for result in results:
        if not result["passed"] and result["severity"] == "error":
            problems.append(f"Expectation failed: {result['message']}")
    return ProfileResult(schema=schema, quality_report=report_dict, expectation_results=results,
                         row_count=profiler.rows, column_count=len(sniffed.columns), problems=problems)


def _estimate_rows(sniffed: Sniffed, size_bytes: int) -> int:
    if sniffed.num_rows is not None:
        return sniffed.num_rows
    # A rough count for the missing-value map's row blocks; ~12 bytes a field.
    return max(1, size_bytes // max(12 * len(sniffed.columns), 1))


def build_schema(profiler: Profiler, *, target: str = "") -> dict:
    columns = []
    for position, name in enumerate(profiler.order):
        acc = profiler.columns[name]
        column_type = profiler.types[name]
        distinct, exact = profiler.distinct(acc)
        nn = acc.non_null
        stats: dict = {"non_null": nn, "distinct": distinct, "distinct_exact": exact}
        if column_type in ("integer", "float"):
            stats.update(numeric_summary(acc, column_type))
        elif column_type == "boolean":
            stats.update({"true": acc.n_true, "false": acc.n_false})
        elif column_type == "datetime":
            stats.update({"min": acc.dt_min.isoformat() if acc.dt_min is not None else None,
                          "max": acc.dt_max.isoformat() if acc.dt_max is not None else None})
        if column_type in ("categorical", "text") or (column_type in ("integer", "boolean") and name == target):
            if acc.counts is not None:
                ranked = sorted(acc.counts.items(), key=lambda item: (-item[1], item[0]))
                limit = CATEGORY_LIMIT if column_type != "text" else 10
                stats["counts"] = dict(ranked[:limit])
                stats["other_count"] = sum(count for _, count in ranked[limit:])
            if column_type == "text" and nn:
                stats["mean_length"] = round(acc.length_sum / nn, 2) if acc.length_sum else None
        if profiler.mixed(name):
            stats["numeric_share"] = round(acc.n_number / nn, 6)
            stats["text_examples"] = acc.text_examples
        columns.append({
            "name": name,
            "position": position,
            "type": column_type,
            "null_share": round(acc.nulls / acc.rows, 6) if acc.rows else 0.0,
            "unique_share": round(distinct / nn, 6) if nn else 0.0,
            "role": _role(name, column_type, distinct, nn, target),
            "stats": stats,
        })
    return {"columns": columns, "row_count": profiler.rows}


def _role(name: str, column_type: str, distinct: int, non_null: int, target: str) -> str:
    if target and name == target:
        return "target"
    if column_type == "datetime":
        return "timestamp"
    all_distinct = non_null >= 10 and distinct >= 0.99 * non_null
    if all_distinct and (column_type == "text" or (column_type == "integer" and _ID_NAME.search(name))):
        return "identifier"
    if column_type == "text" and _ID_NAME.search(name) and distinct >= 0.9 * non_null:
        return "identifier"
    return "feature"
