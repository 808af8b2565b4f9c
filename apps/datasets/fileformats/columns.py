"""Column conversions shared by profiling and reading, so that both agree on
what a number, a missing value, a boolean or a date is."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# The tokens pandas reads as missing by default, so a file means the same
# thing here as in a notebook.
NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
TRUE_VALUES = ("true", "yes")
FALSE_VALUES = ("false", "no")

_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_INTEGER = r"^\s*-?\d{1,18}\s*$"
_DATETIME = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?\s*$"
_TZ_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})\s*$"


def number_mask(arr: pa.Array) -> pa.Array:
    """True where a string field is a number (int, decimal or exponent form)."""
    return pc.fill_null(pc.match_substring_regex(arr, _NUMBER), False)


def integer_mask(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(arr, _INTEGER), False)


def boolean_masks(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    true = pc.fill_null(pc.is_in(lowered, value_set=pa.array(TRUE_VALUES)), False)
    false = pc.fill_null(pc.is_in(lowered, value_set=pa.array(FALSE_VALUES)), False)
    return true, false


def datetime_mask(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(arr, _DATETIME), False)


def _null_where_not(arr: pa.Array, mask: pa.Array) -> pa.Array:
    return pc.if_else(mask, arr, pa.scalar(None, arr.type))


def strings_to_float(arr: pa.Array) -> pa.Array:
    """Numbers as float64; anything else becomes null."""
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return pc.cast(arr, pa.float64())
    try:
        # The common case, a clean number column, in one C++ pass; "inf" is
        # the only spelling this accepts that the pattern below does not,
        # and type inference never gets here with one.
        return pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.cast(_null_where_not(trimmed, number_mask(trimmed)), pa.float64())


def strings_to_datetime(arr: pa.Array) -> pa.Array:
    """ISO 8601 dates/times as timestamps (UTC when any value has an offset)."""
    if pa.types.is_timestamp(arr.type):
        return arr
    if pa.types.is_date(arr.type):
        return pc.cast(arr, pa.timestamp("us"))
    trimmed = pc.utf8_trim_whitespace(arr)
    valid = _null_where_not(trimmed, datetime_mask(trimmed))
    has_tz = pc.any(pc.fill_null(pc.match_substring_regex(valid, _TZ_SUFFIX), False)).as_py()
    try:
        return pc.cast(valid, pa.timestamp("us", tz="UTC") if has_tz else pa.timestamp("us"))
    except pa.ArrowInvalid:
        parsed = pd.to_datetime(pd.Series(valid.to_pylist(), dtype=object), format="ISO8601", utc=True,
                                errors="coerce")
        return pa.array(parsed.dt.as_unit("us"), type=pa.timestamp("us", tz="UTC"))


def as_strings(arr: pa.Array) -> pa.Array:
    """Any Arrow column as strings; nested Parquet types (lists, structs)
    that Arrow cannot cast become their Python text form."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if value is None else str(value) for value in arr.to_pylist()], type=pa.string())


def convert_column(arr: pa.Array, column_type: str) -> pd.Series:
    """A column of a batch as the pandas dtype its schema type implies:
    integer → int64 (float64 when values are missing), float → float64,
    boolean → pandas ``boolean``, datetime → datetime64, categorical/text → str."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    is_string = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    if column_type in ("integer", "float"):
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            values = arr if column_type == "integer" else pc.cast(arr, pa.float64())
        elif is_string and column_type == "integer":
            trimmed = pc.utf8_trim_whitespace(arr)
            mask = integer_mask(trimmed)
            all_integers = pc.all(pc.or_(mask, pc.is_null(arr))).as_py()
            values = pc.cast(_null_where_not(trimmed, mask), pa.int64()) if all_integers else strings_to_float(arr)
        elif is_string:
            values = strings_to_float(arr)
        else:
            values = pc.cast(arr, pa.float64())
        series = values.to_pandas()
        if column_type == "integer" and not series.isna().any():
            return series.astype("int64")
        return series.astype("float64")
    if column_type == "boolean":
        if pa.types.is_boolean(arr.type):
            values = arr
        else:
            true, false = boolean_masks(arr)
            values = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        return values.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get).astype("boolean")
    if column_type == "datetime":
        return strings_to_datetime(arr).to_pandas()
    if not is_string:
        arr = as_strings(arr)
    return arr.to_pandas().astype("str")
