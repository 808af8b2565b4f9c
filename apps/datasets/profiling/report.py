"""Driving the passes over a stored file, and the schema they produce."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from apps.datasets import expectations as expectation_rules
from apps.datasets import quality_report
from apps.datasets.fileformats import (
    BadRows,
    Sniffed,
    convert_column,
    iter_batches,
)
from apps.datasets.profiling import leakage
from apps.datasets.profiling.columns import (
    CATEGORY_LIMIT,
    ID_NAME,
    MISSING_MAP_BLOCKS,
    ProgressFn,
    numeric_summary,
)
from apps.datasets.profiling.consistency import compare_schemas
from apps.datasets.profiling.profiler import Profiler


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
    reference: dict | None = None,
    schema_severity: str = "error",
) -> ProfileResult:
    """Profile a stored file in two passes. ``open_file()`` returns a fresh
    binary file object each time. Returns problems (reasons the version is
    invalid) rather than raising for bad content; raises ``BadFile`` only
    when the file cannot be read at all. ``reference`` is the schema the
    columns and types are checked against (see ``consistency``)."""
    expectations = expectations or []
    report = progress or (lambda fraction, message: None)
    bad_rows = BadRows()
    sample: list = []
    sample_rows = 0
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
            if sample_rows < leakage.SAMPLE_ROWS and target in sniffed.columns:
                sample.append(batch.slice(0, leakage.SAMPLE_ROWS - sample_rows))
                sample_rows += sample[-1].num_rows
            profiler.add_batch(batch)
            report(0.02 + 0.6 * fraction, f"Pass 1: {profiler.rows:,} rows read")
    # Types chosen at upload win over expectations: they are how the file is read.
    profiler.infer_types(expectation_rules.declared_types(expectations) | sniffed.column_types)
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
    report_dict = quality_report.build_report(profiler, schema=schema, target=target, bad_rows=bad_rows)
    report_dict["leakage"] = _leaks(sample, schema=schema, target=target)
    if reference:
        results = results + compare_schemas(reference, schema, target=target, severity=schema_severity)
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
            kind = "Schema check failed" if result["kind"] == "schema_consistency" else "Expectation failed"
            problems.append(f"{kind}: {result['message']}")
    return ProfileResult(schema=schema, quality_report=report_dict, expectation_results=results,
                         row_count=profiler.rows, column_count=len(sniffed.columns), problems=problems)


def _leaks(sample: list, *, schema: dict, target: str) -> list[dict]:
    if not sample:
        return []
    types = {c["name"]: c["type"] for c in schema["columns"]}
    table = pa.Table.from_batches(sample)
    frame = pd.DataFrame({name: convert_column(table.column(name), types[name]) for name in table.column_names})
    return leakage.find_leaks(frame, schema=schema, target=target)


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
    if all_distinct and (column_type == "text" or (column_type == "integer" and ID_NAME.search(name))):
        return "identifier"
    if column_type == "text" and ID_NAME.search(name) and distinct >= 0.9 * non_null:
        return "identifier"
    return "feature"
