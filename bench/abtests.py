"""A/B test results at scale: seed a 2-arm test's prediction log with COPY,
roll it up with the real ``ab_test_stats_update`` and time the results.

Measures (1) how many log rows per second the rollup (the monitoring-queue
task's service, per-unit aggregates included) folds in, to compare with the
logging rate the serving benchmark reaches, (2) how long the results for the
test take once rolled up (they read the kept per-arm sums, never the log),
and (3) for contrast, one SQL aggregate over the test's log rows — what a
page would cost if it scanned the log.

    .venv/bin/python bench/abtests.py --rows 1000000 [--units-per 10] [--feedback-share 0.1]
        [--rollup-seconds 0] [--database mlops_bench_abtests] [--reuse]

``--rollup-seconds N`` stops the rollup after N s (the throughput is then
measured on the rows it reached; results are timed on whatever was rolled up).
The database is dropped and recreated unless ``--reuse``; with ``--reuse`` and a
seeded log, the rollup carries on from the test's cursors (no new seed).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine_description, postgres_url, recreate_database, vacuum_analyze  # noqa: E402

CHUNK = 200_000


def _setup(database: str, reuse: bool) -> None:
    if not reuse:
        recreate_database(database)
    os.environ["DATABASE_URL"] = postgres_url(database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_site.settings.test")
    os.environ.setdefault("MLOPS_CI", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _world():
    from apps.abtests.models import ABTest, ABTestArm
    from apps.core.services import user_ensure
    from apps.registry.choices import Stage
    from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

    user, _ = user_ensure(username="bench", password="bench-Secret-123", roles=["Admin"], is_superuser=True)
    versions = (make_model_version(owner=user, stage=Stage.PRODUCTION),
                make_model_version(owner=user, stage=Stage.STAGING, seed=12))
    endpoint = make_endpoint(owner=user, slug="qc-bench", environment="staging")
    deployment = deploy(endpoint=endpoint, version=versions[0], actor=user)
    test = ABTest.objects.create(endpoint=endpoint, name="bench", created_by=user, status="running", split_id=1,
                                 started_at=datetime.now(UTC) - timedelta(hours=1), engine="sequential",
                                 primary_metric="error_rate", secondary_metrics=["accuracy", "latency_ms"],
                                 guardrail_metrics=["error_rate"])
    for index, version in enumerate(versions):
        ABTestArm.objects.create(ab_test=test, index=index, name="control" if index == 0 else "challenger",
                                 model_version=version, weight=1)
    return test, deployment


def _seed(test, deployment, rows: int, units_per: int, feedback_share: float) -> tuple[float, int]:
    """COPY ``rows`` log rows (ids 1..rows) and feedback on every 1/share-th row; returns seconds and feedback rows."""
    import numpy as np
    from django.db import connection

    rng = np.random.default_rng(7)
    started = time.perf_counter()
    units = max(rows // units_per, 1)
    feedback_every = round(1 / feedback_share) if feedback_share > 0 else 0
    stamp = (test.started_at + timedelta(minutes=1)).isoformat()
    log_cols = ("id, endpoint_id, deployment_id, model_version_id, request_id, unit_id, n_instances, inputs, "
                "predictions, probabilities, latency_ms, status_code, error, serving_path, created_at, split_id, "
                "split_arm")
    fb_cols = "endpoint_id, request_id, index, label, prediction_id, predicted, correct, received_at, joined_at, " \
              "sender_labels_any"
    feedback = 0
    with connection.cursor() as cursor:
        raw = cursor.connection
        for first in range(1, rows + 1, CHUNK):
            ids = np.arange(first, min(first + CHUNK, rows + 1))
            unit = rng.integers(0, units, size=len(ids))
            arm = unit % 2
            failed = rng.random(len(ids)) < np.where(arm == 0, 0.010, 0.012)
            latency = rng.gamma(4.0, 5.0, size=len(ids)) + arm
            prob = rng.random(len(ids))
            out, fb = io.StringIO(), io.StringIO()
            for i, u, a, f, lat, p in zip(ids.tolist(), unit.tolist(), arm.tolist(), failed.tolist(),
                                          latency.tolist(), prob.tolist(), strict=True):
                predicted = 1 if p >= 0.5 else 0
                answer = "[]\t\\N" if f else f'[{predicted}]\t[{{"0": {1 - p:.4f}, "1": {p:.4f}}}]'
                out.write(f"{i}\t{test.endpoint_id}\t{deployment.pk}\t{deployment.model_version_id}\tr{i}\tS-{u}\t1\t"
                          f"[]\t{answer}\t{lat:.3f}\t{500 if f else 200}\t\tpython\t{stamp}\t{test.split_id}\t{a}\n")
                if feedback_every and not f and i % feedback_every == 0:
                    correct = "t" if (i * 2654435761 % 1000) < (800 if a == 0 else 820) else "f"
                    fb.write(f"{test.endpoint_id}\tr{i}\t0\t1\t{i}\t{predicted}\t{correct}\t{stamp}\t{stamp}\tf\n")
                    feedback += 1
            with raw.cursor() as pg, pg.copy(f"COPY serving_predictionlog ({log_cols}) FROM STDIN") as copy:
                copy.write(out.getvalue())
            with raw.cursor() as pg, pg.copy(f"COPY serving_feedback ({fb_cols}) FROM STDIN") as copy:
                copy.write(fb.getvalue())
            print(f"  seeded {ids[-1]:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        cursor.execute("SELECT setval(pg_get_serial_sequence('serving_predictionlog', 'id'), %s)", [rows])
    return time.perf_counter() - started, feedback


def _rollup(test, limit: float) -> tuple[int, int, float]:
    from apps.abtests import services

    started, predictions, feedback = time.perf_counter(), 0, 0
    while True:
        result = services.ab_test_stats_update(ab_test_id=test.pk)
        predictions, feedback = predictions + result["predictions"], feedback + result["feedback"]
        if not (result["more"] or result["feedback"]) or (limit and time.perf_counter() - started > limit):
            break
        if predictions % 200_000 < 5000:
            print(f"  rolled up {predictions:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    return predictions, feedback, time.perf_counter() - started


def _results_time(test, repeat: int = 20) -> tuple[float, float, dict]:
    from django.db import reset_queries

    from apps.abtests import selectors

    times, result = [], None
    for _ in range(repeat):
        reset_queries()
        start = time.perf_counter()
        result = selectors.ab_test_results(ab_test=test)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times), result


def _scan_time(test) -> float:
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT split_arm, count(*), count(*) FILTER (WHERE status_code >= 500), avg(latency_ms), "
                       "count(DISTINCT unit_id) FROM serving_predictionlog WHERE split_id = %s GROUP BY split_arm",
                       [test.split_id])
        cursor.fetchall()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--units-per", type=int, default=10, help="mean requests per unit")
    parser.add_argument("--feedback-share", type=float, default=0.1)
    parser.add_argument("--rollup-seconds", type=float, default=0.0)
    parser.add_argument("--database", default="mlops_bench_abtests")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    _setup(args.database, args.reuse)
    from apps.abtests.models import ABTest

    test = ABTest.objects.filter(name="bench").first() if args.reuse else None
    if test is None:
        test, deployment = _world()
        seed_s, feedback_rows = _seed(test, deployment, args.rows, args.units_per, args.feedback_share)
        vacuum_analyze(args.database)
    else:  # --reuse with a seeded log: carry on rolling up from the test's cursors
        from apps.serving.models import Feedback, PredictionLog

        seed_s, feedback_rows = None, Feedback.objects.count()
        args.rows = PredictionLog.objects.count()
    predictions, feedback, rollup_s = _rollup(test, args.rollup_seconds)
    median_s, max_s, result = _results_time(test)
    scan_s = _scan_time(test)
    primary = result["primary"]
    machine = machine_description()
    print(f"\nmachine: {machine}\n")
    print("| measure | value |\n| --- | ---: |")
    if seed_s is None:
        print(f"| log rows (seeded before, reused) | {args.rows:,} |")
    else:
        print(f"| log rows seeded (COPY) | {args.rows:,} in {seed_s:.0f} s ({args.rows / seed_s:,.0f} rows/s) |")
    print(f"| feedback rows seeded | {feedback_rows:,} |")
    print(f"| rows rolled up | {predictions:,} log + {feedback:,} feedback in {rollup_s:.1f} s |")
    print(f"| rollup throughput | {predictions / rollup_s:,.0f} log rows/s (+ {feedback / rollup_s:,.0f} feedback/s) |")
    print(f"| results answer (median of 20 / max) | {median_s * 1000:.1f} ms / {max_s * 1000:.1f} ms |")
    print(f"| one SQL aggregate over the test's log rows | {scan_s * 1000:.0f} ms |")
    print(f"| primary analysis | {primary['analysis']}, units {[a['units'] for a in primary['arms']]} |")


if __name__ == "__main__":
    main()
