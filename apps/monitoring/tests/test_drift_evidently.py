"""The drift core against Evidently 0.7.23's own values (fixture from bench/evidently_fixture.py)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.monitoring.drift import column_drift

FIXTURE = json.loads((Path(__file__).parent / "fixtures/evidently_cases.json").read_text())
CASES = FIXTURE["cases"]
DECIDED_BY_CHI2 = "chisquare"


def _column(values: list, case: dict):
    if case["kind"] == "categorical":
        return pd.Series(values, dtype=object)
    floats = [np.nan if v is None else float(v) for v in values]  # "inf"/"-inf" strings become ±inf
    if case["integer"]:
        return pd.Series(floats).astype(np.int64)
    return np.array(floats)


def _close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_statistic_equals_evidentlys(case):
    result = column_drift(_column(case["reference"], case), _column(case["current"], case), kind=case["kind"])
    expected = case["evidently"]["statistics"]
    assert set(expected) <= set(result.statistics), "a statistic Evidently computes for this column is missing"
    mismatches = {k: (result.statistics[k], v) for k, v in expected.items() if not _close(result.statistics[k], v)}
    assert not mismatches


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_default_choice_follows_evidently(case):
    ev = case["evidently"]
    result = column_drift(_column(case["reference"], case), _column(case["current"], case), kind=case["kind"])
    assert result.method == ev["default_method"]
    assert result.threshold == ev["default_threshold"]
    if ev["default_method"] == DECIDED_BY_CHI2:
        # The deliberate difference: the verdict comes from the two-sample test,
        # Evidently's goodness-of-fit p-value is reported beside it.
        assert result.statistic == result.statistics["chi2_p_value"]
        assert _close(result.statistics["chi2_gof_p_value"], ev["default_statistic"])
        assert result.drifted == (result.statistics["chi2_p_value"] < ev["default_threshold"])
    else:
        assert _close(result.statistic, ev["default_statistic"])
        assert result.drifted == ev["default_drifted"]


def test_fixture_covers_each_choice_and_the_difference():
    chosen = {c["evidently"]["default_method"] for c in CASES}
    assert chosen == {"ks", "z", "chisquare", "wasserstein", "jensenshannon"}
    assert FIXTURE["meta"]["versions"]["evidently"] == "0.7.23"
    # At least one no-drift categorical case where Evidently's GOF alarms and the two-sample test does not.
    disagree = [
        c["name"]
        for c in CASES
        if c["evidently"]["default_method"] == DECIDED_BY_CHI2
        and c["evidently"]["default_drifted"]
        and c["evidently"]["statistics"]["chi2_p_value"] >= 0.05
    ]
    assert "cat_multi_small_nodrift" in disagree
