"""Expectations a dataset's versions must meet, checked while profiling.

No Django here: an expectation is a plain dict ``{"id", "kind", "column",
"params", "severity"}`` (the ``Expectation`` model stores exactly that), and
``evaluate`` turns the profiler's summaries into one result per expectation:
``{"expectation_id", "kind", "column", "severity", "passed", "observed",
"message"}``. A failed ``error`` expectation makes the version invalid; a
failed ``warning`` is only shown.

Kinds and their params:

=====================  =========================================  ==========================================
kind                   params                                     passes when
=====================  =========================================  ==========================================
``column_exists``      —                                          the column is in the file
``column_type``        ``{"type": "integer|float|boolean|         every value reads as that type (integer
                       categorical|text|datetime"}``              values satisfy ``float``); the type is
                                                                  then used for the column
``value_range``        ``{"min": number?, "max": number?}``       no value lies outside the bounds
``allowed_categories`` ``{"values": [str, ...]}``                 every non-null value is in the list
``not_null``           ``{"max_null_share": 0..1}`` (default 0)   the share of missing values is at most that
``unique``             —                                          no non-null value repeats
``row_count``          ``{"min": int?, "max": int?}``             the row count is within the bounds
=====================  =========================================  ==========================================
"""

from __future__ import annotations

import math

KINDS = ("column_exists", "column_type", "value_range", "allowed_categories", "not_null", "unique", "row_count")
COLUMN_TYPES = ("integer", "float", "boolean", "categorical", "text", "datetime")
SEVERITIES = ("error", "warning")
TABLE_KINDS = ("row_count",)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_definition(*, kind: str, column: str, params: dict) -> dict[str, str]:
    """Field errors of an expectation definition (empty when it is fine)."""
    errors: dict[str, str] = {}
    if kind not in KINDS:
        return {"kind": f"must be one of {', '.join(KINDS)}"}
    if kind in TABLE_KINDS:
        if column:
            errors["column"] = f"a {kind} expectation applies to the whole table; leave the column empty"
    elif not column:
        errors["column"] = "required"
    if not isinstance(params, dict):
        return {**errors, "params": "must be an object"}
    if kind == "column_type":
        if params.get("type") not in COLUMN_TYPES:
            errors["params.type"] = f"must be one of {', '.join(COLUMN_TYPES)}"
    elif kind in ("value_range", "row_count"):
        low, high = params.get("min"), params.get("max")
        if low is None and high is None:
            errors["params"] = "give min, max or both"
        for key, value in (("min", low), ("max", high)):
            if value is not None and not _number(value):
                errors[f"params.{key}"] = "must be a number"
        if _number(low) and _number(high) and low > high:
            errors["params.min"] = "must not be greater than max"
    elif kind == "allowed_categories":
        values = params.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int)) for v in values):
            errors["params.values"] = "must be a non-empty list of category values"
    elif kind == "not_null":
        share = params.get("max_null_share", 0)
        if not _number(share) or not 0 <= share <= 1:
            errors["params.max_null_share"] = "must be a number between 0 and 1"
    unknown = set(params) - {
        "column_type": {"type"}, "value_range": {"min", "max"}, "row_count": {"min", "max"},
        "allowed_categories": {"values"}, "not_null": {"max_null_share"},
    }.get(kind, set())
    if unknown:
        errors["params"] = f"unknown parameters: {', '.join(sorted(unknown))}"
    return errors


def describe(expectation: dict) -> str:
    """One line a lab person can read, e.g. "a260_280 between 1.6 and 2.2"."""
    kind, column, params = expectation["kind"], expectation.get("column") or "", expectation.get("params") or {}
    if kind == "column_exists":
        return f"column {column} is present"
    if kind == "column_type":
        return f"{column} is {params.get('type')}"
    if kind in ("value_range", "row_count"):
        subject = column if kind == "value_range" else "row count"
        low, high = params.get("min"), params.get("max")
        if low is not None and high is not None:
            return f"{subject} between {low} and {high}"
        return f"{subject} ≥ {low}" if low is not None else f"{subject} ≤ {high}"
    if kind == "allowed_categories":
        values = params.get("values") or []
        shown = ", ".join(str(v) for v in values[:8]) + (", …" if len(values) > 8 else "")
        return f"{column} in {{{shown}}}"
    if kind == "not_null":
        share = params.get("max_null_share", 0) or 0
        return f"{column} has no missing values" if not share else f"{column} missing ≤ {share:.1%}"
    if kind == "unique":
        return f"{column} values are unique"
    return kind


def declared_types(expectations: list[dict]) -> dict[str, str]:
    return {e["column"]: e["params"]["type"] for e in expectations
            if e["kind"] == "column_type" and e.get("column") and (e.get("params") or {}).get("type")}


def unique_columns(expectations: list[dict]) -> set[str]:
    return {e["column"] for e in expectations if e["kind"] == "unique" and e.get("column")}


def prepare_range_checks(expectations: list[dict], second_pass) -> None:
    """Ask the profiler's second pass to count values outside each range."""
    if second_pass is None:
        return
    for e in expectations:
        if e["kind"] == "value_range" and e.get("column") in second_pass.names:
            params = e.get("params") or {}
            second_pass.check_range(e["column"], params.get("min"), params.get("max"))


def _result(expectation: dict, passed: bool, observed, message: str) -> dict:
    return {
        "expectation_id": expectation.get("id"),
        "kind": expectation["kind"],
        "column": expectation.get("column") or "",
        "severity": expectation.get("severity") or "error",
        "description": describe(expectation),
        "passed": bool(passed),
        "observed": observed,
        "message": message,
    }


def evaluate(expectations: list[dict], *, profiler, schema: dict) -> list[dict]:
    """One result per expectation, from what the profiler saw."""
    by_name = {c["name"]: c for c in schema["columns"]}
    results = []
    for e in expectations:
        kind, column, params = e["kind"], e.get("column") or "", e.get("params") or {}
        what = describe(e)
        if kind == "row_count":
            rows = profiler.rows
            ok = (params.get("min") is None or rows >= params["min"]) and (
                params.get("max") is None or rows <= params["max"])
            results.append(_result(e, ok, {"rows": rows}, f"{what}: {rows:,} rows"))
            continue
        info = by_name.get(column)
        if info is None:
            results.append(_result(e, False, {"present": False}, f"{what}: the column {column!r} is missing"))
            continue
        acc = profiler.columns[column]
        if kind == "column_exists":
            results.append(_result(e, True, {"present": True}, f"{what}: present"))
        elif kind == "column_type":
            wanted = params["type"]
            actual = info["type"]
            ok = actual == wanted or (wanted == "float" and actual == "integer") or (
                wanted == "text" and actual == "categorical")
            results.append(_result(e, ok, {"type": actual},
                                   f"{what}: the values read as {actual}" if not ok else f"{what}: yes"))
        elif kind == "value_range":
            if info["type"] not in ("integer", "float"):
                results.append(_result(e, False, {"type": info["type"]},
                                       f"{what}: the column is {info['type']}, not numeric"))
                continue
            below = above = 0
            checks = profiler.pass2.range_checks.get(column) if profiler.pass2 else None
            if checks is not None:  # None when the column has no value at all
                below, above = checks[2]
            stats = info["stats"]
            observed = {"min": stats.get("min"), "max": stats.get("max"), "below": below, "above": above}
            ok = below == 0 and above == 0
            message = f"{what}: observed {stats.get('min')} to {stats.get('max')}"
            if not ok:
                message += f"; {below:,} value(s) below and {above:,} above"
            results.append(_result(e, ok, observed, message))
        elif kind == "allowed_categories":
            allowed = {str(v) for v in params["values"]}
            if acc.counts is None:
                results.append(_result(e, False, {"distinct": info["stats"].get("distinct")},
                                       f"{what}: the column has too many distinct values to be categorical"))
                continue
            unexpected = sorted(((v, c) for v, c in acc.counts.items() if v not in allowed), key=lambda x: -x[1])
            rows = sum(c for _, c in unexpected)
            message = f"{what}: all values allowed" if not unexpected else (
                f"{what}: {rows:,} row(s) with other values, e.g. "
                + ", ".join(f"{v!r} ({c})" for v, c in unexpected[:5]))
            results.append(_result(e, not unexpected, {"unexpected": dict(unexpected[:20]), "rows": rows}, message))
        elif kind == "not_null":
            share = info["null_share"]
            limit = params.get("max_null_share", 0) or 0
            results.append(_result(e, share <= limit, {"null_share": share, "nulls": acc.nulls},
                                   f"{what}: {acc.nulls:,} missing ({share:.2%})"))
        elif kind == "unique":
            duplicates = profiler.duplicate_values(column)
            ok = duplicates == 0
            results.append(_result(e, ok, {"duplicates": duplicates},
                                   f"{what}: " + ("no repeats" if ok else f"{duplicates:,} repeated value(s)")))
    return results
