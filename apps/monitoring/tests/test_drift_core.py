"""The drift core's own behaviour: overrides, errors, corrections, false alarms."""

import math

import numpy as np
import pytest
from scipy import stats

from apps.monitoring.drift import (
    DriftInputError,
    adjust_p_values,
    column_drift,
    dataset_drift,
    frame_drift,
)


def test_method_and_threshold_overrides_are_used():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 3000), rng.normal(0.05, 1, 3000)
    default = column_drift(ref, cur, kind="numeric")
    assert default.method == "wasserstein" and not default.drifted
    strict = column_drift(ref, cur, kind="numeric", threshold=0.01)
    assert strict.method == "wasserstein" and strict.threshold == 0.01 and strict.drifted
    psi = column_drift(ref, cur, kind="numeric", method="psi", threshold=0.2)
    assert psi.method == "psi" and psi.statistic == psi.statistics["psi"] and psi.threshold == 0.2


def test_statistics_hold_every_applicable_statistic():
    numeric = column_drift(np.arange(100.0), np.arange(100.0) + 3, kind="numeric")
    assert set(numeric.statistics) == {"ks_statistic", "ks_p_value", "wasserstein_normed", "psi", "js_distance"}
    binary = column_drift(["a", "b"] * 50, ["a", "a", "b"] * 30, kind="categorical")
    assert set(binary.statistics) == {"psi", "js_distance", "chi2_p_value", "chi2_gof_p_value", "z_p_value"}


@pytest.mark.parametrize(
    ("kind", "method", "message"),
    [("numeric", "t-test", "unknown drift method"), ("categorical", "ks", "does not apply to a categorical")],
)
def test_bad_methods_are_refused(kind, method, message):
    with pytest.raises(DriftInputError, match=message):
        column_drift(["1", "2"] * 5 if kind == "categorical" else [1.0, 2.0] * 5, [1.0] * 4, kind=kind, method=method)


def test_empty_side_is_refused():
    with pytest.raises(DriftInputError, match="current data has no non-missing"):
        column_drift([1.0, 2.0], [np.nan, np.inf], kind="numeric")
    with pytest.raises(DriftInputError, match="reference has no"):
        column_drift([None, None], ["a"], kind="categorical")


def test_adjusted_p_values_match_their_definitions():
    p = [0.01, 0.04, 0.03, 0.5]
    assert adjust_p_values(p, "bonferroni").tolist() == [0.04, 0.16, 0.12, 1.0]
    # Benjamini-Hochberg: sorted p·m/rank, then running minimum from the top; scipy agrees.
    assert np.allclose(adjust_p_values(p, "bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert np.allclose(adjust_p_values(p, "bh"), stats.false_discovery_control(p, method="bh"))


def test_correction_can_change_the_dataset_verdict():
    rng = np.random.default_rng(19)
    ref = {f"c{i}": rng.normal(0, 1, 300) for i in range(4)}
    cur = {f"c{i}": rng.normal(0.2, 1, 300) for i in range(4)}
    kinds = dict.fromkeys(ref, "numeric")
    plain = frame_drift(ref, cur, kinds=kinds)
    corrected = frame_drift(ref, cur, kinds=kinds, correction="bonferroni")
    assert all(c.method == "ks" for c in plain.columns)
    assert plain.drifted_count > corrected.drifted_count
    for column in corrected.columns:
        assert column.p_value_adjusted == min(1.0, column.statistic * 4)


def test_dataset_drift_is_the_share_of_drifted_columns():
    a = column_drift(np.zeros(50), np.ones(50), kind="numeric")  # drifted
    b = column_drift(np.arange(50.0), np.arange(50.0), kind="numeric")  # not drifted
    assert a.drifted and not b.drifted
    assert dataset_drift([a, b], drift_share=0.5).dataset_drift
    assert not dataset_drift([a, b], drift_share=0.6).dataset_drift
    with pytest.raises(DriftInputError):
        dataset_drift([a, b], correction="holm-ish")


def test_constant_columns_do_not_crash_and_do_not_drift():
    result = column_drift(np.full(2000, 3.0), np.full(1500, 3.0), kind="numeric")
    assert not result.drifted and result.statistics["js_distance"] == 0.0
    assert math.isnan(result.statistics["chi2_gof_p_value"])  # Evidently's own value: 0/0


def test_categorical_false_alarm_rate_holds_alpha_while_goodness_of_fit_does_not():
    """No drift, 200 rows a side, 5 categories: the two-sample χ² alarms at about
    its level; Evidently's goodness-of-fit χ² (reference shares taken as exact)
    alarms several times as often."""
    rng = np.random.default_rng(20261203)
    labels = np.array(["DNA", "RNA", "cfDNA", "FFPE_DNA", "tissue"], dtype=object)
    shares = [0.35, 0.25, 0.15, 0.15, 0.10]
    runs, alpha = 1000, 0.05
    ours = theirs = 0
    for _ in range(runs):
        result = column_drift(rng.choice(labels, 200, p=shares), rng.choice(labels, 200, p=shares), kind="categorical")
        assert result.method == "chisquare"
        ours += result.drifted
        theirs += result.statistics["chi2_gof_p_value"] < alpha
    mc_error = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert ours / runs <= alpha + mc_error
    assert theirs / runs >= 0.2
