"""What profiling keeps per column, and the rules that turn it into a type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CATEGORY_LIMIT = 200      # most frequent values kept in the schema of a column
TRACK_LIMIT = 2000        # distinct values counted exactly per column
SAMPLE_SIZE = 50_000      # numeric values sampled per column for quantiles
KMV_K = 4096              # hashes kept by the distinct-count sketch
HISTOGRAM_BINS = 30
MISSING_MAP_BLOCKS = 60
MIXED_TYPE_SHARE = 0.8    # a string column this numeric is a number column with typos
ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|barcode|accession)$|^id_", re.IGNORECASE)

ProgressFn = Callable[[float, str], None]
NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
HASH_MULTIPLIER = np.uint64(1_000_003)


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


def kmv_merge(current: np.ndarray | None, hashes: np.ndarray) -> np.ndarray:
    """The KMV_K smallest distinct hashes of ``current`` and ``hashes``."""
    if hashes.size > KMV_K:
        hashes = np.partition(hashes, KMV_K)[: KMV_K + 1]
    return sorted_distinct(hashes if current is None else np.concatenate([current, hashes]))[:KMV_K]


def casts_to(arr: pa.Array, target: pa.DataType) -> bool:
    try:
        pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    # Sort-based: much faster than numpy's hash-based unique for uint64.
    values = np.sort(values)
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def repeats(values: np.ndarray) -> int:
    """How many values repeat an earlier one."""
    values = np.sort(values)
    return int((values[1:] == values[:-1]).sum()) if values.size > 1 else 0


def hash_values(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of values by their text form (pandas' SipHash-based hash_array)."""
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def earlier(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
    return a < b


def infer_type(acc: ColumnAccumulator) -> str:
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
