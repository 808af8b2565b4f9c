"""The A/B statistics core, checked number for number against GrowthBook's gbstats.

The fixture (fixtures/gbstats_cases.json) is written by bench/gbstats_fixture.py
running gbstats itself; nothing here restates its numbers by hand except the
example of the analysis contract.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

from apps.abtests.stats import (
    MAX_ARMS,
    StatsInputError,
    analyze,
    benjamini_hochberg,
    holm,
    power,
    sample_size_per_arm,
    srm_p_value,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "gbstats_cases.json").read_text())
DATASETS = FIXTURE["datasets"]
TOL = 1e-6

EXAMPLE_ARMS = [
    {"name": "control", "n": 53, "sum": 5, "sum_squares": 5},
    {"name": "b", "n": 47, "sum": 7, "sum_squares": 7},
]


def run_case(case: dict) -> dict:
    data = DATASETS[case["dataset"]]
    return analyze(data["metric_type"], data["arms"], expected_weights=data["expected_weights"], **case["params"])


def test_fixture_is_broad_enough():
    cases = FIXTURE["analysis"]
    assert len(cases) >= 40
    assert FIXTURE["versions"]["gbstats"]
    engines = {c["params"]["engine"] for c in cases}
    assert engines == {"frequentist", "sequential", "bayesian"}
    assert {c["params"].get("sequential_tuning") for c in cases} >= {5000, 1000}
    assert {d["metric_type"] for d in DATASETS.values()} == {"proportion", "mean", "ratio"}
    assert any("covariate_sum" in d["arms"][0] for d in DATASETS.values())
    assert {len(d["arms"]) for d in DATASETS.values()} >= {2, 3, 4, 6}
    # Tail p-values gbstats rounds to 0, and mismatched traffic, are both covered.
    assert any(x.get("p_value") == 0 for c in cases for x in c["expected"]["comparisons"])
    assert any(c["expected"]["srm_p_value"] < 0.001 for c in cases)


@pytest.mark.parametrize("case", FIXTURE["analysis"], ids=lambda c: c["id"])
def test_matches_gbstats(case):
    ours = run_case(case)
    expected = case["expected"]
    assert ours["srm"]["p_value"] == pytest.approx(expected["srm_p_value"], abs=TOL)
    assert ours["srm"]["mismatch"] is (expected["srm_p_value"] < 0.001)
    assert len(ours["comparisons"]) == len(expected["comparisons"])
    engine = case["params"]["engine"]
    for got, want in zip(ours["comparisons"], expected["comparisons"], strict=True):
        assert got["arm"] == want["arm"]
        if want["error"]:
            assert got["error"]
            assert got["estimate"] is None and got["p_value"] is None and got["significant"] is False
            continue
        assert got["error"] is None
        assert got["estimate"] == pytest.approx(want["estimate"], abs=TOL)
        assert got["ci"] == pytest.approx(want["ci"], abs=TOL)
        assert got["stddev"] == pytest.approx(want["stddev"], abs=TOL)
        if engine == "bayesian":
            assert got["p_value"] is None and got["dof"] is None
            assert got["chance_to_win"] == pytest.approx(want["chance_to_win"], abs=TOL)
            assert [got["risk"]["control"], got["risk"]["treatment"]] == pytest.approx(want["risk"], abs=TOL)
            continue
        assert got["chance_to_win"] is None and got["risk"] is None
        if engine == "frequentist":
            assert got["dof"] == pytest.approx(want["dof"], rel=1e-9)
        if want["p_value"] == 0:
            # gbstats' 1 - cdf underflows; ours keeps the tail, equal to scipy's survival function.
            t_stat = abs(want["estimate"] / want["stddev"])
            assert t_stat > 9
            assert 0 < got["p_value"] < 1e-12
            assert got["p_value"] == pytest.approx(2 * sps.t.sf(t_stat, want["dof"]), rel=1e-6)
        else:
            assert got["p_value"] == pytest.approx(want["p_value"], abs=TOL)
        assert got["significant"] is (got["p_value"] < case["params"].get("alpha", 0.05))


def test_contract_example_from_the_issue():
    result = analyze("proportion", EXAMPLE_ARMS, engine="frequentist", difference="relative")
    assert set(result) == {"srm", "comparisons"}
    assert result["srm"] == {"p_value": pytest.approx(0.5485, abs=5e-5), "mismatch": False}
    (b,) = result["comparisons"]
    assert set(b) == {
        "arm", "estimate", "ci", "p_value", "stddev", "dof", "chance_to_win", "risk", "significant", "error",
    }  # fmt: skip
    assert b["arm"] == "b"
    assert b["estimate"] == pytest.approx(0.5787, abs=5e-5)
    assert b["ci"] == pytest.approx([-1.147, 2.305], abs=5e-4)
    assert b["p_value"] == pytest.approx(0.507, abs=5e-4)
    assert b["stddev"] == pytest.approx(0.8686, abs=5e-5)
    assert b["dof"] == pytest.approx(89.23, abs=5e-3)
    assert b["chance_to_win"] is None and b["risk"] is None and b["error"] is None
    assert b["significant"] is False
    json.dumps(result)  # plain JSON-serialisable values only


def test_bayesian_answer_fills_chance_to_win_and_risk_not_p_value():
    (b,) = analyze("proportion", EXAMPLE_ARMS, engine="bayesian")["comparisons"]
    assert b["p_value"] is None and b["dof"] is None
    assert 0.5 < b["chance_to_win"] < 1
    assert set(b["risk"]) == {"control", "treatment"}
    # Shipping the likely winner risks less than keeping the control.
    assert 0 < b["risk"]["treatment"] < b["risk"]["control"]


def test_far_tail_p_value_stays_positive_in_sequential_engine():
    # Here the e-value is about e^727: gbstats' exp() overflows to inf and reports p = 0.
    arms = [
        {"name": "control", "n": 2_000_000, "sum": 200_000, "sum_squares": 200_000},
        {"name": "b", "n": 2_000_000, "sum": 225_000, "sum_squares": 225_000},
    ]
    (b,) = analyze("proportion", arms, engine="sequential")["comparisons"]
    assert 0 < b["p_value"] < 1e-300


def test_zero_control_mean_is_a_per_comparison_error_not_an_exception():
    arms = [
        {"name": "control", "n": 100, "sum": 0, "sum_squares": 0},
        {"name": "b", "n": 100, "sum": 3, "sum_squares": 3},
        {"name": "c", "n": 100, "sum": 5, "sum_squares": 5},
    ]
    result = analyze("proportion", arms)
    assert [c["error"].split(":")[0] for c in result["comparisons"]] == ["zero_control_mean"] * 2
    assert all(c["estimate"] is None for c in result["comparisons"])


def test_absolute_difference_with_zero_control_mean_is_welch_test():
    # gbstats refuses this; a difference of means is well defined, so it is checked against scipy instead.
    data = DATASETS["zero_control_mean"]
    (b,) = analyze("mean", data["arms"], difference="absolute")["comparisons"]
    stats = []
    for arm in data["arms"]:
        mean = arm["sum"] / arm["n"]
        var = (arm["sum_squares"] - arm["sum"] ** 2 / arm["n"]) / (arm["n"] - 1)
        stats.append((mean, math.sqrt(var), arm["n"]))
    (ma, sa, na), (mb, sb, nb) = stats
    reference = sps.ttest_ind_from_stats(mb, sb, nb, ma, sa, na, equal_var=False)
    assert b["error"] is None
    assert b["estimate"] == pytest.approx(mb - ma, abs=1e-12)
    assert b["estimate"] / b["stddev"] == pytest.approx(reference.statistic, rel=1e-9)
    assert b["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_welch_matches_scipy_on_a_mean_metric():
    data = DATASETS["mean_small"]
    (b,) = analyze("mean", data["arms"], difference="absolute")["comparisons"]
    (ca, cb) = data["arms"]

    def moments(arm):
        n = arm["n"]
        return arm["sum"] / n, math.sqrt((arm["sum_squares"] - arm["sum"] ** 2 / n) / (n - 1)), n

    reference = sps.ttest_ind_from_stats(*moments(cb), *moments(ca), equal_var=False)
    assert b["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert b["estimate"] / b["stddev"] == pytest.approx(reference.statistic, rel=1e-9)


def test_cuped_narrows_the_interval():
    data = DATASETS["cuped_mean"]
    plain_arms = [{k: v for k, v in arm.items() if not k.startswith("covariate")} for arm in data["arms"]]
    (adjusted,) = analyze("mean", data["arms"])["comparisons"]
    (plain,) = analyze("mean", plain_arms)["comparisons"]
    assert adjusted["stddev"] < 0.8 * plain["stddev"]


@pytest.mark.parametrize("case", FIXTURE["corrections"], ids=lambda c: str(len(c["p_values"])))
def test_corrections_match_statsmodels_multipletests(case):
    assert holm(case["p_values"]) == pytest.approx(case["holm"], abs=1e-12)
    assert benjamini_hochberg(case["p_values"]) == pytest.approx(case["benjamini-hochberg"], abs=1e-12)


def test_corrections_hand_computed():
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> running max 0.02, 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4 -> running min from the top 0.02, 0.02, 0.04, 0.04.
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == [] and benjamini_hochberg([]) == []


def test_correction_applies_across_comparisons():
    data = DATASETS["mean_4_arms"]
    raw = analyze("mean", data["arms"])["comparisons"]
    adjusted = analyze("mean", data["arms"], correction="holm")["comparisons"]
    assert [c["p_value"] for c in adjusted] == pytest.approx(holm([c["p_value"] for c in raw]), abs=1e-15)
    assert [c["significant"] for c in adjusted] == [c["p_value"] < 0.05 for c in adjusted]
    bh = analyze("mean", data["arms"], correction="benjamini-hochberg")["comparisons"]
    assert [c["p_value"] for c in bh] == pytest.approx(benjamini_hochberg([c["p_value"] for c in raw]), abs=1e-15)


@pytest.mark.parametrize("case", FIXTURE["power"], ids=lambda c: f"mde{c['mde']}")
def test_sample_size_and_power_match_statsmodels_and_textbook(case):
    kwargs = {k: case[k] for k in ("mde", "baseline_mean", "variance", "alpha")}
    n = sample_size_per_arm(**kwargs, power=case["power"])
    z = sps.norm.ppf(1 - case["alpha"] / 2) + sps.norm.ppf(case["power"])
    textbook = 2 * case["variance"] * z**2 / (case["mde"] * case["baseline_mean"]) ** 2
    assert n == math.ceil(textbook)
    # statsmodels also counts the far tail, so it may need a fraction of a unit less.
    assert n - 1 < case["statsmodels_nobs1"] <= n
    assert power(n_per_arm=n, **kwargs) == pytest.approx(case["power_at_n"], abs=1e-9)
    assert power(n_per_arm=n, **kwargs) >= case["power"]
    assert power(n_per_arm=n - 1, **kwargs) < case["power"] + 1e-4


def test_srm_matches_gbstats_semantics_for_edge_inputs():
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0
    assert srm_p_value([500, 500], [0.5, 0.5]) == pytest.approx(1.0)
    assert srm_p_value([5200, 4800], [0.5, 0.5]) == pytest.approx(sps.chi2.sf(16.0, 1))


GOOD = {"name": "control", "n": 100, "sum": 40.0, "sum_squares": 30.0}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arms": [{**GOOD, "n": 1}, GOOD | {"name": "b"}]}, "arms[0].n"),
        ({"arms": [GOOD, {**GOOD, "name": "b", "n": 2.5}]}, "arms[1].n"),
        ({"arms": [GOOD, {**GOOD, "name": "b", "n": True}]}, "arms[1].n"),
        ({"arms": [GOOD, {**GOOD, "name": "b", "n": 1e300}]}, "arms[1].n"),
        ({"arms": [GOOD, {**GOOD, "name": "b", "sum_squares": 10.0}]}, "arms[1].sum_squares"),
        ({"arms": [GOOD, {"name": "b", "n": 100, "sum": 40.0}]}, "arms[1].sum_squares"),
        ({"arms": [GOOD, {**GOOD, "name": "b", "sum": float("nan")}]}, "arms[1].sum"),
        ({"arms": [GOOD]}, "arms"),
        ({"arms": [GOOD, GOOD]}, "arms"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "expected_weights": [0.5, 0.6]}, "expected_weights"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "expected_weights": [1.0]}, "expected_weights"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "expected_weights": [1.0, 0.0]}, "expected_weights[1]"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "engine": "bootstrap"}, "engine"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "difference": "scaled"}, "difference"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "correction": "bonferroni"}, "correction"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "engine": "bayesian", "correction": "holm"}, "correction"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "alpha": 1.5}, "alpha"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "sequential_tuning": 0}, "sequential_tuning"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "engine": "bayesian", "prior": {"variance": -1}}, "prior.variance"),
        ({"arms": [GOOD, GOOD | {"name": "b"}], "prior": {"variance": 1}}, "prior"),
        ({"metric_type": "median", "arms": [GOOD, GOOD | {"name": "b"}]}, "metric_type"),
        ({"metric_type": "ratio", "arms": [GOOD, GOOD | {"name": "b"}]}, "arms[0].denominator_sum"),
        (
            {"arms": [GOOD | {"covariate_sum": 1.0, "covariate_sum_squares": 1.0}, GOOD | {"name": "b"}]},
            "arms[0].covariate_sum_product",
        ),
        (
            {
                "arms": [
                    GOOD | {"covariate_sum": 1.0, "covariate_sum_squares": 1.0, "covariate_sum_product": 1.0},
                    GOOD | {"name": "b"},
                ]
            },
            "arms",
        ),
    ],
)
def test_invalid_input_names_the_field(kwargs, field):
    kwargs = {"metric_type": "mean", **kwargs}
    with pytest.raises(StatsInputError) as caught:
        analyze(kwargs.pop("metric_type"), kwargs.pop("arms"), **kwargs)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("arm", "field"),
    [
        ({"n": 100, "sum": 40, "sum_squares": 39}, "arms[1].sum_squares"),
        ({"n": 100, "sum": 101, "sum_squares": 101}, "arms[1].sum"),
        ({"n": 100, "sum": -1, "sum_squares": -1}, "arms[1].sum"),
    ],
)
def test_proportion_sums_must_be_counts(arm, field):
    with pytest.raises(StatsInputError) as caught:
        analyze("proportion", [EXAMPLE_ARMS[0], {"name": "b", **arm}])
    assert caught.value.field == field


def test_float_noise_in_sum_squares_is_tolerated():
    # A constant metric whose float sums leave sum_squares a hair below sum^2/n.
    total = 1000 * 0.1
    constant = {"name": "control", "n": 1000, "sum": total, "sum_squares": total**2 / 1000 * (1 - 1e-12)}
    varied = {"name": "b", "n": 1000, "sum": 120.0, "sum_squares": 40.0}
    (b,) = analyze("mean", [constant, varied], difference="absolute")["comparisons"]
    assert b["error"].startswith("zero_variance")


def test_module_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import sys, apps.abtests.stats as s; s.analyze; assert 'django' not in sys.modules, 'django imported'"
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True)


EXTREME = {
    # Squares near the float limit: the Welch-Satterthwaite terms overflow.
    "huge": [
        {"name": "control", "n": 2, "sum": 1e154, "sum_squares": 1e308},
        {"name": "b", "n": 2, "sum": 1.2e154, "sum_squares": 1.5e308},
    ],
    # A control mean so small that its fourth power underflows to 0 in the delta method.
    "tiny": [
        {"name": "control", "n": 2, "sum": 1e-160, "sum_squares": 1e-100},
        {"name": "b", "n": 2, "sum": 1.0, "sum_squares": 3.0},
    ],
}


@pytest.mark.parametrize("engine", ["frequentist", "sequential", "bayesian"])
@pytest.mark.parametrize(("scale", "difference"), [("huge", "absolute"), ("tiny", "relative")])
def test_extreme_sums_are_a_comparison_error_never_an_exception_or_nan(engine, scale, difference):
    result = analyze("mean", EXTREME[scale], engine=engine, difference=difference)
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN or Infinity
    (b,) = result["comparisons"]
    if engine == "frequentist" or scale == "tiny":
        assert b["error"].startswith("non_finite")
        assert b["estimate"] is None and b["significant"] is False
    else:
        # Without degrees of freedom to compute, the other engines may get a finite answer through.
        assert b["error"] is None or b["error"].startswith("non_finite")


def test_sums_too_large_to_square_are_refused():
    arms = [EXTREME["huge"][0], {"name": "b", "n": 2, "sum": 2e154, "sum_squares": 1.5e308}]
    with pytest.raises(StatsInputError) as caught:
        analyze("mean", arms)
    assert caught.value.field == "arms[1].sum"


def test_arm_count_is_bounded():
    arms = [{"name": f"v{i}", "n": 100, "sum": 10, "sum_squares": 10} for i in range(MAX_ARMS + 1)]
    with pytest.raises(StatsInputError) as caught:
        analyze("proportion", arms)
    assert caught.value.field == "arms"
    assert len(analyze("proportion", arms[:MAX_ARMS])["comparisons"]) == MAX_ARMS - 1
