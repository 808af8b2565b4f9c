"""Writes on a dataset's expectations."""

from __future__ import annotations

from django.db import transaction

from apps.core.errors import ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.datasets import expectations as expectation_rules
from apps.datasets.choices import ExpectationKind, Severity
from apps.datasets.models import Dataset, Expectation

# --- Expectations ---------------------------------------------------------------------

def _check_expectation(*, kind: str, column: str, params: dict, severity: str) -> None:
    errors = expectation_rules.check_definition(kind=kind, column=column, params=params)
    if severity not in Severity.values:
        errors["severity"] = f"must be one of {', '.join(Severity.values)}"
    if errors:
        where, what = next(iter(errors.items()))
        raise ValidationFailed(f"The expectation is invalid: {where}: {what}.", details={"fields": errors})


def expectation_create(*, dataset: Dataset, actor, kind: str, column: str = "", params: dict | None = None,
                       severity: str = Severity.ERROR) -> Expectation:
    """Add an expectation; it applies to versions validated from now on."""
    require_perm(actor, "datasets.change_dataset", dataset)
    column, params = (column or "").strip(), params or {}
    _check_expectation(kind=kind, column=column, params=params, severity=severity)
    with transaction.atomic():
        expectation = Expectation.objects.create(dataset=dataset, kind=kind, column=column, params=params,
                                                 severity=severity, created_by=actor)
        audit_record(actor=actor, action="expectation.created", target=expectation,
                     after=expectation.as_rule() | {"dataset": dataset.pk})
    return expectation


def expectation_update(*, expectation: Expectation, actor, **changes) -> Expectation:
    require_perm(actor, "datasets.change_dataset", expectation.dataset)
    unknown = set(changes) - {"kind", "column", "params", "severity"}
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        expectation = Expectation.objects.select_for_update().get(pk=expectation.pk)
        before = expectation.as_rule()
        merged = before | {k: v for k, v in changes.items()}
        merged["column"] = (merged.get("column") or "").strip()
        _check_expectation(kind=merged["kind"], column=merged["column"], params=merged["params"] or {},
                           severity=merged["severity"])
        for field in ("kind", "column", "params", "severity"):
            setattr(expectation, field, merged[field])
        expectation.save()
        audit_record(actor=actor, action="expectation.updated", target=expectation, before=before,
                     after=expectation.as_rule())
    return expectation


def expectation_delete(*, expectation: Expectation, actor) -> None:
    require_perm(actor, "datasets.change_dataset", expectation.dataset)
    with transaction.atomic():
        before = expectation.as_rule() | {"dataset": expectation.dataset_id}
        audit_record(actor=actor, action="expectation.deleted", target=expectation, before=before)
        expectation.delete()


def expectation_set_from_schema(*, dataset: Dataset, actor, schema: dict, columns: list[str] | None = None) -> int:
    """Turn an inferred schema into expectations (column present with its
    type, not null when it had no missing values). Returns how many were added."""
    require_perm(actor, "datasets.change_dataset", dataset)
    existing = {(e.kind, e.column) for e in dataset.expectations.all()}
    added = 0
    for column in schema.get("columns", []):
        name = column["name"]
        if columns is not None and name not in columns:
            continue
        wanted = [(ExpectationKind.COLUMN_TYPE, {"type": column["type"]})]
        if column.get("null_share", 0) == 0:
            wanted.append((ExpectationKind.NOT_NULL, {}))
        for kind, params in wanted:
            if (kind, name) not in existing:
                expectation_create(dataset=dataset, actor=actor, kind=kind, column=name, params=params)
                added += 1
    return added


