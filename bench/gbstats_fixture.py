"""Regenerate the reference results the A/B statistics core is checked against.

Runs GrowthBook's gbstats (and statsmodels for the corrections and power) on a
fixed set of experiments and writes apps/abtests/tests/fixtures/gbstats_cases.json.
It needs its own virtualenv, never the platform's (gbstats pins numpy<2 and
pandas<2):

    python3 -m venv /work/venvs/gbstats
    /work/venvs/gbstats/bin/pip install -r bench/requirements-gbstats.txt
    cd /tmp && /work/venvs/gbstats/bin/python /path/to/repo/bench/gbstats_fixture.py

(run it from outside the repository: a ``gbstats.py`` on the path would shadow
the package). The data are drawn from a seeded generator, so the output is
reproducible; the fixture stores the sufficient statistics, not the draws.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

OUT = Path(__file__).resolve().parent.parent / "apps/abtests/tests/fixtures/gbstats_cases.json"
rng = np.random.default_rng(20261203)


# ---- data: per-arm sufficient statistics drawn from known distributions ----


def prop_arm(name, n, p=None, conversions=None):
    s = int(rng.binomial(n, p)) if conversions is None else conversions
    return {"name": name, "n": n, "sum": s, "sum_squares": s}


def mean_arm(name, values):
    return {"name": name, "n": len(values), "sum": float(values.sum()), "sum_squares": float((values**2).sum())}


def ratio_arm(name, n, lift):
    sessions = rng.poisson(3, n) + 1.0
    revenue = sessions * rng.gamma(2.0, 5.0 * (1 + lift), n)
    return {
        "name": name,
        "n": n,
        "sum": float(revenue.sum()),
        "sum_squares": float((revenue**2).sum()),
        "denominator_sum": float(sessions.sum()),
        "denominator_sum_squares": float((sessions**2).sum()),
        "sum_product": float((revenue * sessions).sum()),
    }


def cuped_mean_arm(name, n, lift):
    pre = rng.gamma(3.0, 4.0, n)
    post = 0.8 * pre + rng.normal(3.0 + lift, 4.0, n)
    arm = mean_arm(name, post)
    arm.update(
        covariate_sum=float(pre.sum()),
        covariate_sum_squares=float((pre**2).sum()),
        covariate_sum_product=float((pre * post).sum()),
    )
    return arm


def cuped_prop_arm(name, n, p_post_if_pre, p_post_if_not):
    pre = rng.random(n) < 0.3
    post = np.where(pre, rng.random(n) < p_post_if_pre, rng.random(n) < p_post_if_not)
    s, c = int(post.sum()), int(pre.sum())
    return {
        "name": name,
        "n": n,
        "sum": s,
        "sum_squares": s,
        "covariate_sum": c,
        "covariate_sum_squares": c,
        "covariate_sum_product": int((pre & post).sum()),
    }


def datasets():
    normal = rng.normal
    return {
        "example": ("proportion", [prop_arm("control", 53, conversions=5), prop_arm("b", 47, conversions=7)], None),
        "prop_small": ("proportion", [prop_arm("control", 180, 0.1), prop_arm("b", 210, 0.16)], None),
        "prop_large": ("proportion", [prop_arm("control", 50_000, 0.10), prop_arm("b", 50_300, 0.104)], None),
        "prop_tiny_p": ("proportion", [prop_arm("control", 200_000, 0.10), prop_arm("b", 200_000, 0.12)], None),
        "mean_small": ("mean", [mean_arm("control", normal(10, 3, 25)), mean_arm("b", normal(11.5, 4, 31))], None),
        "mean_large": (
            "mean",
            [mean_arm("control", rng.lognormal(1, 1, 20_000)), mean_arm("b", rng.lognormal(1.02, 1, 20_000))],
            None,
        ),
        "mean_tiny_p": (
            "mean",
            [mean_arm("control", normal(5, 2, 100_000)), mean_arm("b", normal(5.2, 2, 100_000))],
            None,
        ),
        "prop_3_arms": (
            "proportion",
            [prop_arm(k, 4000, p) for k, p in [("control", 0.2), ("b", 0.21), ("c", 0.23)]],
            None,
        ),
        "mean_4_arms": (
            "mean",
            [mean_arm(k, normal(m, 5, 800)) for k, m in [("control", 20), ("b", 20.3), ("c", 19.6), ("d", 21)]],
            None,
        ),
        "prop_6_arms_weighted": (
            "proportion",
            [prop_arm(f"v{i}", n, 0.05 + 0.004 * i) for i, n in enumerate([5000, 2600, 2400, 2500, 2450, 5100])],
            [0.25, 0.125, 0.125, 0.125, 0.125, 0.25],
        ),
        "ratio": ("ratio", [ratio_arm("control", 3000, 0.0), ratio_arm("b", 3100, 0.05)], None),
        "ratio_3_arms": (
            "ratio",
            [ratio_arm(k, 1500, lift) for k, lift in [("control", 0), ("b", 0.02), ("c", -0.1)]],
            None,
        ),
        "cuped_mean": ("mean", [cuped_mean_arm("control", 2000, 0.0), cuped_mean_arm("b", 2050, 0.4)], None),
        "cuped_mean_3_arms": (
            "mean",
            [cuped_mean_arm(k, 700, lift) for k, lift in [("control", 0), ("b", 0.5), ("c", -0.3)]],
            None,
        ),
        "cuped_prop": (
            "proportion",
            [cuped_prop_arm("control", 6000, 0.5, 0.1), cuped_prop_arm("b", 6000, 0.53, 0.12)],
            None,
        ),
        "srm_mismatch": ("proportion", [prop_arm("control", 10_400, 0.1), prop_arm("b", 9_600, 0.1)], None),
        "srm_weighted_ok": ("proportion", [prop_arm("control", 2_010, 0.3), prop_arm("b", 7_990, 0.31)], [0.2, 0.8]),
        "srm_3_arms_mismatch": (
            "mean",
            [mean_arm(k, normal(3, 1, n)) for k, n in [("control", 3000), ("b", 3000), ("c", 3300)]],
            None,
        ),
        "zero_control_prop": ("proportion", [prop_arm("control", 400, conversions=0), prop_arm("b", 410, 0.05)], None),
        "zero_control_mean": (
            "mean",
            [mean_arm("control", np.array([-2.0, 2.0, -1.0, 1.0, 0.5, -0.5])), mean_arm("b", normal(0.3, 1.5, 8))],
            None,
        ),
        "zero_variance_treatment": (
            "proportion",
            [prop_arm("control", 300, 0.2), prop_arm("b", 310, conversions=0)],
            None,
        ),
    }


ENGINES = [
    ("frequentist", {"engine": "frequentist"}),
    ("frequentist_alpha10", {"engine": "frequentist", "alpha": 0.1}),
    ("sequential_5000", {"engine": "sequential", "sequential_tuning": 5000}),
    ("sequential_1000", {"engine": "sequential", "sequential_tuning": 1000}),
    ("bayesian_flat", {"engine": "bayesian"}),
    ("bayesian_prior", {"engine": "bayesian", "prior": {"mean": 0.0, "variance": 0.09}}),
    ("bayesian_prior_shifted", {"engine": "bayesian", "alpha": 0.1, "prior": {"mean": 0.05, "variance": 0.01}}),
]


# ---- gbstats: the same inputs through its public classes ----


def base(metric_type, arm, key, squares):
    if metric_type == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm[key])
    return SampleMeanStatistic(n=arm["n"], sum=arm[key], sum_squares=arm[squares])


def gb_statistic(metric_type, arm):
    main = base(metric_type, arm, "sum", "sum_squares")
    if metric_type == "ratio":
        return RatioStatistic(
            n=arm["n"],
            m_statistic=main,
            d_statistic=base("mean", arm, "denominator_sum", "denominator_sum_squares"),
            m_d_sum_of_products=arm["sum_product"],
        )
    if "covariate_sum" in arm:
        return RegressionAdjustedStatistic(
            n=arm["n"],
            post_statistic=main,
            pre_statistic=base(metric_type, arm, "covariate_sum", "covariate_sum_squares"),
            post_pre_sum_of_products=arm["covariate_sum_product"],
            theta=0,
        )
    return main


def gb_test(metric_type, control, treatment, params, difference):
    # Fresh statistics per comparison: gbstats writes CUPED's theta into them.
    a, b = gb_statistic(metric_type, control), gb_statistic(metric_type, treatment)
    alpha = params.get("alpha", 0.05)
    engine = params["engine"]
    if engine == "frequentist":
        return TwoSidedTTest(a, b, FrequentistConfig(alpha=alpha, difference_type=difference))
    if engine == "sequential":
        config = SequentialConfig(
            alpha=alpha, difference_type=difference, sequential_tuning_parameter=params["sequential_tuning"]
        )
        return SequentialTwoSidedTTest(a, b, config)
    prior = params.get("prior")
    gaussian = GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=True) if prior else GaussianPrior()
    config = EffectBayesianConfig(alpha=alpha, difference_type=difference, prior_effect=gaussian, prior_type="relative")
    return EffectBayesianABTest(a, b, config)


def number(x):
    x = float(x)
    return x if math.isfinite(x) else None


def gb_comparison(metric_type, control, treatment, params, difference):
    test = gb_test(metric_type, control, treatment, params, difference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow in the sequential e-value
        res = test.compute_result()
    out = {"arm": treatment["name"], "error": res.error_message}
    if res.error_message:
        return out
    out.update(
        estimate=number(res.expected),
        ci=[number(res.ci[0]), number(res.ci[1])],
        stddev=number(res.uplift.stddev),
        p_value=number(getattr(res, "p_value", math.nan)),
        dof=number(test.dof) if params["engine"] == "frequentist" else None,
        chance_to_win=number(getattr(res, "chance_to_win", math.nan)),
        risk=[number(r) for r in res.risk] if hasattr(res, "risk") else None,
    )
    return out


def analysis_cases(data):
    cases = []
    for name, (metric_type, arms, weights) in data.items():
        for label, params in ENGINES:
            for difference in ("relative", "absolute"):
                if name == "zero_control_mean" and difference == "absolute":
                    # gbstats refuses a difference of means whose control mean is 0;
                    # ours computes it (checked against scipy in the tests).
                    continue
                control = arms[0]
                srm = check_srm([a["n"] for a in arms], weights or [1 / len(arms)] * len(arms))
                cases.append(
                    {
                        "id": f"{name}/{label}/{difference}",
                        "dataset": name,
                        "params": {"difference": difference, **params},
                        "expected": {
                            "srm_p_value": float(srm),
                            "comparisons": [
                                gb_comparison(metric_type, control, t, params, difference) for t in arms[1:]
                            ],
                        },
                    }
                )
    return cases


def correction_cases():
    lists = [
        [0.01, 0.04, 0.03, 0.005],
        [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205],
        [0.2, 0.2, 0.01],
        [0.5, 0.9, 0.95],
        [1e-30, 0.049, 0.051],
        [0.03],
    ]
    return [
        {
            "p_values": p,
            "holm": multipletests(p, method="holm")[1].tolist(),
            "benjamini-hochberg": multipletests(p, method="fdr_bh")[1].tolist(),
        }
        for p in lists
    ]


def power_cases():
    out = []
    for mde, baseline, variance, alpha, target in [
        (0.05, 0.1, 0.1 * 0.9, 0.05, 0.8),
        (0.02, 0.3, 0.3 * 0.7, 0.05, 0.9),
        (0.1, 20.0, 25.0, 0.01, 0.8),
        (0.01, 5.0, 4.0, 0.1, 0.95),
    ]:
        effect_size = mde * baseline / math.sqrt(variance)
        nobs = NormalIndPower().solve_power(effect_size=effect_size, alpha=alpha, power=target, ratio=1.0)
        n = math.ceil(nobs)
        out.append(
            {
                "mde": mde,
                "baseline_mean": baseline,
                "variance": variance,
                "alpha": alpha,
                "power": target,
                "statsmodels_nobs1": float(nobs),
                "n_per_arm": n,
                "power_at_n": float(NormalIndPower().power(effect_size, nobs1=n, alpha=alpha, ratio=1.0)),
            }
        )
    return out


def main():
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("gbstats", "numpy", "scipy", "pandas", "statsmodels")}
    versions["python"] = platform.python_version()
    drawn = datasets()
    data = {
        "generated_by": "bench/gbstats_fixture.py",
        "versions": versions,
        "datasets": {
            name: {"metric_type": m, "arms": arms, "expected_weights": w} for name, (m, arms, w) in drawn.items()
        },
        "analysis": analysis_cases(drawn),
        "corrections": correction_cases(),
        "power": power_cases(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['analysis'])} analysis cases -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
