"""Page settle times of the main browser pages, in Chromium via Playwright.

Starts the platform as ``make run`` does (gunicorn with the local settings,
a Celery worker) on 127.0.0.1 with the demo lab (``seed_demo``, whose
training jobs, registry and endpoint the worker fills in), plus one run with
a long training curve (20,000 steps of two metrics). Then it opens home,
experiment, run, compare, dataset version, model and endpoint pages, each
``--loads`` times after one warm-up load (browser cache warm, as a user's
would be), and reports the median settle time: from navigation until the
network is idle *and* every chart container visible in the viewport has
been drawn by plotly (``data-rendered``), or has failed (``data-error``).

The database and the var directory are kept between runs, so the same data
can be measured with two checkouts of the code (``--root``): seed once with
``--seed``, then measure the old and the new code against it.

    .venv/bin/python bench/pages.py --seed --root /tmp/tracseq-before --label before
    .venv/bin/python bench/pages.py --label after

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    OUR_PYTHON,
    RESULTS_DIR,
    ROOT,
    Server,
    cleanup_on_exit,
    free_port,
    machine_description,
    markdown_table,
    postgres_url,
    recreate_database,
    redis_available,
)

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-Secret-123"
CHARTS = "[data-plotly], [data-plotly-src]"

LONG_RUN = """
import math
from apps.experiments.models import Experiment, Run
from apps.experiments.services import run_create, run_finish, run_log_batch
experiment = Experiment.objects.get(name="sample-qc")
if not Run.objects.filter(experiment=experiment, name="long training curve").exists():
    user = experiment.owner
    run = run_create(user=user, experiment=experiment, name="long training curve")
    run_log_batch(user=user, run_id=run.pk, params=[{"key": "estimator", "value": "mlp"},
                                                    {"key": "learning_rate", "value": "0.001"}])
    for start in range(0, 20000, 500):
        metrics = []
        for step in range(start, start + 500):
            metrics.append({"key": "iteration_train_loss", "value": 1 / (1 + step / 500) + 0.02 * math.sin(step),
                            "step": step})
            metrics.append({"key": "iteration_val_loss", "value": 1.1 / (1 + step / 600) + 0.03 * math.cos(step),
                            "step": step})
        run_log_batch(user=user, run_id=run.pk, metrics=metrics)
    run_log_batch(user=user, run_id=run.pk, metrics=[{"key": "test_roc_auc", "value": 0.83}])
    run_finish(user=user, run=run, status="finished")
"""

READY = """
from apps.serving.models import Endpoint
from apps.experiments.models import Run
print("READY" if Endpoint.objects.filter(deployments__isnull=False).exists()
      and Run.objects.filter(experiment__name="sample-qc", status="finished").count() >= 5 else "WAIT")
"""

URLS = """
import json
from apps.datasets.models import DatasetVersion
from apps.experiments.models import Experiment, Run
from apps.registry.models import RegisteredModel
from apps.serving.models import Endpoint
experiment = Experiment.objects.get(name="sample-qc")
runs = Run.objects.filter(experiment=experiment, status="finished", parent__isnull=True).order_by("pk")
cv = runs.filter(name__contains="CV").first()
long = runs.get(name="long training curve")
compare = [r.pk for r in runs if r.pk != long.pk][:3] + [long.pk]
version = DatasetVersion.objects.filter(status="valid").order_by("pk").first()
print(json.dumps({
    "home": "/",
    "experiment": f"/experiments/{experiment.pk}/",
    "run": f"/experiments/runs/{(cv or runs.first()).pk}/",
    "run (20k-step curve)": f"/experiments/runs/{long.pk}/",
    "compare": "/experiments/compare/?runs=" + ",".join(map(str, compare)),
    "dataset version": f"/datasets/versions/{version.pk}/",
    "model": f"/registry/models/{RegisteredModel.objects.order_by('pk').first().name}/",
    "endpoint": f"/serving/{Endpoint.objects.filter(deployments__isnull=False).order_by('pk').first().slug}/",
}))
"""


def platform_env(root: Path, dbname: str, var_dir: Path) -> dict[str, str]:
    """``make run``'s settings (mlops_site.settings.local) on the bench database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "MLOPS_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "mlops_site.settings.local",
        "DATABASE_URL": postgres_url(dbname),
        "MLOPS_VAR_DIR": str(var_dir),
        "ARTIFACT_ROOT": str(var_dir / "artifacts"),
        "DEMO_ADMIN_PASSWORD": PASSWORD,
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    for key in ("REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(key, None)
    if redis_available():
        env.update({"REDIS_URL": "redis://127.0.0.1:6379/4", "CACHE_KEY_PREFIX": "benchpages",
                    "CELERY_BROKER_KEY_PREFIX": "benchpages:"})
    return env


def manage(root: Path, env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(OUR_PYTHON), "manage.py", *args, *(["--no-imports"] if args[0] == "shell" else [])],
                         cwd=root, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def start_web(root: Path, env: dict[str, str], port: int, log: Path) -> Server:
    return Server(
        name="web", cwd=root, env=env, log_path=log, ready_url=f"http://127.0.0.1:{port}/healthz",
        argv=[str(ROOT / ".venv" / "bin" / "gunicorn"), "mlops_site.wsgi", "-c", "gunicorn.conf.py",
              "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
    ).start()


def start_worker(root: Path, env: dict[str, str], port: int, log: Path) -> Server:
    # A worker has no URL of its own; the web server's answers that it is up.
    return Server(
        name="worker", cwd=root, env=env, log_path=log, ready_url=f"http://127.0.0.1:{port}/healthz",
        argv=[str(ROOT / ".venv" / "bin" / "celery"), "-A", "celery_app", "worker", "--loglevel", "WARNING",
              "--queues", "default,training,monitoring,rollouts", "--concurrency", "2",
              "--hostname", f"benchpages-{port}@%h"],
    ).start()


def seed_database(root: Path, env: dict[str, str]) -> None:
    recreate_database(env["DATABASE_URL"].rsplit("/", 1)[1])
    manage(root, env, "migrate", "--noinput", "-v", "0")
    manage(root, env, "ensure_demo_admin")
    manage(root, env, "seed_demo")


def seed_wait(root: Path, env: dict[str, str], port: int, logs: Path, timeout: float = 1800) -> None:
    """Run a worker until the demo's training, registry and endpoint are done."""
    worker = start_worker(root, env, port, logs / "worker.log")
    deadline = time.monotonic() + timeout
    while manage(root, env, "shell", "-c", READY).split()[-1] != "READY":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo did not finish within {timeout}s:\n{worker.log_tail()}")
        time.sleep(10)
    worker.stop()


def settle_time(page, url: str, timeout: float = 60.0) -> float:
    """Seconds from navigation until network idle and every chart in view drawn."""
    started = time.perf_counter()
    page.goto(url, wait_until="networkidle", timeout=timeout * 1000)
    charts = page.locator(CHARTS)
    deadline = started + timeout
    while True:
        pending = page.evaluate(
            """(selector) => Array.from(document.querySelectorAll(selector)).filter((el) => {
                 const box = el.getBoundingClientRect();
                 const inView = box.bottom > 0 && box.top < window.innerHeight && box.width > 0;
                 return inView && !el.dataset.rendered && !el.dataset.error
                        && !el.querySelector('.main-svg');
               }).length""", CHARTS)
        if not pending:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{url}: {pending} of {charts.count()} charts not drawn after {timeout}s")
        time.sleep(0.01)
    page.wait_for_load_state("networkidle")
    return time.perf_counter() - started


def measure(base_url: str, urls: dict[str, str], loads: int) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for name, url in urls.items():
            settle_time(page, url)  # warm-up: caches, server-side imports
            times = [settle_time(page, url) for _ in range(loads)]
            results[name] = {"url": url, "median_s": statistics.median(times), "times_s": times,
                             "charts": page.locator(CHARTS).count()}
            print(f"{name:24s} {statistics.median(times):6.2f} s  ({', '.join(f'{t:.2f}' for t in times)})",
                  flush=True)
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code serves the pages")
    parser.add_argument("--db", default="mlops_charts_pages", help="PostgreSQL database (kept between runs)")
    parser.add_argument("--var", type=Path, default=Path("/tmp/mlops-bench-pages"), help="var dir (kept)")
    parser.add_argument("--seed", action="store_true", help="recreate the database and load the demo first")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--label", default="run", help="name of this measurement in the results file")
    args = parser.parse_args()

    root = args.root.resolve()
    args.var.mkdir(parents=True, exist_ok=True)
    (args.var / "staticfiles").mkdir(exist_ok=True)
    env = platform_env(root, args.db, args.var)
    logs = args.var / "logs"
    with cleanup_on_exit():
        port = free_port()
        if args.seed:
            seed_database(root, env)
        web = start_web(root, env, port, logs / "web.log")
        if args.seed:
            seed_wait(root, env, port, logs)
        manage(root, env, "shell", "-c", LONG_RUN)  # once: it checks for the run first
        urls = json.loads(manage(root, env, "shell", "-c", URLS).strip().splitlines()[-1])
        results = measure(f"http://127.0.0.1:{port}", urls, args.loads)
        web.stop()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "pages.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[args.label] = {"root": str(root), "machine": machine_description(), "pages": results}
    path.write_text(json.dumps(stored, indent=2))
    labels = list(stored)
    rows = [[name, *[stored[label]["pages"].get(name, {}).get("median_s", float("nan")) for label in labels]]
            for name in results]
    print(markdown_table(["page", *[f"{label} (median s)" for label in labels]], rows))


if __name__ == "__main__":
    main()
