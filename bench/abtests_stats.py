"""Time the A/B statistics core against gbstats on the reference cases.

Both sides analyse every case of apps/abtests/tests/fixtures/gbstats_cases.json
(the SRM check plus each treatment-vs-control comparison), ``--repeat`` times;
gbstats runs in its own virtualenv (bench/requirements-gbstats.txt) through a
subprocess, so its numpy<2 never meets ours.

    .venv/bin/python bench/abtests_stats.py [--repeat 20] [--gbstats-python /work/venvs/gbstats/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "apps/abtests/tests/fixtures/gbstats_cases.json"

# Runs inside the gbstats virtualenv, from a folder with no gbstats.py to shadow the package.
GBSTATS_TIMER = """
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("fixture", sys.argv[1])
fixture = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixture)
data = json.load(open(sys.argv[2]))
repeat = int(sys.argv[3])
cases = data["analysis"]
start = time.perf_counter()
for _ in range(repeat):
    for case in cases:
        ds = data["datasets"][case["dataset"]]
        arms, weights, params = ds["arms"], ds["expected_weights"], dict(case["params"])
        difference = params.pop("difference")
        fixture.check_srm([a["n"] for a in arms], weights or [1 / len(arms)] * len(arms))
        for t in arms[1:]:
            fixture.gb_comparison(ds["metric_type"], arms[0], t, params, difference)
print(time.perf_counter() - start)
"""


def time_ours(data: dict, repeat: int) -> float:
    sys.path.insert(0, str(ROOT))
    from apps.abtests.stats import analyze

    start = time.perf_counter()
    for _ in range(repeat):
        for case in data["analysis"]:
            ds = data["datasets"][case["dataset"]]
            analyze(ds["metric_type"], ds["arms"], expected_weights=ds["expected_weights"], **case["params"])
    return time.perf_counter() - start


def time_gbstats(python: str, repeat: int) -> float:
    out = subprocess.run(
        [python, "-c", GBSTATS_TIMER, str(ROOT / "bench/gbstats_fixture.py"), str(FIXTURE), str(repeat)],
        cwd="/tmp",
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--gbstats-python", default="/work/venvs/gbstats/bin/python")
    args = parser.parse_args()
    data = json.loads(FIXTURE.read_text())
    cases = len(data["analysis"])
    calls = cases * args.repeat
    ours = time_ours(data, args.repeat)
    theirs = time_gbstats(args.gbstats_python, args.repeat)
    print(f"{cases} cases x {args.repeat} repeats (gbstats {data['versions']['gbstats']})\n")
    print("| engine | total s | per analysis µs |")
    print("| --- | ---: | ---: |")
    for name, seconds in (("ours (analyze)", ours), ("gbstats", theirs)):
        print(f"| {name} | {seconds:.3f} | {seconds / calls * 1e6:.0f} |")
    print(f"\ngbstats / ours: {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
