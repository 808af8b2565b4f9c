"""Serving benchmark: our predict path against ``mlflow models serve``, side
by side on this machine, the same fitted pipeline, the same load generator.

The model: lab sample submissions from ``apps.datasets.generator`` (seeded),
preprocessed by ``apps.datasets.features.build_preprocessor`` (the
``ColumnTransformer`` training jobs build) and classified by a
RandomForestClassifier and, in a second section, a
HistGradientBoostingClassifier (``--estimator``), each fitted once and saved
with skops. Both servers load that one file:

* ours: a fresh PostgreSQL database ``bench_serving``, migrated; the file is
  uploaded as version 1 of ``sample-qc`` through the registry's services,
  promoted to Production (requested by one user, approved by another), and
  deployed behind a production endpoint with the serving app's services; the
  rollout is driven to completion by calling its task functions in the setup
  process (no Celery worker runs during the measurement). Then gunicorn with
  production settings, ``--workers N`` gthread workers with ``--threads T``,
  prediction logging on (the default), ``Authorization: Api-Key ...``;
* MLflow 3.17 in its own virtualenv bench/.venvs/mlflow (requirements/
  bench.txt, the same scikit-learn): the skops file loaded there and saved
  with ``mlflow.sklearn.save_model`` (skops format, a signature inferred from
  the training frame, ``pyfunc_predict_fn="predict_proba"`` so it computes
  the class probabilities ours returns), served by
  ``mlflow models serve --env-manager local -w N``; body
  ``{"dataframe_records": [...]}``.

Scenarios (both servers up; each scenario runs against one side, then the
other, the order flipping every round, so that load from elsewhere on a
shared machine hits both alike; with ``--rounds N`` the round with the median
throughput is reported):

1. single row at maximum throughput: ``wrk -t2 -c8 -d<duration>`` with
   bench/wrk/post.lua (closed loop; p50/p99 as wrk measures them);
2. 100-row batch at maximum throughput: the same wrk settings;
3. single row at a fixed 200 requests/s: an open-loop Python generator
   (wrk2 is not packaged here) that schedules request i at t0 + i/rate on a
   pool of keep-alive connections and measures latency from the scheduled
   time, so a slow answer delays the measured latency of those queued
   behind it (no coordinated omission).

Every body sent is checked once before timing (HTTP 200, one answer per
row), and the two sides' probabilities for the batch are compared. The
servers, the load generator and the database share the machine's cores.

    .venv/bin/python bench/serving.py                    # full: 20 s per scenario
    .venv/bin/python bench/serving.py --quick            # smoke check, 5 s per scenario
    .venv/bin/python bench/serving.py --only ours --duration 30
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench import common

DB_OURS = "bench_serving"
MODEL_NAME = "sample-qc"
ENDPOINT = "sample-qc"
TARGET = "qc_pass"
# Another target of the generator: never an input (it would leak the outcome).
LEAKS = ("turnaround_hours",)
WRK = "/usr/bin/wrk"
LUA = common.BENCH_DIR / "wrk" / "post.lua"
SIDES = ("mlflow", "ours")


# --- the model (our virtualenv) ---------------------------------------------------------------

def lab_schema(frame) -> dict:
    """The schema ``apps.datasets.features`` reads, for the generated frame:
    identifier and timestamp roles for ``sample_id``/``submitted_at``, the
    type of every other column, and category counts for the string ones."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        column = {"name": name, "null_share": float(series.isna().mean())}
        if name == "sample_id":
            column.update(type="text", role="identifier")
        elif name == "submitted_at":
            column.update(type="datetime", role="timestamp")
        elif pd.api.types.is_bool_dtype(series):
            column.update(type="boolean")
        elif pd.api.types.is_integer_dtype(series):
            column.update(type="integer")
        elif pd.api.types.is_float_dtype(series):
            column.update(type="float")
        else:
            counts = series.dropna().astype(str).value_counts()
            column.update(type="categorical", stats={"counts": {str(k): int(v) for k, v in counts.items()}})
        if name == TARGET:
            column["role"] = "target"
        columns.append(column)
    return {"columns": columns}


def build_model(*, rows: int, seed: int, estimator: str, omp_threads: str, out_dir: Path) -> dict:
    """Fit the pipeline, save it with skops and write the request bodies.
    Returns what the sides need: paths, signature, example rows, and the
    pipeline's own in-process timing for one row and for a batch."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from apps.core import modelio
    from apps.datasets.features import build_preprocessor, default_feature_spec, feature_columns, input_signature
    from apps.datasets.generator import generate_submissions

    frame = generate_submissions(rows=rows, seed=seed)
    schema = lab_schema(frame)
    spec = default_feature_spec(schema=schema, target=TARGET)
    for name in LEAKS:
        spec["columns"][name] = {"kind": "drop"}
    features = feature_columns(spec=spec, schema=schema, target=TARGET)
    if estimator == "rf":
        classifier = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=seed, n_jobs=1)
    else:
        classifier = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    pipeline = Pipeline([("preprocess", build_preprocessor(spec=spec, schema=schema, target=TARGET)),
                         ("classifier", classifier)])
    pipeline.fit(frame[features], frame[TARGET])
    signature = input_signature(spec=spec, schema=schema, target=TARGET, task="classification")
    signature["classes"] = [int(c) for c in pipeline.classes_]

    # Request rows: held-out submissions (another seed), missing values as
    # JSON null, as the lab's software would send them.
    held_out = generate_submissions(rows=200, seed=seed + 1)[features]
    records = [{key: (None if _missing(value) else _plain(value)) for key, value in row.items()}
               for row in held_out.to_dict(orient="records")]
    single, batch = records[:1], records[:100]
    # The version's input example: 100 other held-out rows. An uploaded
    # version has no test split, so the deploy-time check of the compiled
    # (ONNX) model against scikit-learn runs on these.
    example = records[100:200]

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "pipeline.skops"
    model_path.write_bytes(modelio.dumps(pipeline))
    bodies = {
        "ours-single": {"instances": single},
        "ours-batch": {"instances": batch},
        "mlflow-single": {"dataframe_records": single},
        "mlflow-batch": {"dataframe_records": batch},
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = out_dir / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    (out_dir / "signature.json").write_text(json.dumps(signature))
    (out_dir / "input-example.json").write_text(json.dumps(example))
    (out_dir / "train-sample.json").write_text(frame[features].head(200).to_json(orient="records"))

    one, hundred = held_out.head(1), held_out.head(100)
    # Timed under the servers' OpenMP setting.
    limits = threadpool_limits(limits=None if omp_threads == "unset" else int(omp_threads), user_api="openmp")
    with limits:
        timings = {"predict_proba_1_row_ms": _best_ms(lambda: pipeline.predict_proba(one)),
                   "predict_proba_100_rows_ms": _best_ms(lambda: pipeline.predict_proba(hundred))}
    expected = pipeline.predict_proba(hundred)
    return {
        "model_path": str(model_path), "bodies": {k: str(v) for k, v in paths.items()},
        "signature": signature, "features": features,
        "estimator": type(classifier).__name__, "training_rows": rows,
        "train_accuracy": float(np.mean(pipeline.predict(frame[features]) == frame[TARGET])),
        "expected_batch_proba": expected.tolist(), **timings,
    }


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """numpy scalars to JSON-native values."""
    return value.item() if hasattr(value, "item") else value


def _best_ms(action, repeats: int = 50) -> float:
    """Median of ``repeats`` timed calls after a warm-up, in milliseconds."""
    import statistics

    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# --- MLflow (runs inside bench/.venvs/mlflow) ------------------------------------------------------

def save_mlflow_model(skops_path: Path, sample_path: Path, out_dir: Path) -> None:
    """Load our skops file and save it as an MLflow sklearn model."""
    import shutil

    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature

    data = skops_path.read_bytes()
    # The file was written by this benchmark a moment ago.
    trusted = skops.io.get_untrusted_types(data=data)
    pipeline = skops.io.loads(data, trusted=trusted)
    sample = pd.read_json(sample_path, orient="records", dtype=False)
    signature = infer_signature(sample, pipeline.predict_proba(sample))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    mlflow.sklearn.save_model(pipeline, str(out_dir), serialization_format="skops", skops_trusted_types=trusted,
                              signature=signature, input_example=sample.head(2),
                              pyfunc_predict_fn="predict_proba")


@dataclass
class Side:
    """One server under test: where to send which body, with which headers."""

    name: str
    label: str
    url: str
    bodies: dict[str, Path]
    headers: dict[str, str]
    server: common.Server
    details: dict

    def post(self, kind: str) -> requests.Response:
        return requests.post(self.url, data=self.bodies[kind].read_bytes(), timeout=30,
                             headers={"Content-Type": "application/json", **self.headers})

    def probabilities(self, response: requests.Response) -> list[list[float]]:
        """Class probabilities per row, in the pipeline's class order."""
        body = response.json()
        if self.name == "mlflow":
            return body["predictions"]
        # Ours: {"predictions": [...], "probabilities": [{"<class>": p, ...}, ...], ...}
        return [[row[str(c)] for c in self.details["classes"]] for row in body["probabilities"]]


def _thread_env(omp_threads: str) -> dict[str, str]:
    """The same OpenMP setting for both servers: with one request per thread,
    scikit-learn's OpenMP fan-out per prediction only oversubscribes the cores."""
    return {} if omp_threads == "unset" else {"OMP_NUM_THREADS": str(omp_threads)}


def start_mlflow(model: dict, *, workers: int, omp_threads: str, results_dir: Path) -> Side:
    python = common.ensure_venv("mlflow", common.ROOT / "requirements" / "bench.txt", check_import="mlflow")
    model_dir = results_dir / "mlflow-model"
    subprocess.run([str(python), __file__, "save-mlflow", "--skops", model["model_path"],
                    "--sample", str(Path(model["model_path"]).with_name("train-sample.json")),
                    "--out", str(model_dir)], cwd=common.ROOT, check=True, env=common.peer_env())
    port = common.free_port()
    server = common.Server(
        name="mlflow models serve",
        argv=[str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
              "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)],
        # It starts uvicorn by name: the virtualenv's bin must come first on PATH.
        env={**common.peer_env(), **_thread_env(omp_threads), "MLFLOW_LOGGING_LEVEL": "WARNING",
             "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        ready_url=f"http://127.0.0.1:{port}/ping",
        log_path=results_dir / "mlflow-serve.log", cwd=results_dir,
    ).start(timeout=300)
    bodies = {"single": Path(model["bodies"]["mlflow-single"]), "batch": Path(model["bodies"]["mlflow-batch"])}
    version = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return Side("mlflow", f"MLflow {version} `models serve -w {workers}`", f"http://127.0.0.1:{port}/invocations",
                bodies, {}, server, {"version": version, "workers": workers, "omp_threads": omp_threads,
                                     "classes": model["signature"]["classes"]})


# --- ours ----------------------------------------------------------------------------------------------

def start_ours(model: dict, *, workers: int, threads: int, omp_threads: str, results_dir: Path) -> Side:
    common.recreate_database(DB_OURS)
    env, api_key = common.prepare_ours(DB_OURS, results_dir / "ours-var")
    setup = subprocess.run([str(common.OUR_PYTHON), __file__, "setup-ours", "--model-dir",
                            str(Path(model["model_path"]).parent)],
                           cwd=common.ROOT, env=env, capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        raise RuntimeError(f"setting up our side failed:\n{setup.stderr[-4000:]}")
    details = json.loads(setup.stdout.strip().splitlines()[-1])
    port = common.free_port()
    gunicorn = common.ROOT / ".venv" / "bin" / "gunicorn"
    env = {**env, **_thread_env(omp_threads)}
    server = common.Server(
        name="ours (gunicorn)",
        argv=[str(gunicorn), "mlops_site.wsgi:application", "--workers", str(workers), "--worker-class", "gthread",
              "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--timeout", "120",
              "--graceful-timeout", "20", "--log-level", "warning"],
        env=env, ready_url=f"http://127.0.0.1:{port}/healthz", log_path=results_dir / "ours-server.log",
    ).start()
    bodies = {"single": Path(model["bodies"]["ours-single"]), "batch": Path(model["bodies"]["ours-batch"])}
    details.update(workers=workers, threads=threads, database="PostgreSQL", omp_threads=omp_threads,
                   classes=model["signature"]["classes"],
                   redis="yes" if "REDIS_URL" in env else "no")
    return Side("ours", f"gunicorn {workers} gthread workers x {threads} threads",
                f"http://127.0.0.1:{port}/api/v1/endpoints/{ENDPOINT}/predict/", bodies,
                {"Authorization": f"Api-Key {api_key}"}, server, details)


def setup_ours(model_dir: Path) -> dict:
    """Inside our virtualenv with the server's environment: register, approve
    and deploy the pipeline through the platform's services."""
    import django

    django.setup()
    from django.db import transaction

    from apps.core.services import user_ensure
    from apps.registry.choices import Stage
    from apps.registry.models import RegisteredModel
    from apps.registry.services import (
        model_version_upload,
        promotion_request_approve,
        promotion_request_create,
        registered_model_create,
    )

    signature = json.loads((model_dir / "signature.json").read_text())
    example = json.loads((model_dir / "input-example.json").read_text())
    with transaction.atomic():
        engineer, _ = user_ensure(username="bench", password="bench-Secret-123", roles=["Admin"],
                                  is_superuser=True)
        approver, _ = user_ensure(username="bench-approver", password="bench-Secret-123", roles=["Approver"])
    model = RegisteredModel.objects.filter(name=MODEL_NAME).first() or registered_model_create(
        actor=engineer, name=MODEL_NAME, task_type="classification",
        description="Serving benchmark: library-prep QC pass/fail.",
        # The file is uploaded, not trained from a dataset version in the
        # platform, so only the signature gate can apply.
        quality_gates={"require_valid_signature": True, "require_valid_dataset": False})
    version = model_version_upload(registered_model=model, actor=engineer,
                                   data=(model_dir / "pipeline.skops").read_bytes(), signature=signature,
                                   input_example=example, description="bench/serving.py")
    request = promotion_request_create(version=version, actor=engineer, target_stage=Stage.PRODUCTION,
                                       justification="Serving benchmark.")
    promotion_request_approve(promotion_request=request, actor=approver, comment="Benchmark model.")
    version.refresh_from_db()
    return {"model_version_id": version.id, **deploy_ours(version=version, actor=engineer)}


def deploy_ours(*, version, actor) -> dict:
    """A production endpoint serving ``version`` at 100 %, deployed through
    the serving app's services (immediate strategy). The rollout's ticks are
    run here, in order, instead of on a worker: the health check (model load,
    SHA-256, ONNX compile and verification, smoke predictions), then the
    switch to 100 %."""
    from apps.serving import services
    from apps.serving.choices import DeploymentStatus, Environment, Strategy
    from apps.serving.models import Deployment

    endpoint = services.endpoint_create(actor=actor, slug=ENDPOINT, name="Sample QC (benchmark)",
                                        environment=Environment.PRODUCTION)
    # A generous smoke-test budget: set-up may run while the machine is busy,
    # and this benchmark measures latency itself.
    deployment = services.deployment_start(endpoint=endpoint, model_version=version, strategy=Strategy.IMMEDIATE,
                                           config={"latency_budget_ms": 10_000}, actor=actor)
    deadline = time.monotonic() + 300
    while deployment.rollout_active and time.monotonic() < deadline:
        if services.rollout_tick(deployment_id=deployment.id, seq=deployment.rollout_seq) == "early":
            time.sleep(0.2)
        deployment = Deployment.objects.get(pk=deployment.id)
    if deployment.status != DeploymentStatus.HEALTHY or deployment.traffic_weight != 100:
        raise RuntimeError(f"deployment did not become healthy at 100 %: {deployment.status} "
                           f"{deployment.traffic_weight} {deployment.status_reason}")
    return {"deployment_id": deployment.id, "serving_path": deployment.serving_path,
            "serving_path_reason": deployment.serving_path_reason, "health": deployment.health}


# --- load generators ----------------------------------------------------------------------------------

def run_wrk(side: Side, kind: str, *, duration: float, connections: int, threads: int) -> dict:
    headers = [f"{name}: {value}" for name, value in side.headers.items()]
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s",
            "-s", str(LUA), side.url, "--", str(side.bodies[kind]), *headers]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((line for line in out.splitlines() if line.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "tool": f"wrk -t{threads} -c{connections} -d{max(1, round(duration))}s",
        "requests": raw["requests"], "errors": errors, "errors_by_kind": raw["errors"], "non_200": raw["non_200"],
        "requests_per_s": raw["requests"] / seconds,
        "p50_ms": raw["latency_us"]["p50"] / 1000, "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
    }


def run_paced(side: Side, kind: str, *, rate: float, duration: float, connections: int) -> dict:
    """Open loop: request i is due at t0 + i/rate; ``connections`` threads
    with a keep-alive connection each take the next due request, wait for
    its time and send it. Latency counts from the due time."""
    parts = urlsplit(side.url)
    body = side.bodies[kind].read_bytes()
    headers = {"Content-Type": "application/json", "Connection": "keep-alive", **side.headers}
    total = int(rate * duration)
    counter = itertools.count()
    counter_lock = threading.Lock()
    start = time.perf_counter() + 0.5
    deadline = start + 2 * duration + 10
    latencies: list[float] = []
    lateness: list[float] = []
    failures: list[str] = []
    record = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while True:
            with counter_lock:
                index = next(counter)
            # A server far slower than the rate would keep the run going for
            # total/throughput seconds; past the deadline the rest is counted
            # as not sent.
            if index >= total or time.perf_counter() > deadline:
                break
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                status, error = 0, f"{type(exc).__name__}: {exc}"
            else:
                error = "" if status == 200 else f"HTTP {status}"
            done = time.perf_counter()
            with record:
                latencies.append(done - due)
                lateness.append(max(0.0, sent - due))
                if error:
                    failures.append(error)
        conn.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    ms = [value * 1000 for value in latencies]
    return {
        "tool": f"paced open loop, {rate:g} req/s, {connections} connections, {duration:g} s",
        "requests": len(latencies), "not_sent": total - len(latencies),
        "errors": len(failures) + total - len(latencies), "first_errors": sorted(set(failures))[:3],
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": common.percentile(ms, 50), "p99_ms": common.percentile(ms, 99), "max_ms": max(ms),
        "sent_late_p99_ms": common.percentile([v * 1000 for v in lateness], 99),
    }


# --- measuring one side ---------------------------------------------------------------------------------

def check_side(side: Side) -> dict:
    """One request of each body, before any timing: both must answer 200
    with one prediction per row."""
    checks = {}
    for kind, rows in (("single", 1), ("batch", 100)):
        response = side.post(kind)
        if response.status_code != 200:
            raise RuntimeError(f"{side.name} answered {response.status_code} to the {kind} body: "
                               f"{response.text[:500]}")
        probabilities = side.probabilities(response)
        if len(probabilities) != rows:
            raise RuntimeError(f"{side.name} returned {len(probabilities)} answers for {rows} rows")
        checks[kind] = probabilities
    return checks


def prepare_side(side: Side, args: argparse.Namespace) -> dict:
    """Check the answers and warm both bodies up; the side's result skeleton."""
    _say(f"{side.name}: checking answers")
    answers = check_side(side)
    _say(f"{side.name}: warming up")
    run_wrk(side, "single", duration=args.warmup, connections=args.connections, threads=args.wrk_threads)
    run_wrk(side, "batch", duration=args.warmup, connections=args.connections, threads=args.wrk_threads)
    return {"label": side.label, "details": side.details, "batch_probabilities": answers["batch"], "rounds": {}}


def measure(side: Side, key: str, args: argparse.Namespace) -> dict:
    """One run of one scenario against one side."""
    if key == "single_paced":
        measured = run_paced(side, "single", rate=args.rate, duration=args.duration,
                             connections=args.paced_connections)
        measured["predictions_per_s"] = measured["requests_per_s"]
        _say(f"  {side.name}: p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms, "
             f"{measured['errors']} errors")
        return measured
    kind = "single" if key == "single_max" else "batch"
    measured = run_wrk(side, kind, duration=args.duration, connections=args.connections, threads=args.wrk_threads)
    measured["predictions_per_s"] = measured["requests_per_s"] * (1 if kind == "single" else args.batch)
    _say(f"  {side.name}: {measured['predictions_per_s']:,.0f} predictions/s, p50 {measured['p50_ms']:.1f} ms, "
         f"p99 {measured['p99_ms']:.1f} ms")
    return measured


def median_round(rounds: list[dict]) -> dict:
    """The round with the median throughput (its latencies come with it)."""
    ordered = sorted(rounds, key=lambda m: m["predictions_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": len(rounds),
            "predictions_per_s_all": [round(m["predictions_per_s"], 1) for m in rounds]}


# --- the report ------------------------------------------------------------------------------------------

SCENARIOS = (("single_max", "single row, max throughput"), ("batch_max", "100-row batch, max throughput"),
             ("single_paced", "single row at a fixed rate"))


ESTIMATORS = {"rf": "RandomForestClassifier", "hgb": "HistGradientBoostingClassifier"}


def render(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# Serving: our predict path vs `mlflow models serve`",
        "",
        f"Produced by `{results['command']}` on {results['date']}. {results['note']}",
        "",
        f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, {machine['os']}, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']}. Both servers, the load generator and "
        "PostgreSQL share these cores; each scenario ran against one side and then the other (idle) one, "
        f"{results['rounds']} round(s), order alternating, median-throughput round reported. Both servers run "
        f"{results['workers']} worker processes and OMP_NUM_THREADS={results['omp_threads']}.",
        "",
        "How to read it: MLflow answers through its pyfunc wrapper (pandas schema enforcement, then the "
        "pipeline's `predict_proba`). Ours validates against the version's signature and answers through the "
        "path chosen at deploy time: ONNX Runtime when the pipeline converts and matches scikit-learn's "
        "probabilities within 1e-5 on the verification rows, else scikit-learn (the pipeline's own "
        "`ColumnTransformer` over a one-row DataFrame); the path is named under each model. Every one of our "
        "requests is also written to the prediction log in PostgreSQL. In the fixed-rate scenario, a side that "
        "cannot sustain the rate shows queueing delay, not service time.",
        "",
    ]
    for run in results["runs"]:
        lines += _render_run(run, results)
    lines += ["## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def _render_run(run: dict, results: dict) -> list[str]:
    model = run["model"]
    sides = results["sides"]
    lines = [
        f"## {model['estimator']}",
        "",
        f"{model['estimator']} behind the platform's `ColumnTransformer` ({len(model['features'])} input columns), "
        f"fitted on {model['training_rows']:,} generated lab submissions; the same skops file on both sides. In "
        f"process, its `predict_proba` takes {model['predict_proba_1_row_ms']:.2f} ms for one row and "
        f"{model['predict_proba_100_rows_ms']:.2f} ms for 100 rows.",
        "",
    ]
    for name in sides:
        lines.append(f"- **{name}**: {run[name]['label']}" + _side_note(name, run[name]))
    lines.append("")
    rows = []
    for key, title in SCENARIOS:
        for name in sides:
            m = run[name][key]
            rows.append([title, name, m["requests_per_s"], m["predictions_per_s"], m["p50_ms"], m["p99_ms"],
                         m["errors"], m["tool"]])
    lines.append(common.markdown_table(
        ["scenario", "side", "requests/s", "predictions/s", "p50 ms", "p99 ms", "errors", "load"], rows))
    if set(SIDES) <= set(sides):
        lines += ["", "Ratios (ours ÷ MLflow for throughput, MLflow ÷ ours for latency: above 1 means ours is "
                  "better):", ""]
        ratio_rows = []
        for key, title in SCENARIOS:
            ours, peer = run["ours"][key], run["mlflow"][key]
            throughput = "—" if key == "single_paced" else _ratio(ours["predictions_per_s"], peer["predictions_per_s"])
            ratio_rows.append([title, throughput,
                               _ratio(peer["p50_ms"], ours["p50_ms"]), _ratio(peer["p99_ms"], ours["p99_ms"])])
        lines.append(common.markdown_table(["scenario", "throughput", "p50", "p99"], ratio_rows))
    if "ours" in sides:
        ours = run["ours"]
        paced = ours["single_paced"]
        goals = [
            ("more than 1000 single-row predictions/s with logging on",
             f"{ours['single_max']['predictions_per_s']:,.0f}/s", ours["single_max"]["predictions_per_s"] > 1000),
            (f"p99 under 20 ms at {results['rate']:g} requests/s", f"{paced['p99_ms']:.1f} ms",
             paced["p99_ms"] < 20 and paced["errors"] == 0),
        ]
        if "mlflow" in sides:
            ratio = ours["single_max"]["predictions_per_s"] / run["mlflow"]["single_max"]["predictions_per_s"]
            goals.append(("several times MLflow's single-row throughput", f"{ratio:.1f}x", ratio >= 3))
        lines += ["", "Goals:", "", common.markdown_table(
            ["goal", "measured", "met"], [[g, v, "yes" if ok else "no"] for g, v, ok in goals])]
    return [*lines, ""]


def _side_note(name: str, side: dict) -> str:
    details = side["details"]
    if name == "ours":
        return (f"; PostgreSQL, Redis: {details.get('redis')}, prediction logging on; the version is served "
                f"through {details.get('serving_path') or '?'}"
                + (f" ({details['serving_path_reason']})" if details.get("serving_path_reason") else "") + ".")
    return "; `--env-manager local`, skops format, `pyfunc_predict_fn=\"predict_proba\"`."


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}x" if denominator else "n/a"


# --- main ---------------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per scenario (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 5 s per scenario, 2 s warm-up")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure only our server")
    parser.add_argument("--only", choices=SIDES, help="measure only one side")
    parser.add_argument("--rows", type=int, default=5000, help="training rows (default 5000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--estimator", default="rf,hgb",
                        help="comma-separated: rf (RandomForestClassifier), hgb (HistGradientBoostingClassifier); "
                        "each gets its own section (default rf,hgb)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, each side (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker, ours (default 4)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rate", type=float, default=200.0, help="fixed request rate, req/s (default 200)")
    parser.add_argument("--paced-connections", type=int, default=16,
                        help="connections of the fixed-rate generator (default 16)")
    parser.add_argument("--batch", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--omp-threads", default="1",
                        help="OMP_NUM_THREADS for both servers (default 1; 'unset' leaves the environment's)")
    parser.add_argument("--reuse-model", action="store_true",
                        help="reuse the pipelines fitted by the last run with the same --rows/--seed")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each scenario per side, alternating; the median is reported (default 1)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per body (default 5)")
    parser.add_argument("--output", type=Path, help="markdown report (default docs/benchmarks/serving.md; "
                        "bench/results/serving-quick.md with --quick)")
    parser.add_argument("--note", default="The machine was shared with other work while this ran.",
                        help="a sentence about the conditions, printed in the report")
    args = parser.parse_args(argv)
    args.estimators = [e.strip() for e in args.estimator.split(",") if e.strip()]
    unknown = set(args.estimators) - set(ESTIMATORS)
    if unknown or not args.estimators:
        parser.error(f"--estimator takes {', '.join(ESTIMATORS)}")
    if args.quick:
        args.duration, args.warmup = min(args.duration, 5.0), 2.0
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sides = [args.only] if args.only else [s for s in SIDES if not (s == "mlflow" and args.skip_mlflow)]
    output = args.output or (common.RESULTS_DIR / "serving-quick.md" if args.quick
                             else common.ROOT / "docs" / "benchmarks" / "serving.md")
    results_dir = common.RESULTS_DIR / "serving"
    results_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "command": "bench/serving.py " + " ".join(argv) if argv else "bench/serving.py",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "note": args.note, "rate": args.rate,
        "omp_threads": args.omp_threads, "rounds": args.rounds, "workers": args.workers,
        "machine": common.machine_description(), "sides": sides, "notes": [], "runs": [],
    }
    for estimator in args.estimators:
        model = fitted_model(estimator, args, results_dir / f"model-{estimator}")
        run = {"model": {k: v for k, v in model.items() if k not in ("expected_batch_proba", "made_with")}}
        with common.cleanup_on_exit():
            measure_run(run, model, sides=sides, args=args, results_dir=results_dir, notes=results["notes"])
        check_answers(run, model, sides, results["notes"])
        results["runs"].append(run)

    common.write_report(render(results), output, results, results_dir / "serving-results.json")
    return 0


def fitted_model(estimator: str, args: argparse.Namespace, model_dir: Path) -> dict:
    meta = model_dir / "model.json"
    wanted = {"rows": args.rows, "seed": args.seed, "estimator": estimator, "omp_threads": args.omp_threads,
              "layout": 2}
    if args.reuse_model and meta.exists() and json.loads(meta.read_text()).get("made_with") == wanted:
        _say(f"reusing the fitted {ESTIMATORS[estimator]} of the last run")
        return json.loads(meta.read_text())
    _say(f"fitting a {ESTIMATORS[estimator]} pipeline on {args.rows:,} rows")
    model = build_model(rows=args.rows, seed=args.seed, estimator=estimator, omp_threads=args.omp_threads,
                        out_dir=model_dir)
    meta.write_text(json.dumps({**model, "made_with": wanted}))
    return model


def measure_run(run: dict, model: dict, *, sides: list[str], args: argparse.Namespace, results_dir: Path,
                notes: list[str]) -> None:
    """Start the sides for one model and run every scenario against them.
    Both servers stay up and the scenarios alternate between them (the order
    flipping every round), so load from elsewhere on a shared machine hits
    both alike; an idle server costs next to nothing."""
    running: dict[str, Side] = {}
    for name in sides:
        _say(f"starting {name} with the {model['estimator']}")
        started = time.perf_counter()
        if name == "mlflow":
            running[name] = start_mlflow(model, workers=args.workers, omp_threads=args.omp_threads,
                                         results_dir=results_dir)
        else:
            running[name] = start_ours(model, workers=args.workers, threads=args.threads,
                                       omp_threads=args.omp_threads, results_dir=results_dir)
        notes.append(f"{model['estimator']}: setup of {name} (incl. model load) took "
                     f"{time.perf_counter() - started:.0f} s.")
    for name, side in running.items():
        run[name] = prepare_side(side, args)
    for key, title in SCENARIOS:
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        for round_index in range(args.rounds):
            _say(f"{title}, round {round_index + 1} of {args.rounds}")
            for name in (sides if round_index % 2 == 0 else list(reversed(sides))):
                runs[name].append(measure(running[name], key, args))
        for name in sides:
            run[name][key] = median_round(runs[name])


def check_answers(run: dict, model: dict, sides: list[str], notes: list[str]) -> None:
    """Each side's probabilities against the in-process pipeline's, and the
    failed requests, as notes."""
    expected = model["expected_batch_proba"]
    for name in sides:
        difference = max(abs(a - b) for row, want in zip(run[name]["batch_probabilities"], expected, strict=True)
                         for a, b in zip(row, want, strict=True))
        run[name]["max_probability_difference"] = difference
        notes.append(f"{model['estimator']}, {name}: largest difference from the in-process pipeline's class "
                     f"probabilities over the 100-row batch: {difference:.2e}"
                     + (" — ABOVE 1e-5, the answers differ" if difference > 1e-5 else "") + ".")
        for key, _ in SCENARIOS:
            measured = run[name][key]
            if measured["errors"]:
                parts = [f"HTTP {status}: {n}" for status, n in (measured.get("non_200") or {}).items()]
                parts += measured.get("first_errors") or []
                if measured.get("not_sent"):
                    parts.append(f"{measured['not_sent']} not sent before the deadline")
                notes.append(f"{model['estimator']}, {name}, {key}: {measured['errors']} failed requests "
                             f"({'; '.join(parts) or 'connection errors'}).")


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def _helper_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["save-mlflow", "setup-ours"])
    parser.add_argument("--skops", type=Path)
    parser.add_argument("--sample", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model-dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "save-mlflow":
        save_mlflow_model(args.skops, args.sample, args.out)
    else:
        print(json.dumps(setup_ours(args.model_dir)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("save-mlflow", "setup-ours"):
        sys.exit(_helper_main(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
