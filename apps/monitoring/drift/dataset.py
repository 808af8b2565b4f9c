"""Dataset drift: the share of drifted columns against a configured share.

Evidently's rule (``data_drift.get_dataset_drift``): the dataset drifts when
drifted columns / tested columns ≥ ``drift_share`` (default 0.5). Optionally
the p-values of the columns decided by a test (KS, z, χ²) are first adjusted
for multiple testing — Bonferroni (p·m) or Benjamini-Hochberg (step-up FDR,
Benjamini & Hochberg 1995) — and each such column's verdict is taken on its
adjusted p-value. Distance-based columns are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .columns import ColumnDrift, column_drift
from .errors import DriftInputError
from .methods import METHODS

CORRECTIONS = ("none", "bonferroni", "bh")


@dataclass
class DatasetDrift:
    dataset_drift: bool
    drifted_share: float
    drifted_count: int
    drift_share: float
    correction: str
    columns: list[ColumnDrift]

    def as_dict(self) -> dict:
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "drifted_count": self.drifted_count,
            "drift_share": self.drift_share,
            "correction": self.correction,
            "columns": [column.as_dict() for column in self.columns],
        }


def adjust_p_values(p_values: Sequence[float], correction: str) -> np.ndarray:
    """Bonferroni or Benjamini-Hochberg adjusted p-values, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if correction == "none" or m == 0:
        return p
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    if correction == "bh":
        order = np.argsort(p)
        ranked = p[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(ranked, 1.0)
        return adjusted
    raise DriftInputError(f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}")


def dataset_drift(columns: list[ColumnDrift], *, drift_share: float = 0.5, correction: str = "none") -> DatasetDrift:
    """Combine column verdicts into the dataset verdict."""
    if not columns:
        raise DriftInputError("no columns to test")
    if not (0 < drift_share <= 1):
        raise DriftInputError("drift_share must be in (0, 1]")
    if correction not in CORRECTIONS:
        raise DriftInputError(f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}")
    tested = [c for c in columns if c.is_p_value]
    if correction != "none":
        adjusted = adjust_p_values([c.statistic for c in tested], correction)
        for column, p in zip(tested, adjusted, strict=True):
            column.p_value_adjusted = float(p)
            column.drifted = METHODS[column.method].drifted(float(p), column.threshold)
    drifted = sum(1 for c in columns if c.drifted)
    share = drifted / len(columns)
    return DatasetDrift(
        dataset_drift=bool(share >= drift_share),
        drifted_share=share,
        drifted_count=drifted,
        drift_share=drift_share,
        correction=correction,
        columns=columns,
    )


def frame_drift(
    reference: Mapping,
    current: Mapping,
    *,
    kinds: Mapping[str, str],
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    correction: str = "none",
) -> DatasetDrift:
    """Drift of every column named in ``kinds``; ``reference``/``current`` map
    column names to 1-D arrays (a pandas DataFrame works)."""
    methods, thresholds = methods or {}, thresholds or {}
    columns = []
    for name, kind in kinds.items():
        try:
            columns.append(
                column_drift(
                    reference[name],
                    current[name],
                    kind=kind,
                    name=name,
                    method=methods.get(name),
                    threshold=thresholds.get(name),
                )
            )
        except DriftInputError as exc:
            raise DriftInputError(f"column {name!r}: {exc}") from exc
    return dataset_drift(columns, drift_share=drift_share, correction=correction)
