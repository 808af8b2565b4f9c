"""Regenerate the reference values the data drift core is checked against.

Runs Evidently 0.7.23's own drift tests on a fixed set of columns and writes
apps/monitoring/tests/fixtures/evidently_cases.json. It needs its own
virtualenv, never the platform's (Evidently needs pandas < 3):

    python3 -m venv /work/venvs/evidently
    /work/venvs/evidently/bin/pip install -r bench/requirements-evidently.txt
    cd /tmp && /work/venvs/evidently/bin/python /path/to/repo/bench/evidently_fixture.py

Each column is cleaned as Evidently's ``get_one_column_drift`` cleans it
(±inf → NaN, NaN dropped), then Evidently chooses its default test
(``get_stattest``) and every applicable registered test is run on it. The
draws come from a seeded generator and are stored (rounded) in the fixture,
so the tests never depend on NumPy's random streams. Evidently orders
categories by a ``set``, so string hashing decides the summation order of
PSI and Jensen-Shannon (last-bit differences); the script pins
``PYTHONHASHSEED=0`` to make its output byte-for-byte reproducible.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.calculations.stattests.registry import get_registered_stattest
from evidently.legacy.core import ColumnType
from scipy import stats

OUT = Path(__file__).resolve().parent.parent / "apps/monitoring/tests/fixtures/evidently_cases.json"
rng = np.random.default_rng(20261203)

# Evidently's test name -> the key of the statistic in our column result.
EVIDENTLY_TO_OURS = {
    "ks": "ks_p_value",
    "z": "z_p_value",
    "chisquare": "chi2_gof_p_value",
    "wasserstein": "wasserstein_normed",
    "jensenshannon": "js_distance",
    "psi": "psi",
}
OURS_FOR_DEFAULT = {"chisquare": "chisquare"}  # ours decides with the two-sample χ², same method name


def with_missing(values: np.ndarray, share: float, *, inf: bool = False) -> list:
    out = values.astype(object)
    mask = rng.random(values.size) < share
    out[mask] = None
    if inf:
        idx = rng.choice(values.size, 3, replace=False)
        out[idx[0]], out[idx[1]] = "inf", "-inf"
    return list(out)


def cats(labels, probs, n) -> np.ndarray:
    return rng.choice(np.array(labels, dtype=object), size=n, p=probs)


def numeric_cases() -> list[dict]:
    r = lambda x: np.round(x, 4)  # noqa: E731
    ints = lambda x: x.astype(np.int64)  # noqa: E731
    return [
        {"name": "numeric_small_nodrift", "reference": r(rng.normal(10, 2, 500)), "current": r(rng.normal(10, 2, 600))},
        {"name": "numeric_small_drift", "reference": r(rng.normal(10, 2, 800)), "current": r(rng.normal(11, 2, 400))},
        {
            "name": "numeric_small_nans",
            "reference": with_missing(r(rng.gamma(2.0, 3.0, 900)), 0.1, inf=True),
            "current": with_missing(r(rng.gamma(2.2, 3.0, 700)), 0.2),
        },
        {"name": "numeric_large_nodrift", "reference": r(rng.normal(0, 1, 5000)), "current": r(rng.normal(0, 1, 4000))},
        {
            "name": "numeric_large_drift",
            "reference": r(rng.lognormal(1, 0.5, 6000)),
            "current": r(rng.lognormal(1.2, 0.6, 3000)),
        },
        {
            "name": "numeric_large_nans",
            "reference": with_missing(r(rng.normal(5, 1, 3000)), 0.15, inf=True),
            "current": with_missing(r(rng.normal(5.05, 1.1, 2500)), 0.3, inf=True),
        },
        {
            "name": "numeric_ks_asymptotic",
            "reference": r(rng.normal(0, 1, 12000)),
            "current": r(rng.normal(0.02, 1, 11000)),
            "methods": ["ks", "wasserstein", "psi", "jensenshannon"],
        },
        {
            "name": "numeric_two_values_small",
            "reference": ints(rng.binomial(1, 0.3, 400)),
            "current": ints(rng.binomial(1, 0.4, 300)),
            "integer": True,
        },
        {"name": "numeric_one_value_small", "reference": np.full(50, 3.0), "current": np.full(70, 3.0)},
        {
            "name": "numeric_four_values_small",
            "reference": ints(rng.integers(0, 4, 700)),
            "current": ints(rng.integers(0, 4, 500)),
            "integer": True,
        },
        {
            "name": "numeric_five_values_large",
            "reference": ints(rng.binomial(4, 0.5, 3000)),
            "current": ints(rng.binomial(4, 0.55, 2000)),
            "integer": True,
        },
        {
            "name": "numeric_integers_large",
            "reference": ints(rng.poisson(12, 4000)),
            "current": ints(rng.poisson(13, 3000)),
            "integer": True,
        },
        {
            "name": "numeric_integers_wide_large",
            "reference": ints(rng.integers(0, 60, 3000)),
            "current": ints(rng.integers(0, 66, 2000)),
            "integer": True,
        },
        {
            "name": "numeric_few_ref_values_continuous_current",
            "reference": r(rng.integers(0, 8, 1500) * 1.5),
            "current": r(rng.normal(5, 2, 1200)),
        },
        {
            "name": "numeric_constant_reference_large",
            "reference": np.full(1500, 7.0),
            "current": r(rng.normal(7, 0.01, 1300)),
        },
        {
            "name": "numeric_six_values_small",
            "reference": ints(rng.integers(0, 6, 300)),
            "current": ints(rng.integers(1, 7, 300)),
            "integer": True,
        },
    ]


def categorical_cases() -> list[dict]:
    labs = [f"lab_{i:02d}" for i in range(12)]
    even = np.full(12, 1 / 12)
    skew = np.linspace(1, 2, 12)
    skew /= skew.sum()
    return [
        {
            "name": "cat_two_small_nodrift",
            "reference": cats(["DNA", "RNA"], [0.6, 0.4], 300),
            "current": cats(["DNA", "RNA"], [0.6, 0.4], 250),
        },
        {
            "name": "cat_two_small_drift",
            "reference": cats(["DNA", "RNA"], [0.6, 0.4], 300),
            "current": cats(["DNA", "RNA"], [0.4, 0.6], 250),
        },
        {
            "name": "cat_two_large",
            "reference": cats(["yes", "no"], [0.8, 0.2], 4000),
            "current": cats(["yes", "no"], [0.78, 0.22], 3000),
        },
        {"name": "cat_multi_small_nodrift", "reference": cats(labs, even, 600), "current": cats(labs, even, 500)},
        {"name": "cat_multi_small_drift", "reference": cats(labs, even, 900), "current": cats(labs, skew, 800)},
        {
            "name": "cat_multi_small_nans",
            "reference": with_missing(
                cats(["DNA", "RNA", "cfDNA", "FFPE_DNA", "tissue"], [0.4, 0.3, 0.1, 0.1, 0.1], 700), 0.1
            ),
            "current": with_missing(
                cats(["DNA", "RNA", "cfDNA", "FFPE_DNA", "tissue"], [0.3, 0.3, 0.1, 0.2, 0.1], 500), 0.05
            ),
        },
        {"name": "cat_multi_large_nodrift", "reference": cats(labs, even, 6000), "current": cats(labs, even, 5000)},
        {"name": "cat_multi_large_drift", "reference": cats(labs, even, 6000), "current": cats(labs, skew, 2000)},
        {
            "name": "cat_new_category_in_current",
            "reference": cats(["kit_a", "kit_b", "kit_c"], [0.5, 0.3, 0.2], 800),
            "current": cats(["kit_a", "kit_b", "kit_c", "kit_new"], [0.4, 0.3, 0.2, 0.1], 600),
        },
        {
            "name": "cat_category_gone_large",
            "reference": cats(["WGS", "WES", "RNA-seq", "amplicon", "methylation"], [0.3, 0.3, 0.2, 0.1, 0.1], 5000),
            "current": cats(["WGS", "WES", "RNA-seq", "amplicon"], [0.35, 0.35, 0.2, 0.1], 1800),
        },
    ]


def to_json_value(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (np.integer, int)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def clean(values: list, *, numeric: bool) -> pd.Series:
    """What ``get_one_column_drift`` hands to the tests."""
    if numeric:
        series = pd.Series([float(v) if v is not None else np.nan for v in values], dtype=float)
        return series.replace([-np.inf, np.inf], np.nan).dropna()
    return pd.Series(values, dtype=object).dropna()


def run_case(case: dict, kind: str) -> dict:
    numeric = kind == "numeric"
    ref_raw, cur_raw = list(case["reference"]), list(case["current"])
    ref, cur = clean(ref_raw, numeric=numeric), clean(cur_raw, numeric=numeric)
    if numeric and case.get("integer"):
        ref, cur = ref.astype(np.int64), cur.astype(np.int64)
    column_type = ColumnType.Numerical if numeric else ColumnType.Categorical
    default = get_stattest(ref, cur, column_type, None)
    default_result = default(ref, cur, column_type, None)
    n_values = pd.concat([ref, cur]).nunique()
    if "methods" in case:
        names = case["methods"]
    elif numeric:
        names = ["ks", "wasserstein", "psi", "jensenshannon"] + (["chisquare"] if n_values <= 5 else [])
    else:
        names = ["psi", "jensenshannon", "chisquare"]
    if n_values <= 2:
        names.append("z")
    statistics = {}
    for name in names:
        # z and χ² are registered for categorical columns only; the default choice uses them on numeric ones too.
        test = get_registered_stattest(name, ColumnType.Categorical if name in ("z", "chisquare") else column_type)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            statistics[EVIDENTLY_TO_OURS[name]] = float(test(ref, cur, column_type, None).drift_score)
    if numeric:
        statistics["ks_statistic"] = float(stats.ks_2samp(ref, cur).statistic)
    if n_values <= 5 or not numeric:
        keys = sorted(set(ref.unique()) | set(cur.unique()))
        table = np.array([[int((ref == k).sum()) for k in keys], [int((cur == k).sum()) for k in keys]])
        scipy_p = 1.0 if len(keys) < 2 else float(stats.chi2_contingency(table, correction=False).pvalue)
        statistics["chi2_p_value"] = scipy_p
    return {
        "name": case["name"],
        "kind": kind,
        "integer": bool(case.get("integer", False)),
        "reference": [to_json_value(v) for v in ref_raw],
        "current": [to_json_value(v) for v in cur_raw],
        "evidently": {
            "default_method": default.name,
            "default_statistic": float(default_result.drift_score),
            "default_threshold": float(default_result.actual_threshold),
            "default_drifted": bool(default_result.drifted),
            "statistics": statistics,
        },
    }


def main() -> None:
    cases = [run_case(c, "numeric") for c in numeric_cases()] + [
        run_case(c, "categorical") for c in categorical_cases()
    ]
    meta = {
        "generator": "bench/evidently_fixture.py",
        "python": platform.python_version(),
        "versions": {p: importlib.metadata.version(p) for p in ("evidently", "pandas", "numpy", "scipy")},
        "note": "chi2_p_value is scipy.stats.chi2_contingency(correction=False) on the two count vectors; "
        "every other statistic is Evidently's own (ks_statistic: scipy.stats.ks_2samp, which Evidently calls).",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    main()
