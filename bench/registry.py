"""Model-registry benchmark: our registry API against MLflow 3.17's model
registry, side by side on this machine and the same PostgreSQL.

Measured for both servers alike, one keep-alive HTTP client per thread:

1. Registration: a version from a finished run. Ours
   ``POST /api/v1/models/{name}/versions/ {"run_id"}`` re-reads the run's
   skops file, checks its SHA-256 and that every type in it is trusted, and
   copies signature, input example and metrics into the version. MLflow
   ``POST /api/2.0/mlflow/model-versions/create`` records the source URI
   (``runs:/<id>/model``) and validates it against the run. So ours does more
   work per call; the table says so.
2. Concurrent registration: C clients registering into one model at once;
   throughput, and whether the version numbers come out as exactly 1..N
   (no duplicates, no gaps).
3. Alias move (ours ``PUT .../aliases/champion/``, MLflow
   ``POST registered-models/alias``) and alias lookup (GET).
4. Listing the newest 100 versions of a model with N versions (ours
   ``GET .../versions/?page_size=100``, MLflow ``GET model-versions/search``
   filtered by name, ``max_results=100``, ordered by version descending).

Ours only, as MLflow has no approval step: a promotion request that
evaluates every quality gate — threshold, signature (the model is loaded and
predicts its input example), dataset, and the regression gate that loads the
candidate and the Production model and scores both on the candidate's test
rows — then its approval by a second user (four eyes).

Setup: ours runs with production settings under gunicorn (gthread workers,
4 threads each) on a fresh database; two finished runs with fitted skops
pipelines are written through the ORM (``setup-ours``). MLflow runs as
``mlflow server --workers N`` in its own virtualenv (requirements/bench.txt);
its run is created through its API. Both servers are stopped however the
script ends.

    .venv/bin/python bench/registry.py                 # full sizes
    .venv/bin/python bench/registry.py --quick         # smoke check
    .venv/bin/python bench/registry.py --versions 500 --concurrency 8 --skip-mlflow
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench import common

DB_OURS = "bench_registry_ours"
DB_MLFLOW = "bench_registry_mlflow"


class Side(common.JsonClient):
    """One registry server as seen by the benchmark."""

    def create_model(self, name: str) -> None: ...
    def register(self, name: str) -> int: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def get_alias(self, name: str, alias: str) -> int: ...
    def list_versions(self, name: str) -> list[int]: ...


class OurSide(Side):
    name = "ours"

    def __init__(self, base_url: str, api_key: str, run_ids: list[int], qa_key: str):
        super().__init__(base_url + "/api/v1", {"Authorization": f"Api-Key {api_key}"})
        self.run_ids = run_ids
        self.qa = Side(base_url + "/api/v1", {"Authorization": f"Api-Key {qa_key}"})
        self.qa.name = "ours (approver)"
        self._turn = 0

    def _next_run(self) -> int:
        self._turn += 1
        return self.run_ids[self._turn % len(self.run_ids)]

    def create_model(self, name: str, gates: dict | None = None) -> None:
        self.call("POST", "/models/", {"name": name, "task_type": "classification", "quality_gates": gates or {}})

    def register(self, name: str) -> int:
        return self.call("POST", f"/models/{name}/versions/", {"run_id": self._next_run()})["version"]

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.call("PUT", f"/models/{name}/aliases/{alias}/", {"version": version})

    def get_alias(self, name: str, alias: str) -> int:
        return self.call("GET", f"/models/{name}/aliases/{alias}/")["version"]

    def list_versions(self, name: str) -> list[int]:
        body = self.call("GET", f"/models/{name}/versions/", params={"page_size": 100})
        return [v["version"] for v in body["results"]]

    def request(self, name: str, version: int) -> dict:
        return self.call("POST", f"/models/{name}/versions/{version}/promotion-requests/",
                         {"stage": "production", "justification": "benchmark"})

    def approve(self, request_id: int, *, override: bool) -> dict:
        body = {"comment": "benchmark"}
        if override:
            body["override_reason"] = "benchmark"
        return self.qa.call("POST", f"/promotion-requests/{request_id}/approve/", body)


class MlflowSide(Side):
    name = "MLflow"

    def __init__(self, base_url: str, python: Path):
        super().__init__(base_url + "/api/2.0/mlflow", {})
        self.python = python
        self.run_id = ""

    def prepare(self) -> None:
        experiment = self.call("POST", "/experiments/create", {"name": "registry-bench"})["experiment_id"]
        run = self.call("POST", "/runs/create", {"experiment_id": experiment, "run_name": "model",
                                                 "start_time": int(time.time() * 1000)})
        self.run_id = run["run"]["info"]["run_id"]

    def create_model(self, name: str) -> None:
        self.call("POST", "/registered-models/create", {"name": name})

    def register(self, name: str) -> int:
        body = {"name": name, "source": f"runs:/{self.run_id}/model", "run_id": self.run_id}
        return int(self.call("POST", "/model-versions/create", body)["model_version"]["version"])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.call("POST", "/registered-models/alias", {"name": name, "alias": alias, "version": str(version)})

    def get_alias(self, name: str, alias: str) -> int:
        return int(self.call("GET", "/registered-models/alias", params={"name": name, "alias": alias})
                   ["model_version"]["version"])

    def list_versions(self, name: str) -> list[int]:
        body = self.call("GET", "/model-versions/search", params={
            "filter": f"name='{name}'", "max_results": 100, "order_by": "version_number DESC"})
        return [int(v["version"]) for v in body.get("model_versions", [])]


# --- servers ------------------------------------------------------------------------------------

def start_mlflow(workers: int, results_dir: Path) -> MlflowSide:
    base_url, python, _ = common.start_mlflow_server(DB_MLFLOW, workers=workers, results_dir=results_dir)
    side = MlflowSide(base_url, python)
    side.prepare()
    return side


def start_ours(workers: int, results_dir: Path, rows: int) -> OurSide:
    common.recreate_database(DB_OURS)
    env, api_key = common.prepare_ours(DB_OURS, results_dir / "ours-var")
    out = subprocess.run([str(common.OUR_PYTHON), __file__, "setup-ours", "--rows", str(rows)], cwd=common.ROOT,
                         env=env, check=True, capture_output=True, text=True)
    setup = json.loads(out.stdout.strip().splitlines()[-1])
    port = common.free_port()
    common.start_ours(env, workers=workers, port=port, log_path=results_dir / "ours-server.log")
    return OurSide(f"http://127.0.0.1:{port}", api_key, setup["run_ids"], setup["qa_key"])


def setup_ours(rows: int) -> None:
    """Inside our environment: an approver with an API key, a valid dataset
    version and two finished runs with fitted skops pipelines."""
    import django

    django.setup()
    from django.db import transaction

    from apps.core.services import api_key_create, user_ensure
    from apps.registry.tests import factories

    with transaction.atomic():
        owner, _ = user_ensure(username="bench_owner", password="bench-Secret-123", roles=["Data Scientist"])
        qa, _ = user_ensure(username="bench_qa", password="bench-Secret-123", roles=["Approver"])
    qa_key = api_key_create(user=qa, name="bench").raw_key
    frame = factories.sample_frame(rows=rows, seed=5)
    version = factories.make_dataset_version(owner, frame=frame)
    run_ids = [factories.make_run(owner, dataset_version=version, frame=frame, C=c, seed=s).pk
               for c, s in ((1.0, 1), (0.3, 2))]
    print(json.dumps({"run_ids": run_ids, "qa_key": qa_key}))


# --- measurements ------------------------------------------------------------------------------

def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def measure_sequential(side: Side, *, versions: int, repeats: int) -> dict:
    name = "bench-seq"
    side.create_model(name)
    register = [timed(lambda: side.register(name)) for _ in range(versions)]
    numbers = [n for _, n in register]
    alias_set = [timed(lambda v=v: side.set_alias(name, "champion", v))[0] for v in numbers]
    alias_get = [timed(lambda: side.get_alias(name, "champion")) for _ in range(repeats)]
    listing = [timed(lambda: side.list_versions(name)) for _ in range(repeats)]
    expected_top = sorted(numbers, reverse=True)[:100]
    return {
        "register": common.latency_summary([t for t, _ in register]),
        "numbers_ok": numbers == list(range(1, versions + 1)),
        "alias_set": common.latency_summary(alias_set),
        "alias_get": common.latency_summary([t for t, _ in alias_get]),
        "alias_ok": all(v == numbers[-1] for _, v in alias_get),
        "list": common.latency_summary([t for t, _ in listing]),
        "list_ok": all(v == expected_top for _, v in listing),
    }


def measure_concurrent(side: Side, *, clients: int, per_client: int) -> dict:
    name = "bench-concurrent"
    side.create_model(name)
    barrier = threading.Barrier(clients)

    def client(_):
        barrier.wait()
        return [side.register(name) for _ in range(per_client)]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        numbers = [n for chunk in pool.map(client, range(clients)) for n in chunk]
    elapsed = time.perf_counter() - started
    total = clients * per_client
    return {"clients": clients, "total": total, "per_s": total / elapsed,
            "distinct": len(set(numbers)), "numbers_ok": sorted(numbers) == list(range(1, total + 1))}


def measure_promotions(side: OurSide, *, rounds: int) -> dict:
    name = "bench-gates"
    side.create_model(name, gates={"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.5}],
                                   "max_regression": {"metric": "test_roc_auc", "margin": 0.2}})
    first = side.register(name)
    req = side.request(name, first)
    side.approve(req["id"], override=not req["gates_passed"])
    request_times, approve_times, gate_failures = [], [], 0
    for _ in range(rounds):
        version = side.register(name)
        seconds, req = timed(lambda version=version: side.request(name, version))
        request_times.append(seconds)
        regression = next(g for g in req["gate_results"] if g["gate"] == "max_regression")
        if regression.get("skipped"):
            raise RuntimeError("the regression gate was skipped: no Production version to compare with")
        gate_failures += not req["gates_passed"]
        approve_times.append(timed(lambda req=req: side.approve(req["id"], override=not req["gates_passed"]))[0])
    return {"request": common.latency_summary(request_times), "approve": common.latency_summary(approve_times),
            "rounds": rounds, "gate_failures": gate_failures}


# --- report ---------------------------------------------------------------------------------------

def versions_of(mlflow_python: Path | None) -> dict[str, str]:
    found = common.our_versions()
    if mlflow_python is not None:
        out = subprocess.run([str(mlflow_python), "-c", "import mlflow; print(mlflow.__version__)"],
                             capture_output=True, text=True, check=True)
        found["mlflow"] = out.stdout.strip()
    return found


def render(results: dict) -> str:
    machine, names = results["machine"], results["sides"]
    seq = results["sequential"]
    lines = [
        "# Model registry: ours vs MLflow 3.17",
        "",
        "Produced by `bench/registry.py` (see its docstring for the method). "
        + ("**Smoke-check sizes (`--quick`): not for comparison.**" if results["quick"] else ""),
        "",
        f"- Command: `{results['command']}`",
        f"- Date: {results['date']}",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB RAM, {machine['os']}, "
        f"Python {machine['python']}. {results['note']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- Servers: {results['workers']} worker processes each (MLflow uvicorn, ours gunicorn gthread x 4 "
        "threads, production settings); one PostgreSQL on 127.0.0.1 for both.",
        "",
        f"## Sequential operations ({results['versions_n']} versions in one model, one client)",
        "",
    ]
    rows = []
    labels = [("register", "register a version from a run"), ("alias_set", "move an alias"),
              ("alias_get", "resolve an alias"), ("list", "list the newest 100 versions")]
    for key, label in labels:
        row = [label]
        for name in names:
            m = seq.get(name)
            row += [m[key]["median_ms"], m[key]["p95_ms"]] if m else ["-", "-"]
        if len(names) == 2 and all(seq.get(n) for n in names):
            row.append(f"{seq['MLflow'][key]['median_ms'] / seq['ours'][key]['median_ms']:.2f}x")
        rows.append(row)
    headers = ["operation"]
    for name in names:
        headers += [f"{name} median ms", f"{name} p95 ms"]
    if len(names) == 2:
        headers.append("MLflow / ours (median)")
    lines += [common.markdown_table(headers, rows), ""]
    checks = [f"{n}: numbering {'1..N' if seq[n]['numbers_ok'] else 'WRONG'}, alias "
              f"{'correct' if seq[n]['alias_ok'] else 'WRONG'}, listing {'correct' if seq[n]['list_ok'] else 'WRONG'}"
              for n in names if seq.get(n)]
    lines += ["Answers checked: " + "; ".join(checks) + ".", "",
              "Ours re-reads and verifies the model file on registration (SHA-256, trusted skops types) and copies "
              "signature, input example and metrics; MLflow stores the source URI only.", "",
              "## Concurrent registration into one model", ""]
    rows = []
    for name in names:
        m = results["concurrent"].get(name)
        if m:
            rows.append([name, m["clients"], m["total"], m["per_s"], m["distinct"],
                         "yes" if m["numbers_ok"] else "NO"])
    lines += [common.markdown_table(["server", "clients", "registrations", "per second", "distinct numbers",
                                     "exactly 1..N"], rows), ""]
    promo = results.get("promotions")
    if promo:
        lines += ["## Promotion with quality gates and approval (ours only)", "",
                  f"{promo['rounds']} rounds on a {results['rows']}-row dataset version: request (all gates, "
                  "including the regression gate that loads two models and scores both on the test rows) and "
                  "approval by a second user. MLflow has no equivalent.", "",
                  common.markdown_table(["step", "median ms", "p95 ms"], [
                      ["request + gate evaluation", promo["request"]["median_ms"], promo["request"]["p95_ms"]],
                      ["approval (locks, archive, alias, audit)", promo["approve"]["median_ms"],
                       promo["approve"]["p95_ms"]]]), ""]
        if promo["gate_failures"]:
            lines.append(f"{promo['gate_failures']} request(s) failed a gate and were approved with an Admin "
                         "override.")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=200, help="versions registered sequentially (default 200)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent registering clients (default 4)")
    parser.add_argument("--per-client", type=int, default=25, help="registrations per concurrent client (25)")
    parser.add_argument("--repeats", type=int, default=50, help="timed alias lookups and listings (default 50)")
    parser.add_argument("--promotions", type=int, default=10, help="gated promotions, ours only (default 10)")
    parser.add_argument("--rows", type=int, default=2000, help="rows of our dataset version (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, each side (default 2)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure only our server")
    parser.add_argument("--output", type=Path, help="markdown report (default docs/benchmarks/registry.md; "
                        "bench/results/registry-quick.md with --quick)")
    parser.add_argument("--note", default="The machine was shared with other work while this ran.",
                        help="a sentence about the conditions, printed in the report")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.quick:
        args.versions, args.per_client, args.repeats, args.promotions, args.rows = 30, 5, 10, 3, 500
    output = args.output or (common.RESULTS_DIR / "registry-quick.md" if args.quick
                             else common.ROOT / "docs" / "benchmarks" / "registry.md")
    results_dir = common.RESULTS_DIR / "registry"
    results_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "command": "bench/registry.py " + " ".join(argv) if argv else "bench/registry.py",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick, "workers": args.workers,
        "note": args.note, "rows": args.rows, "versions_n": args.versions,
        "machine": common.machine_description(), "sides": [], "sequential": {}, "concurrent": {},
    }
    with common.cleanup_on_exit():
        sides: list[Side] = []
        mlflow_python = None
        if not args.skip_mlflow:
            _say("starting MLflow server")
            mlflow_side = start_mlflow(args.workers, results_dir)
            mlflow_python = mlflow_side.python
            sides.append(mlflow_side)
        _say("starting our server")
        ours = start_ours(args.workers, results_dir, args.rows)
        sides.append(ours)
        results["sides"] = [side.name for side in sides]
        results["versions"] = versions_of(mlflow_python)
        for side in sides:
            _say(f"sequential: {side.name}")
            results["sequential"][side.name] = measure_sequential(side, versions=args.versions,
                                                                  repeats=args.repeats)
            _say(f"  register median {results['sequential'][side.name]['register']['median_ms']:.1f} ms")
            _say(f"concurrent: {side.name}")
            results["concurrent"][side.name] = measure_concurrent(side, clients=args.concurrency,
                                                                  per_client=args.per_client)
            _say(f"  {results['concurrent'][side.name]['per_s']:.1f} registrations/s, numbering ok: "
                 f"{results['concurrent'][side.name]['numbers_ok']}")
        _say("promotions with gates: ours")
        results["promotions"] = measure_promotions(ours, rounds=args.promotions)
    common.write_report(render(results), output, results, results_dir / "registry-results.json")
    return 0


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "setup-ours":
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--rows", type=int, default=2000)
        setup_ours(parser.parse_args(sys.argv[1:]).rows)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
