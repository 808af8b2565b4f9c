"""Data drift benchmark: the platform's drift core against Evidently 0.7.23,
on the same reference/current tables, on this machine.

Method.

1. For each size (``--rows``, default 10,000, 100,000 and 1,000,000 rows a
   side) a reference and a current table of 25 columns are generated once
   (seeded, not measured) and written to Parquet: 14 continuous numeric
   columns (normal, log-normal, gamma; a third of them shifted in the
   current table; some with 2 % missing values), 3 few-valued integer
   columns (2, 4 and 5 values) and 8 categorical string columns (2 to 30
   categories, some with shifted shares).
2. Each contender runs in a fresh Python process per repetition, so its
   peak resident memory (``ru_maxrss``) is its own. The process reads both
   tables, records its resident memory (the baseline: interpreter,
   libraries and the two tables), then does the work; we report the wall
   time of the work only, and the peak RSS above the baseline.

   * **ours** — ``apps.monitoring.drift.frame_drift`` (what the
     ``drift_report_compute`` task runs after reading the two dataset
     versions), default choice of method per column. It computes *every*
     applicable statistic per column, not only the chosen one (KS statistic
     and p-value, normed Wasserstein, PSI and Jensen-Shannon for numeric
     columns; χ² two-sample and goodness-of-fit, PSI, Jensen-Shannon, z for
     categorical ones).
   * **Evidently** — ``Report([DataDriftPreset()]).run(current, reference)``
     with a ``DataDefinition`` naming the same numeric and categorical
     columns, in its own virtualenv (it needs pandas < 3; see
     ``bench/requirements-evidently.txt``), which computes the chosen
     statistic per column.

3. Agreement: for every column, Evidently's chosen method and value are
   compared with ours (same method name, relative difference of the value).

Run: ``.venv/bin/python bench/drift.py`` (``--quick``: 10,000 rows only,
one repetition). Evidently's virtualenv defaults to /work/venvs/evidently
(``--evidently-python``). Results go to ``bench/results/drift[-quick].{md,json}``;
the figures are copied to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS_DIR, cpu_model, markdown_table, memory_gib  # noqa: E402

DEFAULT_EVIDENTLY_PYTHON = "/work/venvs/evidently/bin/python"
NUMERIC = [f"num_{i:02d}" for i in range(14)] + ["int_binary", "int_four", "int_five"]
CATEGORICAL = [f"cat_{i:02d}" for i in range(8)]
CATEGORY_COUNTS = [2, 3, 5, 5, 12, 12, 20, 30]

# Child processes: read the tables, note the baseline RSS, time the work, print one JSON line.
_CHILD_COMMON = r"""
import json, resource, sys, time
import pandas as pd

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
numeric = json.loads(sys.argv[3]); categorical = json.loads(sys.argv[4])
baseline = rss_kib()
"""

CHILD_OURS = _CHILD_COMMON + r"""
sys.path.insert(0, sys.argv[5])
from apps.monitoring.drift import frame_drift
kinds = {**{c: "numeric" for c in numeric}, **{c: "categorical" for c in categorical}}
start = time.perf_counter()
result = frame_drift(ref, cur, kinds=kinds)
seconds = time.perf_counter() - start
columns = {c.name: {"method": c.method, "value": c.statistic, "drifted": c.drifted,
                    "statistics": len(c.statistics)} for c in result.columns}
print(json.dumps({"seconds": seconds, "baseline_kib": baseline,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "columns": columns,
                  "dataset_drift": result.dataset_drift}))
"""

CHILD_EVIDENTLY = _CHILD_COMMON + r"""
import warnings
warnings.simplefilter("ignore")
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
NAMES = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
         "K-S p_value": "ks", "Z-test p_value": "z", "chi-square p_value": "chisquare", "PSI": "psi"}
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                           Dataset.from_pandas(ref, data_definition=definition))
seconds = time.perf_counter() - start
columns, dataset_drift = {}, None
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config["type"].endswith("ValueDrift"):
        method = NAMES.get(config["method"], config["method"])
        value = metric["value"]
        drifted = value < config["threshold"] if method in ("ks", "z", "chisquare") else value >= config["threshold"]
        columns[config["column"]] = {"method": method, "value": float(value), "drifted": bool(drifted)}
    elif config["type"].endswith("DriftedColumnsCount"):
        dataset_drift = bool(metric["value"]["share"] >= config["drift_share"])
print(json.dumps({"seconds": seconds, "baseline_kib": baseline,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "columns": columns,
                  "dataset_drift": dataset_drift}))
"""


def make_tables(rows: int, directory: Path, seed: int = 20261203) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, rows])

    def table(current: bool) -> pd.DataFrame:
        data = {}
        for i in range(14):
            shift = 0.25 if current and i % 3 == 0 else 0.0
            kind = i % 3
            if kind == 0:
                values = rng.normal(10 + shift * 2, 2, rows)
            elif kind == 1:
                values = rng.lognormal(1 + shift, 0.5, rows)
            else:
                values = rng.gamma(2 + shift * 4, 3, rows)
            values = np.round(values, 3)
            if i % 4 == 1:
                values[rng.random(rows) < 0.02] = np.nan
            data[f"num_{i:02d}"] = values
        data["int_binary"] = rng.binomial(1, 0.35 if current else 0.3, rows)
        data["int_four"] = rng.integers(0, 4, rows)
        data["int_five"] = rng.binomial(4, 0.55 if current else 0.5, rows)
        for i, k in enumerate(CATEGORY_COUNTS):
            labels = np.array([f"c{i}_{j:02d}" for j in range(k)], dtype=object)
            p = np.linspace(1, 2 if current and i % 2 == 0 else 1, k)
            data[f"cat_{i:02d}"] = rng.choice(labels, rows, p=p / p.sum())
        return pd.DataFrame(data)

    paths = directory / f"reference-{rows}.parquet", directory / f"current-{rows}.parquet"
    table(False).to_parquet(paths[0], index=False)
    table(True).to_parquet(paths[1], index=False)
    return paths


def run_child(python: str, code: str, ref: Path, cur: Path, timeout: float) -> dict:
    args = [python, "-c", code, str(ref), str(cur), json.dumps(NUMERIC), json.dumps(CATEGORICAL), str(ROOT)]
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd="/tmp")
    if done.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def agreement(ours: dict, theirs: dict) -> dict:
    same_method = [c for c in theirs if ours[c]["method"] == theirs[c]["method"]]
    rel = [abs(ours[c]["value"] - theirs[c]["value"]) / max(abs(theirs[c]["value"]), 1e-300) for c in same_method]
    return {"columns": len(theirs), "same_method": len(same_method), "max_rel_diff": max(rel) if rel else None,
            "same_verdict": sum(ours[c]["drifted"] == theirs[c]["drifted"] for c in theirs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per size (Evidently: 1 at 1M rows)")
    parser.add_argument("--evidently-python", default=DEFAULT_EVIDENTLY_PYTHON)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = [10_000], 1
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(), "cpu": cpu_model(),
               "memory_gib": memory_gib(), "sizes": []}
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        for rows in args.rows:
            ref, cur = make_tables(rows, Path(tmp))
            timeout, our_python = 3600, str(ROOT / ".venv/bin/python")
            ours = [run_child(our_python, CHILD_OURS, ref, cur, timeout) for _ in range(args.repeat)]
            ev_repeat = 1 if rows >= 1_000_000 else args.repeat
            theirs = [run_child(args.evidently_python, CHILD_EVIDENTLY, ref, cur, timeout) for _ in range(ev_repeat)]
            ours_s = statistics.median(r["seconds"] for r in ours)
            theirs_s = statistics.median(r["seconds"] for r in theirs)
            ours_mem = max(r["peak_kib"] - r["baseline_kib"] for r in ours) / 1024
            theirs_mem = max(r["peak_kib"] - r["baseline_kib"] for r in theirs) / 1024
            agree = agreement(ours[0]["columns"], theirs[0]["columns"])
            size = {"rows": rows, "ours_seconds": [r["seconds"] for r in ours],
                    "evidently_seconds": [r["seconds"] for r in theirs], "ours_peak_above_baseline_mib": ours_mem,
                    "evidently_peak_above_baseline_mib": theirs_mem, "agreement": agree,
                    "ours_columns": ours[0]["columns"], "evidently_columns": theirs[0]["columns"]}
            results["sizes"].append(size)
            rows_out.append([f"{rows:,} x 25", ours_s, theirs_s, f"{theirs_s / ours_s:.1f}x", round(ours_mem, 1),
                             round(theirs_mem, 1), f"{agree['same_method']}/{agree['columns']}",
                             f"{agree['max_rel_diff']:.1e}" if agree["max_rel_diff"] is not None else "-",
                             f"{agree['same_verdict']}/{agree['columns']}"])
            print(f"{rows:>9} rows: ours {ours_s:.3f} s, Evidently {theirs_s:.3f} s", file=sys.stderr)
    headers = ["rows a side x columns", "ours (s)", "Evidently (s)", "speed-up", "ours peak above baseline (MiB)",
               "Evidently peak above baseline (MiB)", "same method", "max relative difference", "same verdict"]
    report = (f"# Data drift: ours vs Evidently 0.7.23\n\n{results['date']}, {results['nproc']} cores "
              f"({results['cpu']}), {results['memory_gib']} GiB\n\n" + markdown_table(headers, rows_out) + "\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = "drift-quick" if args.quick else "drift"
    (RESULTS_DIR / f"{name}.md").write_text(report)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=1))
    print(report)


if __name__ == "__main__":
    main()
