"""In-process cost of the predict path: the Django WSGI handler called
directly (no sockets, no web server), so the figures are the platform's own
per-request CPU cost — middleware, API-key authentication, routing,
signature validation, the model, the JSON answer and the log hand-off.

Setup (in a scratch directory, embedded defaults: SQLite, file cache):
migrate, fit a pipeline on ``--train-rows`` generated lab submissions
(``apps.datasets.features`` preprocessing + ``--estimator``), register it as
a Production version, and deploy it twice through the serving services with
their real health check: endpoint ``bench-onnx`` serves it through the ONNX
file verified at deploy time, endpoint ``bench-sklearn`` through the
scikit-learn pipeline itself (its serving path switched after the check:
same model, same code, other path). Prediction logging is on: the flusher
thread writes while the benchmark runs, and the script checks at the end
that every request was logged.

For each path and batch size it sends ``--warmup`` requests, then
``--requests`` timed ones one after another, and reports the mean, p50 and
p99 time per request and the single-thread throughput (1 / mean). A
breakdown for one row shows where the time goes: signature validation, the
model, the whole prediction service, the whole WSGI request.

    .venv/bin/python bench/predict_path.py                       # 10,000 requests per case
    .venv/bin/python bench/predict_path.py --requests 2000 --estimator logistic
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _setup_django(scratch: Path) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "mlops_site.settings.local", "DEBUG": "false",
                       "MLOPS_VAR_DIR": str(scratch), "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"})
    for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(key, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _prepare(args) -> dict:
    from django.db import transaction

    from apps.core.services import api_key_create, user_ensure
    from apps.registry.choices import Stage
    from apps.serving import services
    from apps.serving.models import Deployment
    from apps.serving.runtime import bump_routing_stamp
    from apps.serving.tests.factories import fit_pipeline, make_model_version

    with transaction.atomic():
        user, _ = user_ensure(username="bench", password="bench-Secret-123", roles=["Admin"], is_superuser=True)
        key = api_key_create(user=user, name="bench").raw_key
    model, signature, records, _frame = fit_pipeline(estimator=args.estimator, rows=args.train_rows, seed=5)
    # The version has no training lineage here, so its input example is what
    # the deploy-time check verifies the ONNX export on: make it the test rows.
    version = make_model_version(owner=user, stage=Stage.PRODUCTION, model=model, signature=signature,
                                 example=records[:args.verify_rows])
    deployments = {}
    for slug in ("bench-onnx", "bench-sklearn"):
        endpoint = services.endpoint_create(actor=user, slug=slug, environment="production",
                                            config={"max_batch_size": max(args.batch)})
        deployment = services.deployment_start(endpoint=endpoint, model_version=version, actor=user)
        services.rollout_tick(deployment_id=deployment.pk, seq=deployment.rollout_seq)
        deployment.refresh_from_db()
        assert deployment.status == "healthy", deployment.status_reason
        deployments[slug] = deployment
    onnx = deployments["bench-onnx"]
    if onnx.serving_path != "onnx":
        sys.exit(f"the model did not compile to ONNX, so there is nothing to compare: {onnx.serving_path_reason}")
    Deployment.objects.filter(pk=deployments["bench-sklearn"].pk).update(serving_path="sklearn",
                                                                       compiled_artifact="", compiled_sha256="")
    bump_routing_stamp()
    return {"key": key, "records": records, "model": model, "reason": onnx.serving_path_reason,
            "signature": signature}


def _environ(path: str, body: bytes, key: str) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Api-Key {key}", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def _call(app, path: str, body: bytes, key: str) -> tuple[str, bytes]:
    status_holder = []

    def start_response(status, headers, exc_info=None):
        status_holder.append(status)

    chunks = app(_environ(path, body, key), start_response)
    content = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status_holder[0], content


def _timed(function, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _machine_description(describe) -> dict:
    """bench/common's description; this bench runs no PostgreSQL, so that may be absent."""
    try:
        return describe()
    except Exception:  # psycopg cannot reach a server: describe the rest
        import platform

        from common import cpu_model, memory_gib

        return {"nproc": os.cpu_count(), "cpu": cpu_model(), "memory_gib": memory_gib(),
                "os": platform.platform(), "python": platform.python_version()}


def _summary(seconds: list[float]) -> dict:
    from common import percentile

    us = [s * 1e6 for s in seconds]
    mean = statistics.fmean(us)
    return {"mean_us": mean, "p50_us": percentile(us, 50), "p99_us": percentile(us, 99),
            "per_second": 1e6 / mean, "n": len(us)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--batch", type=lambda t: [int(x) for x in t.split(",")], default=[1, 100],
                        help="batch sizes, comma-separated (default 1,100)")
    parser.add_argument("--estimator", default="hist_gradient_boosting",
                        choices=["hist_gradient_boosting", "logistic", "forest"])
    parser.add_argument("--train-rows", type=int, default=5000)
    parser.add_argument("--verify-rows", type=int, default=200,
                        help="held-out rows the ONNX export is verified on at deploy time")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "predict_path.md")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-predict-path-"))
    started = time.monotonic()
    _setup_django(scratch)
    prepared = _prepare(args)
    from common import machine_description as _machine
    from common import markdown_table
    from django.core.wsgi import get_wsgi_application

    from apps.serving import logbuffer
    from apps.serving.models import PredictionLog
    from apps.serving.runtime import runtime
    from apps.serving.services.predictions import predict

    app = get_wsgi_application()
    key = prepared["key"]
    records = prepared["records"]
    rows, results = [], []
    sent = 0
    for path_name in ("onnx", "sklearn"):
        url = f"/api/v1/endpoints/bench-{path_name}/predict/"
        for batch in args.batch:
            instances = (records * (batch // len(records) + 1))[:batch]
            body = json.dumps({"instances": instances}).encode()
            status, content = _call(app, url, body, key)
            answer = json.loads(content)
            assert status.startswith("200"), content[:500]
            assert answer["serving_path"] == path_name and len(answer["predictions"]) == batch
            n = args.requests if path_name == "onnx" or batch == 1 else max(200, args.requests // 10)
            _timed(lambda url=url, body=body: _call(app, url, body, key), args.warmup)
            summary = _summary(_timed(lambda url=url, body=body: _call(app, url, body, key), n))
            sent += 1 + args.warmup + n
            results.append({"path": path_name, "batch": batch, **summary})
            rows.append([path_name, batch, n, summary["mean_us"], summary["p50_us"], summary["p99_us"],
                         summary["per_second"], summary["per_second"] * batch])

    # Where the time of one single-row request goes (ONNX path).
    route = runtime.route("bench-onnx")
    variant = next(iter(route.variants.values()))
    one = records[:1]
    columns = variant.signature.columns(one)
    n = min(args.requests, 5000)
    breakdown = {
        "signature validation": _summary(_timed(lambda: variant.signature.columns(one), n)),
        "model (ONNX Runtime, feeds + run + answer)": _summary(_timed(lambda: variant.predictor.predict(columns, 1),
                                                                      n)),
        "prediction service (validate, route, predict, log)": _summary(_timed(
            lambda: predict(route=route, payload={"instances": one}), n)),
    }
    sent += n
    full = next(r for r in results if r["path"] == "onnx" and r["batch"] == 1)
    breakdown["whole WSGI request (middleware, auth, JSON)"] = {k: full[k] for k in ("mean_us", "p50_us",
                                                                                      "p99_us", "per_second", "n")}
    healthz = {**_environ("/healthz", b"", key), "REQUEST_METHOD": "GET"}
    breakdown["for comparison: GET /healthz through the same middleware"] = _summary(_timed(
        lambda: b"".join(app(dict(healthz, **{"wsgi.input": io.BytesIO(b"")}), lambda *a: None)), n))
    frame = __import__("pandas").DataFrame(one)
    names = list(prepared["model"].feature_names_in_)
    breakdown["for comparison: pipeline.predict_proba on a 1-row DataFrame"] = _summary(_timed(
        lambda: prepared["model"].predict_proba(frame[names]), min(n, 500)))

    deadline = time.monotonic() + 10
    while logbuffer.buffer.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    logbuffer.flush()
    logged = PredictionLog.objects.count()

    machine = _machine_description(_machine)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Predict path: in-process cost per request",
        "",
        f"Produced by `bench/predict_path.py {' '.join(argv or sys.argv[1:])}`".rstrip() + f" on {when}. "
        "The machine was shared with other work while this ran; the lead re-runs it on a quiet machine.",
        "",
        f"Machine: {machine.get('nproc')} cores ({machine.get('cpu')}), {machine.get('memory_gib')} GiB, "
        f"Python {machine.get('python')}. "
        "One thread calls the Django WSGI handler directly (no sockets, no web server); SQLite and the "
        "file cache (embedded defaults); prediction logging on (the flusher thread writes meanwhile).",
        "",
        f"Model: {args.estimator} behind the platform's ColumnTransformer "
        f"({len(prepared['signature']['inputs'])} input columns), fitted on {args.train_rows:,} generated lab "
        f"submissions. Deploy-time verification: {prepared['reason']}.",
        "",
        markdown_table(["serving path", "rows per request", "requests", "mean µs", "p50 µs", "p99 µs",
                        "requests/s (1 thread)", "predictions/s (1 thread)"], rows),
        "",
        "Where one single-row request's time goes (ONNX path):",
        "",
        markdown_table(["part", "mean µs", "p50 µs", "p99 µs"],
                       [[name, s["mean_us"], s["p50_us"], s["p99_us"]] for name, s in breakdown.items()]),
        "",
        f"Prediction log rows written during the run: {logged:,} of {sent:,} requests "
        f"({'all' if logged >= sent else 'NOT all'} logged).",
        f"Setup and run took {time.monotonic() - started:.0f} s.",
    ]
    report = "\n".join(text) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    args.output.with_suffix(".json").write_text(json.dumps(
        {"when": when, "machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
         "results": results, "breakdown": breakdown, "logged": logged, "sent": sent}, indent=2, default=str))
    return 0 if logged >= sent else 1


if __name__ == "__main__":
    sys.exit(main())
