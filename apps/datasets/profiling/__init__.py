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

from apps.datasets.profiling.columns import (
    CATEGORY_LIMIT,
    KMV_K,
    MIXED_TYPE_SHARE,
    SAMPLE_SIZE,
    TRACK_LIMIT,
    ColumnAccumulator,
    is_mixed,
    numeric_summary,
    readable_as,
)
from apps.datasets.profiling.profiler import Profiler
from apps.datasets.profiling.report import ProfileResult, build_schema, profile_file

__all__ = [
    "CATEGORY_LIMIT",
    "KMV_K",
    "MIXED_TYPE_SHARE",
    "SAMPLE_SIZE",
    "TRACK_LIMIT",
    "ColumnAccumulator",
    "ProfileResult",
    "Profiler",
    "build_schema",
    "is_mixed",
    "numeric_summary",
    "profile_file",
    "readable_as",
]
