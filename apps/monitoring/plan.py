"""Which columns a drift report tests, and how, from the two versions' schemas.

Numeric schema types (integer, float) are tested as numeric columns, boolean
and categorical ones as categorical; free text, datetimes, identifiers and
timestamps are not tested. The dataset's target column is reported apart, as
target drift, and does not count towards dataset drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from apps.core.errors import ValidationFailed
from apps.monitoring.drift import CATEGORICAL, NUMERIC, DriftInputError, method_get

KIND_BY_TYPE = {"integer": NUMERIC, "float": NUMERIC, "boolean": CATEGORICAL, "categorical": CATEGORICAL}
UNTESTED_ROLES = ("identifier", "timestamp")
MAX_COLUMNS = 500


@dataclass
class DriftPlan:
    """Columns to test with their kind; the target (if any) tested apart."""

    columns: dict[str, str] = field(default_factory=dict)
    target: tuple[str, str] | None = None
    skipped: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"columns": self.columns, "target": list(self.target) if self.target else None, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict) -> DriftPlan:
        target = data.get("target")
        return cls(columns=dict(data["columns"]), target=tuple(target) if target else None,
                   skipped=list(data.get("skipped", [])))


def _schema_columns(version) -> dict[str, dict]:
    return {c["name"]: c for c in (version.schema or {}).get("columns", [])}


def _kind(column: dict | None) -> str | None:
    return KIND_BY_TYPE.get((column or {}).get("type"))


def _why_untested(name: str, ref: dict | None, cur: dict | None) -> str | None:
    if ref is None or cur is None:
        return f"only in the {'current data' if ref is None else 'reference'}"
    if _kind(ref) is None or _kind(cur) is None:
        return f"type {ref.get('type') if _kind(ref) is None else cur.get('type')} is not tested for drift"
    if _kind(ref) != _kind(cur):
        return f"numeric on one side and categorical on the other ({ref.get('type')} / {cur.get('type')})"
    return None


def drift_plan_build(*, reference, current, columns: list[str] | None, target: str) -> DriftPlan:
    """The columns to test. Requested ``columns`` must exist on both sides and be
    testable (400 otherwise); without them every shared feature column is tested
    and the rest listed as skipped with the reason."""
    ref_cols, cur_cols = _schema_columns(reference), _schema_columns(current)
    plan = DriftPlan()
    if target and _why_untested(target, ref_cols.get(target), cur_cols.get(target)) is None:
        plan.target = (target, _kind(ref_cols[target]))
    if columns:
        unknown = [c for c in columns if c not in ref_cols or c not in cur_cols]
        if unknown:
            raise ValidationFailed(
                f"Unknown column(s) {', '.join(repr(c) for c in unknown)}: "
                "a tested column must be in both versions.",
                code="unknown_columns",
                details={"field": "columns", "unknown_columns": unknown,
                         "columns": sorted(set(ref_cols) & set(cur_cols))},
            )
        for name in columns:
            reason = _why_untested(name, ref_cols[name], cur_cols[name])
            if reason:
                raise ValidationFailed(f"Column {name!r} cannot be tested for drift: {reason}.",
                                       code="untestable_column", details={"field": "columns", "column": name})
            if name != target:
                plan.columns[name] = _kind(ref_cols[name])
    else:
        for name, ref in ref_cols.items():
            if name == target:
                continue
            if ref.get("role") in UNTESTED_ROLES:
                plan.skipped.append({"name": name, "reason": f"{ref['role']} column"})
                continue
            reason = _why_untested(name, ref, cur_cols.get(name))
            if reason:
                plan.skipped.append({"name": name, "reason": reason})
            else:
                plan.columns[name] = _kind(ref)
    if not plan.columns:
        raise ValidationFailed("No column to test: the two versions share no numeric or categorical feature column.",
                               code="no_testable_columns", details={"field": "columns"})
    return plan


def drift_overrides_clean(*, plan: DriftPlan, methods: dict | None, thresholds: dict | None) -> tuple[dict, dict]:
    """Per-column method names and thresholds, checked against the plan's columns and kinds."""
    kinds = dict(plan.columns)
    if plan.target:
        kinds[plan.target[0]] = plan.target[1]
    clean_methods, clean_thresholds = {}, {}
    for name, method in (methods or {}).items():
        if name not in kinds:
            raise ValidationFailed(f"methods names column {name!r}, which this report does not test.",
                                   code="unknown_columns", details={"field": f"methods.{name}"})
        try:
            clean_methods[name] = method_get(str(method), kinds[name]).name
        except DriftInputError as exc:
            raise ValidationFailed(f"methods.{name}: {exc}", code="invalid_method",
                                   details={"field": f"methods.{name}"})
    for name, value in (thresholds or {}).items():
        if name not in kinds:
            raise ValidationFailed(f"thresholds names column {name!r}, which this report does not test.",
                                   code="unknown_columns", details={"field": f"thresholds.{name}"})
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValidationFailed(f"thresholds.{name} must be a finite number >= 0.",
                                   details={"field": f"thresholds.{name}"})
        clean_thresholds[name] = float(value)
    return clean_methods, clean_thresholds
