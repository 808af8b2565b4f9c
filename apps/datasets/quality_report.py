"""The quality report of a dataset version and its score.

No Django here. The score (0-100, higher is better) is

    score = 100 * (1 - 0.35·m - 0.15·d - 0.15·c - 0.10·o - 0.15·x - 0.10·b)

clipped to [0, 100], where

* m — share of missing cells (all columns * rows),
* d — share of rows that repeat an earlier row exactly,
* c — share of columns that are constant (at most one distinct value),
* o — mean share of IQR outliers over the numeric columns (Tukey's rule:
  below Q1 - 1.5·IQR or above Q3 + 1.5·IQR),
* x — share of columns with mixed types (mostly numbers, some text),
* b — class imbalance of a categorical target: 1 - H(p)/log(k), the
  normalised Shannon entropy of its k classes subtracted from one (0 when
  balanced, 1 when a single class); 0 without a categorical target.

The weights put missing data first because it hurts every model; the others
are problems that cost accuracy or hide mistakes. ``SCORE_FORMULA`` is shown
on the version page next to the components, so the number is never a black box.
"""

from __future__ import annotations

import math

import numpy as np

SCORE_WEIGHTS = {"missing": 0.35, "duplicates": 0.15, "constant": 0.15, "outliers": 0.10, "mixed": 0.15,
                 "imbalance": 0.10}
SCORE_FORMULA = (
    "score = 100 * (1 - 0.35·missing cells - 0.15·duplicate rows - 0.15·constant columns "
    "- 0.10·mean outlier share - 0.15·mixed-type columns - 0.10·class imbalance), each a share in [0, 1]; "
    "class imbalance = 1 - H(p)/log(k) over the target's k classes"
)
HIGH_CORRELATION = 0.9
MAX_CLASSES = 50
BAR_CATEGORIES = 30


def quality_score(components: dict[str, float]) -> float:
    """The documented score from its components (each a share in [0, 1])."""
    penalty = sum(SCORE_WEIGHTS[name] * min(max(components.get(name, 0.0), 0.0), 1.0) for name in SCORE_WEIGHTS)
    return round(max(0.0, min(100.0, 100.0 * (1.0 - penalty))), 2)


def class_imbalance(counts: dict[str, int]) -> float:
    """1 - normalised Shannon entropy of the class counts."""
    total = sum(counts.values())
    k = len([c for c in counts.values() if c > 0])
    if total == 0 or k <= 1:
        return 1.0 if k == 1 else 0.0
    p = np.array([c / total for c in counts.values() if c > 0])
    return float(1.0 - (-(p * np.log(p)).sum()) / math.log(k))


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def build_report(profiler, *, schema: dict, target: str = "", bad_rows=None) -> dict:
    rows = profiler.rows
    columns = schema["columns"]
    n_columns = len(columns)
    per_column_missing = {}
    missing_cells = 0
    for column in columns:
        acc = profiler.columns[column["name"]]
        missing_cells += acc.nulls
        per_column_missing[column["name"]] = {"count": acc.nulls, "share": _share(acc.nulls, rows)}
    duplicate_rows = profiler.duplicate_rows()
    constant = [c["name"] for c in columns if c["stats"]["distinct"] <= 1]

    outliers = {}
    second = profiler.pass2
    if second is not None:
        for name in second.names:
            low, high = second.fences[name]
            below, above = second.outliers[name]
            count = profiler.columns[name].count
            outliers[name] = {"count": below + above, "below": below, "above": above,
                              "share": _share(below + above, count), "lower_fence": round(low, 6),
                              "upper_fence": round(high, 6)}
    mixed = []
    for column in columns:
        acc = profiler.columns[column["name"]]
        if profiler.mixed(column["name"]):
            mixed.append({"column": column["name"], "numeric_share": round(acc.n_number / acc.non_null, 6),
                          "text_count": acc.non_null - acc.n_number, "examples": acc.text_examples})

    balance = None
    target_column = next((c for c in columns if c["name"] == target), None) if target else None
    if target_column is not None:
        counts = target_column["stats"].get("counts")
        if counts is not None and 1 <= len(counts) <= MAX_CLASSES and target_column["type"] != "float":
            total = sum(counts.values())
            balance = {
                "target": target,
                "counts": counts,
                "shares": {k: _share(v, total) for k, v in counts.items()},
                "minority_share": _share(min(counts.values()), total),
                "imbalance": round(class_imbalance(counts), 6),
            }

    correlation = {"columns": [], "matrix": []}
    high_pairs = []
    if second is not None and len(second.names) >= 2:
        matrix = second.correlation()
        correlation = {"columns": second.names,
                       "matrix": [[None if math.isnan(v) else round(float(v), 4) for v in row] for row in matrix]}
        for i, a in enumerate(second.names):
            for j in range(i + 1, len(second.names)):
                r = matrix[i, j]
                if not math.isnan(r) and abs(r) >= HIGH_CORRELATION and target not in (a, second.names[j]):
                    high_pairs.append({"a": a, "b": second.names[j], "r": round(float(r), 4)})
        high_pairs.sort(key=lambda pair: -abs(pair["r"]))

    components = {
        "missing": _share(missing_cells, rows * n_columns),
        "duplicates": _share(duplicate_rows, rows),
        "constant": _share(len(constant), n_columns),
        "outliers": round(float(np.mean([o["share"] for o in outliers.values()])), 6) if outliers else 0.0,
        "mixed": _share(len(mixed), n_columns),
        "imbalance": balance["imbalance"] if balance else 0.0,
    }
    return {
        "rows": rows,
        "columns": n_columns,
        "missing": {"cells": missing_cells, "share": components["missing"], "per_column": per_column_missing},
        "duplicate_rows": {"count": duplicate_rows, "share": components["duplicates"]},
        "constant_columns": constant,
        "outliers": outliers,
        "mixed_types": mixed,
        "class_balance": balance,
        "high_correlations": high_pairs,
        "correlation": correlation,
        "bad_rows": {"count": bad_rows.count, "examples": bad_rows.examples} if bad_rows is not None else None,
        "missing_map": _missing_map(profiler, columns),
        "distributions": _distributions(profiler, columns),
        "score": quality_score(components),
        "score_components": components,
        "score_weights": SCORE_WEIGHTS,
        "score_formula": SCORE_FORMULA,
    }


def _missing_map(profiler, columns: list[dict]) -> dict:
    """Missing share per column in up to ~60 consecutive row blocks."""
    rows, block = profiler.rows, profiler.block_rows
    n_blocks = math.ceil(rows / block) if rows else 0
    starts = [i * block for i in range(n_blocks)]
    sizes = [min(block, rows - s) for s in starts]
    shares = []
    for column in columns:
        counts = profiler.columns[column["name"]].missing_blocks
        counts = np.pad(counts, (0, max(0, n_blocks - counts.size)))[:n_blocks]
        shares.append([round(float(c) / s, 4) if s else 0.0 for c, s in zip(counts, sizes, strict=True)])
    return {"columns": [c["name"] for c in columns],
            "row_ranges": [[s + 1, s + size] for s, size in zip(starts, sizes, strict=True)],
            "shares": shares}


def _distributions(profiler, columns: list[dict]) -> dict:
    """A histogram per numeric column, a bar chart per categorical or boolean one."""
    out = {}
    second = profiler.pass2
    for column in columns:
        name, ctype, stats = column["name"], column["type"], column["stats"]
        if second is not None and name in second.hist:
            edges = second.edges[name]
            out[name] = {"kind": "histogram", "edges": [round(float(e), 6) for e in edges],
                         "counts": second.hist[name].tolist()}
        elif ctype == "boolean":
            out[name] = {"kind": "bar", "labels": ["true", "false"], "counts": [stats["true"], stats["false"]]}
        elif stats.get("counts"):
            ranked = list(stats["counts"].items())[:BAR_CATEGORIES]
            other = sum(v for _, v in list(stats["counts"].items())[BAR_CATEGORIES:]) + stats.get("other_count", 0)
            labels = [k for k, _ in ranked] + (["(other)"] if other else [])
            out[name] = {"kind": "bar", "labels": labels, "counts": [v for _, v in ranked] + ([other] if other else [])}
    return out
