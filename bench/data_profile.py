"""Data profiling benchmark: the validation worker's profiler against a naive
pandas ``read_csv`` + ``describe``, on the same file, on this machine.

Method.

1. A CSV of ``--rows`` rows and ``--columns`` columns is generated once (not
   measured): the lab sample submissions of ``apps.datasets.generator``
   (seeded; 20 columns, text, categories, datetimes, numbers with missing
   values), with synthetic numeric columns appended beyond 20 or columns
   dropped below. Rows are generated in chunks so generation itself stays
   small, and written with pyarrow.
2. Each contender runs ``--repeat`` times in a fresh Python process, so its
   peak resident memory (``ru_maxrss``) is its own. The process imports its
   libraries, records its resident memory (the baseline: interpreter,
   numpy, pandas, pyarrow), then does the work; we report the wall time of
   the work only and the peak RSS, both absolute and above the baseline.

   * **platform** — exactly what the validation task does with an uploaded
     file: ``fileformats.UploadInspector`` over the file (SHA-256, UTF-8
     check), ``fileformats.sniff``, then ``profiling.profile_file`` (two
     streaming passes: schema inference, distinct counts, duplicate rows,
     moments and quantile sample, then IQR outliers, histograms and
     correlations; the quality report and score).
   * **pandas** — ``pd.read_csv(path)`` then ``describe(include="all")``, the
     one-liner a notebook would use; it gives fewer answers (no outliers,
     correlations, duplicate rows, mixed-type or role inference).

3. Rows per second = rows / median wall time; also per CPU second (user +
   system time of the process, all threads), which a busy shared machine
   disturbs less than wall time. Memory is compared with the
   file size: "peak above baseline / file size" says how many copies of the
   file the process needed at its worst.

Run: ``.venv/bin/python bench/data_profile.py --rows 1000000`` (add
``--quick`` for a smoke test at 50,000 rows). Results go to
``bench/results/data_profile[-quick].{md,json}``; the write-up with the
figures is docs/benchmarks/data_profile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS_DIR, cpu_model, markdown_table, memory_gib  # noqa: E402

CHUNK_ROWS = 200_000

_CHILD_PLATFORM = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
import numpy, pandas, pyarrow  # noqa: F401  (part of the baseline)
from apps.datasets import fileformats, profiling

def rss_kib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

baseline = rss_kib()
path = {path!r}
usage0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage0.ru_utime + usage0.ru_stime
start = time.perf_counter()
inspector = fileformats.UploadInspector()
with open(path, "rb") as handle:
    while chunk := handle.read(1 << 20):
        inspector.feed(chunk)
inspector.finish()
sniffed = fileformats.sniff(path, file_format=fileformats.format_for_filename(path), head=inspector.head,
                            utf8_valid=inspector.utf8_valid, size=inspector.size)
result = profiling.profile_file(lambda: open(path, "rb"), sniffed=sniffed, size_bytes=inspector.size,
                                target="qc_pass")
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": elapsed, "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
                  "baseline_kib": baseline, "peak_kib": usage.ru_maxrss,
                  "rows": result.row_count, "columns": result.column_count,
                  "score": result.quality_report["score"], "problems": result.problems}}))
"""

_CHILD_PANDAS = r"""
import json, os, resource, sys, time
import numpy, pandas as pd, pyarrow  # noqa: F401

def rss_kib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

baseline = rss_kib()
usage0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage0.ru_utime + usage0.ru_stime
start = time.perf_counter()
frame = pd.read_csv({path!r})
summary = frame.describe(include="all")
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": elapsed, "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
                  "baseline_kib": baseline, "peak_kib": usage.ru_maxrss,
                  "rows": len(frame), "columns": frame.shape[1], "summary_cells": int(summary.size)}}))
"""


def generate_file(path: Path, *, rows: int, columns: int, seed: int) -> None:
    """Write the benchmark CSV chunk by chunk (generation is not measured)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from apps.datasets.generator import generate_submissions

    writer = None
    done = 0
    chunk_index = 0
    while done < rows:
        n = min(CHUNK_ROWS, rows - done)
        frame = generate_submissions(rows=n, seed=seed * 1000 + chunk_index)
        # Unique ids across chunks, as in a real export.
        frame["sample_id"] = [f"S{done + i:09d}" for i in range(n)]
        rng = np.random.default_rng(seed * 1000 + chunk_index)
        for extra in range(max(0, columns - frame.shape[1])):
            frame[f"extra_{extra:02d}"] = rng.normal(extra, 1 + extra, n).round(4)
        frame = frame.iloc[:, :columns]
        frame["submitted_at"] = frame["submitted_at"].dt.strftime("%Y-%m-%d %H:%M:%S") \
            if "submitted_at" in frame else None
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pa_csv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
        done += n
        chunk_index += 1
    if writer is not None:
        writer.close()


def run_child(code: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                               cwd=ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict], *, rows: int, size: int) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu_seconds = statistics.median(r["cpu_seconds"] for r in runs)
    peak = max(r["peak_kib"] for r in runs) * 1024
    baseline = statistics.median(r["baseline_kib"] for r in runs) * 1024
    return {"median_s": seconds, "rows_per_s": rows / seconds, "median_cpu_s": cpu_seconds,
            "rows_per_cpu_s": rows / cpu_seconds, "peak_rss_mib": peak / 2**20,
            "baseline_rss_mib": baseline / 2**20, "peak_above_baseline_mib": (peak - baseline) / 2**20,
            "peak_above_baseline_per_file_size": (peak - baseline) / size, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="50,000 rows, one repeat: a smoke test")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the generated CSV at this path (reused if present)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 50_000, 1

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        path = args.keep or Path(scratch) / f"submissions-{args.rows}x{args.columns}.csv"
        if not path.exists():
            print(f"generating {args.rows:,} rows x {args.columns} columns ...", flush=True)
            started = time.perf_counter()
            generate_file(path, rows=args.rows, columns=args.columns, seed=args.seed)
            print(f"  {path.stat().st_size / 2**20:,.1f} MiB in {time.perf_counter() - started:.1f} s", flush=True)
        size = path.stat().st_size
        results = {}
        contenders = [("platform", _CHILD_PLATFORM)] + ([] if args.skip_pandas else [("pandas", _CHILD_PANDAS)])
        for name, template in contenders:
            runs = []
            for attempt in range(args.repeat):
                run = run_child(template.format(root=str(ROOT), path=str(path)))
                runs.append(run)
                print(f"{name} run {attempt + 1}: {run['seconds']:.2f} s ({run['cpu_seconds']:.2f} s CPU), peak RSS "
                      f"{run['peak_kib'] / 1024:,.0f} MiB (baseline {run['baseline_kib'] / 1024:,.0f} MiB)",
                      flush=True)
            results[name] = summarise(runs, rows=args.rows, size=size)

    write_results(args, size=size, results=results)


def write_results(args, *, size: int, results: dict) -> None:
    import subprocess as sp

    commit = sp.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                    check=False).stdout.strip()
    command = "bench/data_profile.py " + " ".join(sys.argv[1:])
    machine = (f"{os.cpu_count()} CPUs ({cpu_model()}), {memory_gib()} GiB RAM, Python "
               f"{sys.version.split()[0]}")
    rows = []
    for name, r in results.items():
        rows.append([name, r["median_s"], round(r["rows_per_s"]), r["median_cpu_s"], round(r["rows_per_cpu_s"]),
                     r["peak_rss_mib"], r["baseline_rss_mib"], r["peak_above_baseline_mib"],
                     r["peak_above_baseline_per_file_size"]])
    lines = [
        "# Data profiling: the validation worker's profiler vs pandas read_csv + describe",
        "",
        "Produced by `bench/data_profile.py` (its docstring has the method)."
        + (" **Smoke-check size (`--quick`): not for comparison.**" if args.quick else ""),
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}",
        f"- Machine: {machine}.",
        f"- File: {args.rows:,} rows x {args.columns} columns, CSV, {size / 2**20:,.1f} MiB; "
        f"median of {args.repeat} run(s), each in a fresh process.",
        "",
        markdown_table(["contender", "median wall s", "rows/s (wall)", "median CPU s", "rows/CPU s",
                        "peak RSS MiB", "baseline RSS MiB", "peak above baseline MiB",
                        "above baseline / file size"], rows),
    ]
    if "pandas" in results:
        ours, theirs = results["platform"], results["pandas"]
        lines += ["", f"- Speed: platform {ours['rows_per_s'] / theirs['rows_per_s']:.2f}x the rows/s of pandas "
                  f"(wall time), {ours['rows_per_cpu_s'] / theirs['rows_per_cpu_s']:.2f}x per CPU second.",
                  f"- Memory above baseline: platform {ours['peak_above_baseline_mib']:,.0f} MiB, pandas "
                  f"{theirs['peak_above_baseline_mib']:,.0f} MiB "
                  f"({theirs['peak_above_baseline_mib'] / max(ours['peak_above_baseline_mib'], 1e-9):.1f}x).",
                  f"- Platform peak above baseline is {ours['peak_above_baseline_per_file_size']:.2f}x the file "
                  "size (the issue's bound: \"a few times over\")."]
    suffix = "-quick" if args.quick else ("" if args.rows == 1_000_000 else f"-{args.rows}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"data_profile{suffix}.md").write_text("\n".join(lines) + "\n")
    (RESULTS_DIR / f"data_profile{suffix}.json").write_text(json.dumps(
        {"command": command, "rows": args.rows, "columns": args.columns, "file_bytes": size,
         "results": results}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
