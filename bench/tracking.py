"""Tracking benchmark: our API against an MLflow 3.17 tracking server, side by
side on this machine and the same PostgreSQL.

What it measures, for both servers alike:

1. Ingestion: metrics stored per second through each side's native batch
   call (ours ``POST /api/v1/runs/{id}/log-batch/``, MLflow
   ``POST /api/2.0/mlflow/runs/log-batch``), 1000 metrics per call, several
   runs of several calls each, with 1 and more concurrent clients. Request
   bodies are encoded before the clock starts, so the client's own cost is
   only the HTTP round trip.
2. Search: latency of one search over an experiment holding 10,000 and then
   100,000 runs (3 metrics, 3 params, 2 tags each, the same deterministic
   data on both sides), filter
   ``metrics.test_roc_auc > 0.8 and params.estimator = 'random_forest'``
   ordered by ``metrics.test_roc_auc DESC``, 100 results; median and p95 over
   repeated queries, the two servers queried alternately so that load from
   elsewhere on the machine hits both alike. Each side's answer is checked
   against the expected top 100.

How the search data gets in: the experiment is created through each API;
the runs are bulk-inserted in a setup step, for ours through the Django ORM
(``bulk_create`` of runs, params, metric history, latest metrics and tags),
for MLflow into its own SQLAlchemy models' tables (Core executemany
inserts of runs, params, metrics, latest_metrics and tags, plus the
``mlflow.runName`` and ``mlflow.user`` tags its API would add). Both
databases are then ``VACUUM ANALYZE``d.

Servers: MLflow runs in its own virtualenv bench/.venvs/mlflow (from
requirements/bench.txt) as ``mlflow server --backend-store-uri postgresql://...
--workers N`` (uvicorn, its default); ours runs with production settings
under gunicorn with the same number of workers (gthread, 4 threads each, as
the Procfile and the Docker image run it). Both are stopped however the
script ends.

    .venv/bin/python bench/tracking.py                 # full: 10k and 100k runs
    .venv/bin/python bench/tracking.py --quick         # smoke check, small sizes
    .venv/bin/python bench/tracking.py --runs 10000 --skip-mlflow
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench import common

FILTER = "metrics.test_roc_auc > 0.8 and params.estimator = 'random_forest'"
ORDER_BY = ["metrics.test_roc_auc DESC"]
SEARCH_LIMIT = 100
ESTIMATORS = ["random_forest", "logistic_regression", "gradient_boosting", "hist_gradient_boosting", "svm"]
BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
METRIC_KEYS = ["loss", "val_loss", "accuracy", "val_accuracy", "roc_auc", "val_roc_auc", "precision", "recall",
               "f1", "learning_rate"]
DB_OURS, DB_MLFLOW = "bench_ours", "bench_mlflow"
POPULATE_CHUNK = 5000


# --- the data both sides get ---------------------------------------------------------------

def run_record(index: int) -> dict:
    """Run number ``index`` of the search experiment, the same on both sides."""
    rng = random.Random(index * 7919 + 17)
    return {
        "name": f"run-{index:07d}",
        "start_ms": BASE_TIME_MS + index * 1000,
        "params": {"estimator": ESTIMATORS[rng.randrange(len(ESTIMATORS))], "max_depth": str(rng.randint(2, 16)),
                   "seed": str(index % 100)},
        "metrics": {"test_roc_auc": round(rng.uniform(0.55, 0.99), 6),
                    "test_accuracy": round(rng.uniform(0.6, 0.95), 6),
                    "train_loss": round(rng.uniform(0.05, 0.7), 6)},
        "tags": {"stage": rng.choice(["dev", "review"]), "dataset": "lab-submissions-v3"},
    }


def expected_top(total_runs: int) -> list[float]:
    """The test_roc_auc values a correct search returns, best first."""
    values = []
    for index in range(total_runs):
        record = run_record(index)
        if record["metrics"]["test_roc_auc"] > 0.8 and record["params"]["estimator"] == "random_forest":
            values.append(record["metrics"]["test_roc_auc"])
    return sorted(values, reverse=True)[:SEARCH_LIMIT]


def metric_batch(call: int, size: int = 1000) -> list[dict]:
    """Call ``call``'s metrics: 10 keys, size/10 consecutive steps each."""
    rng = random.Random(call)
    per_key = size // len(METRIC_KEYS)
    return [{"key": key, "value": rng.random(), "step": call * per_key + step,
             "timestamp": BASE_TIME_MS + (call * per_key + step) * 10}
            for step in range(per_key) for key in METRIC_KEYS]


# --- the two servers ------------------------------------------------------------------------

class Side(common.JsonClient):
    """One tracking server as seen by the benchmark."""

    def create_experiment(self, name: str) -> str: ...
    def create_run(self, experiment_id: str, name: str) -> str: ...
    def log_batch_request(self, run_id: str, metrics: list[dict]) -> tuple[str, bytes]: ...
    def search(self, experiment_id: str) -> list[float]: ...
    def populate(self, experiment_id: str, start: int, stop: int) -> None: ...


class OurSide(Side):
    name = "ours"

    def __init__(self, base_url: str, api_key: str, env: dict[str, str]):
        super().__init__(base_url + "/api/v1", {"Authorization": f"Api-Key {api_key}"})
        self.env = env

    def create_experiment(self, name: str) -> str:
        return self.post("/experiments/", {"name": name})["id"]

    def create_run(self, experiment_id: str, name: str) -> str:
        return self.post("/runs/", {"experiment_id": experiment_id, "name": name})["id"]

    def log_batch_request(self, run_id: str, metrics: list[dict]) -> tuple[str, bytes]:
        return f"/runs/{run_id}/log-batch/", json.dumps({"metrics": metrics}).encode()

    def search(self, experiment_id: str) -> list[float]:
        body = {"experiment_ids": [experiment_id], "filter": FILTER, "order_by": ORDER_BY,
                "max_results": SEARCH_LIMIT}
        runs = self.post("/runs/search/", body)["runs"]
        return [run_record(int(run["name"].split("-")[1]))["metrics"]["test_roc_auc"] for run in runs]

    def populate(self, experiment_id: str, start: int, stop: int) -> None:
        subprocess.run([str(common.OUR_PYTHON), __file__, "populate-ours", "--experiment-id", str(experiment_id),
                        "--start", str(start), "--stop", str(stop)], cwd=common.ROOT, env=self.env, check=True)


    def profile(self, experiment_id: str, out: Path) -> str:
        """Run profile-ours on the search experiment; returns its summary lines."""
        result = subprocess.run([str(common.OUR_PYTHON), __file__, "profile-ours", "--experiment-id",
                                 str(experiment_id)], cwd=common.ROOT, env=self.env, check=True,
                                capture_output=True, text=True)
        out.write_text(result.stdout)
        return "\n".join(line[3:] for line in result.stdout.splitlines() if line.startswith("== "))


class MlflowSide(Side):
    name = "MLflow"

    def __init__(self, base_url: str, python: Path, backend_uri: str):
        super().__init__(base_url + "/api/2.0/mlflow", {})
        self.python = python
        self.backend_uri = backend_uri

    def create_experiment(self, name: str) -> str:
        return self.post("/experiments/create", {"name": name})["experiment_id"]

    def create_run(self, experiment_id: str, name: str) -> str:
        body = {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)}
        return self.post("/runs/create", body)["run"]["info"]["run_id"]

    def log_batch_request(self, run_id: str, metrics: list[dict]) -> tuple[str, bytes]:
        return "/runs/log-batch", json.dumps({"run_id": run_id, "metrics": metrics}).encode()

    def search(self, experiment_id: str) -> list[float]:
        body = {"experiment_ids": [experiment_id], "filter": FILTER, "order_by": ORDER_BY,
                "max_results": SEARCH_LIMIT}
        runs = self.post("/runs/search", body).get("runs", [])
        return [run_record(int(run["info"]["run_name"].split("-")[1]))["metrics"]["test_roc_auc"] for run in runs]

    def populate(self, experiment_id: str, start: int, stop: int) -> None:
        subprocess.run([str(self.python), __file__, "populate-mlflow", "--backend-uri", self.backend_uri,
                        "--experiment-id", str(experiment_id), "--start", str(start), "--stop", str(stop)],
                       cwd=common.ROOT, check=True)


def start_mlflow(workers: int, results_dir: Path) -> MlflowSide:
    base_url, python, backend_uri = common.start_mlflow_server(DB_MLFLOW, workers=workers, results_dir=results_dir)
    return MlflowSide(base_url, python, backend_uri)


def start_ours(workers: int, results_dir: Path, dbname: str = DB_OURS) -> OurSide:
    common.recreate_database(dbname)
    env, api_key = common.prepare_ours(dbname, results_dir / "ours-var")
    port = common.free_port()
    common.start_ours(env, workers=workers, port=port, log_path=results_dir / "ours-server.log")
    return OurSide(f"http://127.0.0.1:{port}", api_key, env)


# --- measurements ----------------------------------------------------------------------------

def measure_ingestion(side: Side, *, runs: int, calls: int, concurrency: int) -> dict:
    """Metrics stored per second through batch logging, 1000 per call.

    ``runs`` runs of ``calls`` calls each; ``concurrency`` client threads,
    each logging whole runs in order (as a training script would)."""
    side.fresh_connection()
    experiment = side.create_experiment(f"ingest-c{concurrency}-{uuid.uuid4().hex[:8]}")
    warm_run = side.create_run(experiment, "warm-up")
    for call in range(2):  # first requests pay for imports and connection set-up
        side.post(*side.log_batch_request(warm_run, metric_batch(call)))
    run_ids = [side.create_run(experiment, f"ingest-{i}") for i in range(runs)]
    requests_by_run = [[side.log_batch_request(run_id, metric_batch(call)) for call in range(calls)]
                       for run_id in run_ids]
    latencies: list[float] = []
    lock = threading.Lock()

    def log_runs(worker: int) -> None:
        mine = []
        for index in range(worker, len(requests_by_run), concurrency):
            for path, body in requests_by_run[index]:
                started = time.perf_counter()
                side.post(path, body)
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(log_runs, range(concurrency)))
    elapsed = time.perf_counter() - started
    total = runs * calls * 1000
    return {"metrics": total, "seconds": elapsed, "metrics_per_s": total / elapsed,
            **{f"call_{k}": v for k, v in common.latency_summary(latencies).items()}}


def measure_search(sides: list[Side], experiments: dict[str, str], *, repeats: int,
                   expected: list[float]) -> dict[str, dict]:
    """Latency of the filtered, sorted search; the sides are queried
    alternately. Each side's first answer is checked against ``expected``."""
    timings: dict[str, list[float]] = {side.name: [] for side in sides}
    checks: dict[str, str] = {}
    for side in sides:
        side.fresh_connection()
        for _ in range(3):  # warm caches and connections on both sides
            got = side.search(experiments[side.name])
        checks[side.name] = _check(got, expected)
    for _ in range(repeats):
        for side in sides:
            started = time.perf_counter()
            side.search(experiments[side.name])
            timings[side.name].append(time.perf_counter() - started)
    return {name: {**common.latency_summary(values), "check": checks[name]} for name, values in timings.items()}


def _check(got: list[float], expected: list[float]) -> str:
    if got == expected:
        return f"ok ({len(got)} runs, as expected)"
    return f"WRONG: {len(got)} runs, first {got[:3]}, expected {len(expected)} runs, first {expected[:3]}"


# --- populating (run in each side's own interpreter) ---------------------------------------------

def populate_ours(experiment_id: int, start: int, stop: int) -> None:
    """Bulk-insert runs start..stop-1 through the Django ORM."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from apps.experiments.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

    experiment = Experiment.objects.get(pk=experiment_id)
    user = get_user_model().objects.get(username="bench")
    for chunk_start in range(start, stop, POPULATE_CHUNK):
        records = [run_record(i) for i in range(chunk_start, min(stop, chunk_start + POPULATE_CHUNK))]
        with transaction.atomic():
            runs = Run.objects.bulk_create([
                Run(experiment=experiment, name=r["name"], status="finished", user=user,
                    start_time=_dt(r["start_ms"]), end_time=_dt(r["start_ms"] + 60_000))
                for r in records
            ])
            Param.objects.bulk_create([Param(run=run, experiment=experiment, key=k, value=v)
                                       for run, r in zip(runs, records, strict=True) for k, v in r["params"].items()])
            RunTag.objects.bulk_create([RunTag(run=run, experiment=experiment, key=k, value=v)
                                        for run, r in zip(runs, records, strict=True) for k, v in r["tags"].items()])
            for model in (Metric, LatestMetric):
                model.objects.bulk_create([
                    model(run=run, key=k, value=v, step=0, timestamp=_dt(r["start_ms"] + 60_000))
                    for run, r in zip(runs, records, strict=True) for k, v in r["metrics"].items()
                ])


def profile_ours(experiment_id: int, calls: int, searches: int) -> None:
    """Where our server's time goes: the same log-batch and search requests
    through Django's full request path in this process (middleware, DRF,
    service, database; not gunicorn's HTTP parsing), under cProfile, with
    the SQL time measured separately. Prints a plain-text report."""
    import cProfile
    import io
    import pstats

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    client = APIClient(SERVER_NAME="127.0.0.1")
    client.force_authenticate(get_user_model().objects.get(username="bench"))
    sql = {"seconds": 0.0, "queries": 0}

    def timed_sql(execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql["seconds"] += time.perf_counter() - started
            sql["queries"] += 1

    def post(path: str, body: bytes) -> None:
        response = client.post(path, data=body, content_type="application/json")
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path} -> {response.status_code} {response.content[:300]!r}")

    run_id = client.post("/api/v1/runs/", {"experiment_id": experiment_id, "name": "profile"},
                         format="json").json()["id"]
    search_body = json.dumps({"experiment_ids": [experiment_id], "filter": FILTER, "order_by": ORDER_BY,
                              "max_results": SEARCH_LIMIT}).encode()
    jobs = {
        "log-batch (1000 metrics)": [(f"/api/v1/runs/{run_id}/log-batch/", json.dumps({"metrics": metric_batch(c)})
                                      .encode()) for c in range(calls)],
        "search": [("/api/v1/runs/search/", search_body)] * searches,
    }
    for what, requests_ in jobs.items():
        post(*requests_[0])  # warm up
        sql.update(seconds=0.0, queries=0)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        with connection.execute_wrapper(timed_sql):
            profiler.enable()
            for path, body in requests_:
                post(path, body)
            profiler.disable()
        wall = time.perf_counter() - started
        n = len(requests_)
        stats = pstats.Stats(profiler)
        # Time inside the database driver (sending, waiting for PostgreSQL,
        # COPY, decoding rows): the part a faster Python path cannot remove.
        driver = sum(entry[2] for key, entry in stats.stats.items() if "/psycopg/" in key[0])
        print(f"== {what}: {wall / n * 1000:.0f} ms per request in-process with the profiler on; "
              f"{driver / wall * 100:.0f}% in the database driver (PostgreSQL round trips), "
              f"{sql['queries'] / n:.0f} queries through Django taking {sql['seconds'] / n * 1000:.0f} ms; "
              f"the rest is Python (request parsing, validation, ORM, serialization)")
        for order, count in (("tottime", 15), ("cumulative", 30)):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(count)
            print(out.getvalue())
        _explain_slowest_query(what, path=requests_[0][0], body=requests_[0][1], post=post)


def _explain_slowest_query(what: str, *, path: str, body: bytes, post) -> None:
    """Print the plan of the slowest SQL statement of one request, as
    PostgreSQL ran it (EXPLAIN ANALYZE, in a transaction rolled back)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        post(path, body)
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    if not slowest["sql"].lstrip().upper().startswith("SELECT"):
        print(f"slowest statement ({slowest['time']} s) is not a SELECT; no plan shown:\n{slowest['sql'][:2000]}")
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    execution = next((line.strip() for line in plan.splitlines() if line.startswith("Execution Time")), "")
    print(f"== {what}, its slowest SQL statement: {float(slowest['time']) * 1000:.0f} ms of {len(captured)} "
          f"({execution}; plan in the full listing)")
    print(f"slowest statement ({float(slowest['time']) * 1000:.0f} ms):\n{slowest['sql']}\n\nits plan:\n{plan}\n")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def populate_mlflow(backend_uri: str, experiment_id: str, start: int, stop: int) -> None:
    """Bulk-insert runs start..stop-1 through MLflow's SQLAlchemy models."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    engine = create_engine(backend_uri)
    with Session(engine) as session:
        artifact_root = session.get(SqlExperiment, int(experiment_id)).artifact_location
    for chunk_start in range(start, stop, POPULATE_CHUNK):
        runs, params, metrics, tags = [], [], [], []
        for index in range(chunk_start, min(stop, chunk_start + POPULATE_CHUNK)):
            r = run_record(index)
            run_uuid = uuid.UUID(int=random.Random(index).getrandbits(128)).hex
            runs.append({"run_uuid": run_uuid, "name": r["name"], "source_type": "LOCAL", "source_name": "",
                         "entry_point_name": "", "user_id": "bench", "status": "FINISHED",
                         "start_time": r["start_ms"], "end_time": r["start_ms"] + 60_000, "source_version": "",
                         "lifecycle_stage": "active", "artifact_uri": f"{artifact_root}/{run_uuid}/artifacts",
                         "experiment_id": int(experiment_id)})
            params += [{"key": k, "value": v, "run_uuid": run_uuid} for k, v in r["params"].items()]
            metrics += [{"key": k, "value": v, "timestamp": r["start_ms"] + 60_000, "step": 0, "is_nan": False,
                         "run_uuid": run_uuid} for k, v in r["metrics"].items()]
            run_tags = {**r["tags"], "mlflow.runName": r["name"], "mlflow.user": "bench"}
            tags += [{"key": k, "value": v, "run_uuid": run_uuid} for k, v in run_tags.items()]
        # Core executemany (the driver's multi-row fast path) on the ORM
        # models' own tables, so the schema is MLflow's, not a copy of it.
        with engine.begin() as connection:
            for model, rows in ((SqlRun, runs), (SqlParam, params), (SqlTag, tags), (SqlMetric, metrics),
                                (SqlLatestMetric, metrics)):
                connection.execute(insert(model.__table__), rows)


# --- the report -------------------------------------------------------------------------------------

GOAL_INGEST_RATIO = 10
GOAL_SEARCH_MS = {10_000: 50, 100_000: 100}


def versions(mlflow_python: Path | None) -> dict[str, str]:
    found = common.our_versions()
    if mlflow_python is not None:
        out = subprocess.run([str(mlflow_python), "-c", "import mlflow, uvicorn, sqlalchemy; print(mlflow.__version__,"
                              " uvicorn.__version__, sqlalchemy.__version__)"], capture_output=True, text=True,
                             check=True)
        mlflow_version, uvicorn_version, sqlalchemy_version = out.stdout.split()
        found.update({"mlflow": mlflow_version, "uvicorn (MLflow's server)": uvicorn_version,
                      "sqlalchemy (MLflow)": sqlalchemy_version})
    return found


def render(results: dict) -> str:
    machine, names = results["machine"], results["sides"]
    lines = [
        "# Tracking: our API vs MLflow 3.17",
        "",
        "Produced by `bench/tracking.py` (see its docstring for the method). "
        + ("**Smoke-check sizes (`--quick`): not for comparison.**" if results["quick"] else ""),
        "",
        f"- Command: `{results['command']}`",
        f"- Date: {results['date']}",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB RAM, {machine['os']}, "
        f"Python {machine['python']}. {results['note']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- Servers: {results['workers']} worker processes each — MLflow `mlflow server --workers "
        f"{results['workers']}` (uvicorn), ours gunicorn with production settings ({results['workers']} gthread "
        "workers x 4 threads); one PostgreSQL on 127.0.0.1 for both.",
        "",
        "## Ingestion (batch logging, 1000 metrics per call)",
        "",
    ]
    rows = []
    for entry in results["ingestion"]:
        row = [entry["concurrency"], f"{entry['runs']} x {entry['calls']}"]
        for name in names:
            m = entry.get(name)
            row += [m["metrics_per_s"], m["call_median_ms"]] if m else ["-", "-"]
        if len(names) == 2 and all(entry.get(n) for n in names):
            row.append(f"{entry['ours']['metrics_per_s'] / entry['MLflow']['metrics_per_s']:.1f}x")
        rows.append(row)
    headers = ["clients", "runs x calls"]
    for name in names:
        headers += [f"{name} metrics/s", f"{name} median ms/call"]
    if len(names) == 2:
        headers.append("ours / MLflow")
    lines += [common.markdown_table(headers, rows), "",
              "## Search (filter and sort, 100 results)", "",
              f"Filter `{FILTER}`, order by `{ORDER_BY[0]}`.", ""]
    rows = []
    for entry in results["search"]:
        row = [entry["runs"]]
        for name in names:
            m = entry.get(name)
            row += [m["median_ms"], m["p95_ms"], m["check"]] if m else ["-", "-", "-"]
        if len(names) == 2 and all(entry.get(n) for n in names):
            row.append(f"{entry['MLflow']['median_ms'] / entry['ours']['median_ms']:.1f}x")
        rows.append(row)
    headers = ["runs in the experiment"]
    for name in names:
        headers += [f"{name} median ms", f"{name} p95 ms", f"{name} answer"]
    if len(names) == 2:
        headers.append("MLflow / ours (median)")
    lines += [common.markdown_table(headers, rows), "", "## Against the goals", ""]
    lines += [f"- {line}" for line in goal_lines(results)]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def goal_lines(results: dict) -> list[str]:
    out = []
    for entry in results["ingestion"]:
        if entry.get("ours") and entry.get("MLflow"):
            ratio = entry["ours"]["metrics_per_s"] / entry["MLflow"]["metrics_per_s"]
            verdict = "met" if ratio >= GOAL_INGEST_RATIO else "NOT met"
            out.append(f"Ingestion with {entry['concurrency']} client(s): {ratio:.1f}x MLflow "
                       f"(goal ≥ {GOAL_INGEST_RATIO}x): {verdict}.")
    for entry in results["search"]:
        if not entry.get("ours"):
            continue
        goal = GOAL_SEARCH_MS.get(entry["runs"])
        median = entry["ours"]["median_ms"]
        if goal is None:
            out.append(f"Search at {entry['runs']:,} runs: {median:.1f} ms median (no goal set for this size).")
        else:
            verdict = "met" if median < goal and entry["ours"]["p95_ms"] < goal else (
                "met at the median, not at p95" if median < goal else "NOT met")
            out.append(f"Search at {entry['runs']:,} runs: {median:.1f} ms median, {entry['ours']['p95_ms']:.1f} ms "
                       f"p95 (goal < {goal} ms): {verdict}.")
    return out


# --- main -------------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="10000,100000",
                        help="search experiment sizes, ascending, comma-separated (default 10000,100000)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure only our server")
    parser.add_argument("--skip-ours", action="store_true", help="measure only MLflow")
    parser.add_argument("--ours-database", default=DB_OURS,
                        help=f"PostgreSQL database for our side, dropped and recreated (default {DB_OURS})")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, each side (default 2)")
    parser.add_argument("--concurrency", default="1,4", help="client threads for ingestion (default 1,4)")
    parser.add_argument("--ingest-runs", type=int, default=4, help="runs per ingestion measurement (default 4)")
    parser.add_argument("--ingest-calls", type=int, default=15, help="log-batch calls per run (default 15)")
    parser.add_argument("--repeats", type=int, default=40, help="timed searches per size and side (default 40)")
    parser.add_argument("--output", type=Path, help="markdown report (default docs/benchmarks/tracking.md; "
                        "bench/results/tracking-quick.md with --quick)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the in-process profile of our log-batch and search")
    parser.add_argument("--note", default="The machine was shared with other work while this ran.",
                        help="a sentence about the conditions, printed in the report")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.quick:
        args.runs = "500,2000" if args.runs == "10000,100000" else args.runs
        args.ingest_runs, args.ingest_calls, args.repeats = 2, 5, 10
    sizes = sorted(int(s) for s in args.runs.split(",") if s.strip())
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    output = args.output or (common.RESULTS_DIR / "tracking-quick.md" if args.quick
                             else common.ROOT / "docs" / "benchmarks" / "tracking.md")
    results_dir = common.RESULTS_DIR / "tracking"
    results_dir.mkdir(parents=True, exist_ok=True)

    results: dict = {
        "command": "bench/tracking.py " + " ".join(argv) if argv else "bench/tracking.py",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick, "workers": args.workers, "note": args.note,
        "machine": common.machine_description(), "sides": [], "ingestion": [], "search": [], "notes": [],
    }
    with common.cleanup_on_exit():
        sides: list[Side] = []
        mlflow_python = None
        if not args.skip_mlflow:
            _say("starting MLflow server")
            mlflow_side = start_mlflow(args.workers, results_dir)
            mlflow_python = mlflow_side.python
            sides.append(mlflow_side)
        if not args.skip_ours:
            _say("starting our server")
            sides.append(start_ours(args.workers, results_dir, args.ours_database))
        results["sides"] = [side.name for side in sides]
        results["versions"] = versions(mlflow_python)

        for concurrency in concurrencies:
            entry = {"concurrency": concurrency, "runs": args.ingest_runs * concurrency, "calls": args.ingest_calls}
            for side in sides:
                _say(f"ingestion, {concurrency} client(s): {side.name}")
                entry[side.name] = measure_ingestion(side, runs=entry["runs"], calls=args.ingest_calls,
                                                     concurrency=concurrency)
                _say(f"  {entry[side.name]['metrics_per_s']:,.0f} metrics/s")
            results["ingestion"].append(entry)

        experiments = {side.name: side.create_experiment("search-bench") for side in sides}
        populated = 0
        for size in sizes:
            for side in sides:
                _say(f"populating {side.name} to {size:,} runs")
                _timed(results, f"populate {side.name} {populated}..{size}",
                       lambda side=side, start=populated, stop=size: side.populate(experiments[side.name], start, stop))
            populated = size
            databases = (([DB_MLFLOW] if not args.skip_mlflow else [])
                         + ([args.ours_database] if not args.skip_ours else []))
            for dbname in databases:
                common.vacuum_analyze(dbname)
            _say(f"searching {size:,} runs")
            entry = {"runs": size, **measure_search(sides, experiments, repeats=args.repeats,
                                                    expected=expected_top(size))}
            for side in sides:
                _say(f"  {side.name}: median {entry[side.name]['median_ms']:.1f} ms, "
                     f"p95 {entry[side.name]['p95_ms']:.1f} ms, {entry[side.name]['check']}")
            results["search"].append(entry)

        ours = next((side for side in sides if isinstance(side, OurSide)), None)
        if ours is not None and args.profile:
            _say("profiling our server in-process")
            profile_path = results_dir / "profile-ours.txt"
            summary = ours.profile(experiments[ours.name], profile_path)
            results["notes"] += [f"profile (ours, {populated:,} runs): {line}" for line in summary.splitlines()]
            results["notes"].append(f"full cProfile listing: {profile_path.relative_to(common.ROOT)}")

    common.write_report(render(results), output, results, results_dir / "tracking-results.json")
    return 0


def _timed(results: dict, what: str, action: Callable[[], None]) -> None:
    started = time.perf_counter()
    action()
    results["notes"].append(f"setup: {what} took {time.perf_counter() - started:.0f} s")


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def _helper_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["populate-ours", "populate-mlflow", "profile-ours"])
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=0)
    parser.add_argument("--backend-uri")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--searches", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command == "profile-ours":
        profile_ours(int(args.experiment_id), args.calls, args.searches)
    elif args.command == "populate-ours":
        populate_ours(int(args.experiment_id), args.start, args.stop)
    else:
        populate_mlflow(args.backend_uri, args.experiment_id, args.start, args.stop)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("populate-ours", "populate-mlflow", "profile-ours"):
        sys.exit(_helper_main(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
