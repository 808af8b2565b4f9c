"""Drift of one column: every applicable statistic, the chosen method, the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DriftInputError
from .methods import Method, applicable_statistics, default_method, method_get
from .samples import ColumnSample, column_sample
from .statistics import (
    binned_shares,
    chi2_gof_p_value,
    chi2_homogeneity_p_value,
    js_distance,
    ks_and_wasserstein,
    psi,
    z_p_value,
)


@dataclass
class ColumnDrift:
    """Result for one column; ``statistic`` is the chosen method's value."""

    name: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    reference_count: int
    current_count: int
    statistics: dict[str, float] = field(default_factory=dict)
    is_p_value: bool = False
    p_value_adjusted: float | None = None

    def as_dict(self) -> dict:
        data = {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "statistics": dict(self.statistics),
        }
        if self.p_value_adjusted is not None:
            data["p_value_adjusted"] = self.p_value_adjusted
        return data


def sample_statistics(sample: ColumnSample, wanted: tuple[str, ...]) -> dict[str, float]:
    """Compute the named statistics, sharing the work between them."""
    values: dict[str, float] = {}
    if {"ks_statistic", "ks_p_value", "wasserstein_normed"} & set(wanted):
        values["ks_statistic"], values["ks_p_value"], values["wasserstein_normed"] = ks_and_wasserstein(sample)
    if {"psi", "js_distance"} & set(wanted):
        ref_shares, cur_shares = binned_shares(sample)
        values["psi"] = psi(ref_shares, cur_shares)
        values["js_distance"] = js_distance(ref_shares, cur_shares)
    if "chi2_p_value" in wanted:
        values["chi2_p_value"] = chi2_homogeneity_p_value(sample)
    if "chi2_gof_p_value" in wanted:
        values["chi2_gof_p_value"] = chi2_gof_p_value(sample)
    if "z_p_value" in wanted:
        values["z_p_value"] = z_p_value(sample)
    return {name: values[name] for name in wanted}


def column_drift(
    reference,
    current,
    *,
    kind: str,
    name: str = "",
    method: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Test one column for drift.

    ``reference``/``current`` are 1-D arrays or pandas Series; ``kind`` is
    ``"numeric"`` or ``"categorical"``. Without ``method`` the test is chosen
    as Evidently does (:func:`default_method`); ``threshold`` defaults to the
    method's own.
    """
    sample = column_sample(reference, current, kind=kind)
    chosen: Method = method_get(method, kind) if method else default_method(sample)
    if threshold is not None and not (0 <= threshold < float("inf")):
        raise DriftInputError(f"threshold must be a finite number ≥ 0, got {threshold!r}")
    wanted = applicable_statistics(sample)
    if chosen.statistic not in wanted:
        wanted = (*wanted, chosen.statistic)
    statistics = sample_statistics(sample, wanted)
    limit = chosen.default_threshold if threshold is None else float(threshold)
    value = statistics[chosen.statistic]
    return ColumnDrift(
        name=name,
        kind=kind,
        method=chosen.name,
        statistic=value,
        threshold=limit,
        drifted=bool(chosen.drifted(value, limit)),
        reference_count=sample.ref_n,
        current_count=sample.cur_n,
        statistics=statistics,
        is_p_value=chosen.is_p_value,
    )
