"""Helpers shared by the bench/ scripts: the machine description, a peer
tool's own virtualenv, PostgreSQL databases, server processes that are always
cleaned up (even on Ctrl-C or SIGTERM), our platform under gunicorn with an
API key, a JSON HTTP client for the servers under test, latency statistics
and markdown tables.

Only the standard library and ``requests`` at import time, so that a bench
script can also run helper code inside a peer tool's virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
VENVS_DIR = BENCH_DIR / ".venvs"
OUR_PYTHON = ROOT / ".venv" / "bin" / "python"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


# --- the machine ----------------------------------------------------------------

def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def postgres_version() -> str:
    import psycopg  # our venv only

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def machine_description() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres_version(),
    }


def our_versions() -> dict[str, str]:
    """The versions a report states for our side: Django, gunicorn,
    PostgreSQL and the git commit measured."""
    import django  # our venv only
    import gunicorn

    found = {"django": django.get_version(), "gunicorn": gunicorn.__version__, "postgresql": postgres_version()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    found["ours (git commit)"] = commit.stdout.strip() or "unknown"
    return found


# --- virtualenvs and databases ---------------------------------------------------------

def ensure_venv(name: str, requirements: Path, *, check_import: str) -> Path:
    """A virtualenv bench/.venvs/<name> with ``requirements`` installed (with
    uv when the platform's venv has it, else pip). Returns its python."""
    venv = VENVS_DIR / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    wanted = requirements.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    uv = ROOT / ".venv" / "bin" / "uv"
    if uv.exists():
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)],
                       check=True)
    else:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    subprocess.run([str(python), "-c", f"import {check_import}"], check=True)
    stamp.write_text(wanted)
    return python


def postgres_url(dbname: str, driver: str = "postgres") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def recreate_database(dbname: str) -> None:
    """Drop (forcibly) and create an empty PostgreSQL database."""
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def vacuum_analyze(dbname: str) -> None:
    """Fresh statistics after a bulk load, as autovacuum would give a real
    server after a while; applied to both sides alike."""
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- processes ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_available(host: str = "127.0.0.1", port: int = 6379) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


@dataclass
class Server:
    """A server process in its own process group, logging to a file."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    cwd: Path = ROOT
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self, timeout: float = 120.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(list(self.argv), cwd=self.cwd, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        _running.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.ready_url, timeout=2).status_code < 500:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.ready_url} within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if self in _running:
            _running.remove(self)


_running: list[Server] = []


def stop_all_servers() -> None:
    for server in list(_running):
        server.stop()


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def cleanup_on_exit() -> Iterator[None]:
    """Stop every server this script started, however the script ends
    (normal exit, exception, Ctrl-C, SIGTERM, SIGHUP)."""
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all_servers()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- our platform -------------------------------------------------------------------------

def our_env(dbname: str, var_dir: Path) -> dict[str, str]:
    """Production settings on a bench database (no TLS redirect: plain HTTP
    on the loopback)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "MLOPS_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "mlops_site.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": postgres_url(dbname),
        "MLOPS_VAR_DIR": str(var_dir),
        "ARTIFACT_ROOT": str(var_dir / "artifacts"),
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    if redis_available():
        # A database and key prefixes of its own, so a bench never touches
        # the cache or queues of a test run sharing this Redis.
        env.update({"REDIS_URL": "redis://127.0.0.1:6379/3", "CACHE_KEY_PREFIX": "bench",
                    "CELERY_BROKER_KEY_PREFIX": "bench:"})
    return env


def prepare_ours(dbname: str, var_dir: Path) -> tuple[dict[str, str], str]:
    """Migrate a fresh database and create a superuser with an API key.
    Returns the server environment and the raw key."""
    (var_dir / "staticfiles").mkdir(parents=True, exist_ok=True)  # STATIC_ROOT; the API serves no static files
    env = our_env(dbname, var_dir)
    subprocess.run([str(OUR_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    script = (
        "from django.db import transaction\n"
        "from apps.core.services import api_key_create, user_ensure\n"
        "with transaction.atomic():\n"
        "    user, _ = user_ensure(username='bench', password='bench-Secret-123', roles=['Admin'],"
        " is_superuser=True)\n"
        "print(api_key_create(user=user, name='bench').raw_key)\n"
    )
    out = subprocess.run([str(OUR_PYTHON), "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return env, out.stdout.strip().splitlines()[-1]


def start_ours(env: dict[str, str], *, workers: int, port: int, log_path: Path, threads: int = 4,
               timeout: float = 600.0) -> Server:
    """gunicorn as the Procfile and the Docker image run it: ``workers``
    gthread workers with ``threads`` threads each."""
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    return Server(
        name="ours (gunicorn)",
        argv=[str(gunicorn), "mlops_site.wsgi:application", "--workers", str(workers), "--worker-class", "gthread",
              "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--timeout", "300",
              "--graceful-timeout", "20", "--log-level", "warning"],
        env=env, ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_path,
    ).start(timeout=timeout)


def peer_env() -> dict[str, str]:
    """This process's environment without our platform's settings, for a
    peer tool's processes (so that they cannot pick up our database)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "MLOPS_", "DATABASE_URL", "REDIS_URL"))}


def start_mlflow_server(dbname: str, *, workers: int, results_dir: Path) -> tuple[str, Path, str]:
    """An MLflow tracking server (with its model registry) on a fresh
    PostgreSQL database ``dbname``, cleaned up by ``cleanup_on_exit()``.
    Returns its base URL, the python of its virtualenv and its backend URI."""
    python = ensure_venv("mlflow", ROOT / "requirements" / "bench.txt", check_import="mlflow")
    recreate_database(dbname)
    port = free_port()
    backend_uri = postgres_url(dbname, "postgresql+psycopg2")
    Server(
        name="MLflow server",
        argv=[str(python.parent / "mlflow"), "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1",
              "--port", str(port), "--workers", str(workers),
              "--artifacts-destination", str(results_dir / "mlflow-artifacts"),
              # uvicorn kills a worker that does not answer its health check
              # within 5 s; importing MLflow takes longer than that on a busy
              # 2-core machine, which ends in a restart loop. Idle keep-alive
              # connections are kept for a minute so that the bench's pauses
              # (populating) do not leave the clients with closed sockets.
              "--uvicorn-opts", "--timeout-worker-healthcheck 300 --timeout-keep-alive 60"],
        env={**peer_env(), "MLFLOW_LOGGING_LEVEL": "WARNING"}, ready_url=f"http://127.0.0.1:{port}/health",
        log_path=results_dir / "mlflow-server.log", cwd=results_dir,
    ).start(timeout=600)
    return f"http://127.0.0.1:{port}", python, backend_uri


# --- talking to a server -------------------------------------------------------------------

class JsonClient:
    """A JSON API as a benchmark client sees it: requests under ``base_url``
    with ``headers``, one keep-alive connection per client thread (as a real
    client has), and an error that names the server (``name``) when a call
    fails."""

    name = ""

    def __init__(self, base_url: str, headers: dict[str, str]):
        self.base_url = base_url
        self.headers = {"Content-Type": "application/json", **headers}
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.headers)
        return session

    def fresh_connection(self) -> None:
        """Drop this thread's keep-alive connection, which the server may
        have closed during a long pause."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def call(self, method: str, path: str, body: dict | bytes | None = None, params: dict | None = None) -> dict:
        """The answer's JSON ({} for an empty one); a 4xx or 5xx raises RuntimeError."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        response = self.session.request(method, self.base_url + path, params=params, data=data, timeout=300)
        if not response.ok:
            raise RuntimeError(f"{self.name}: {method} {path} -> {response.status_code} {response.text[:500]}")
        return response.json() if response.content else {}

    def post(self, path: str, body: dict | bytes) -> dict:
        return self.call("POST", path, body)


# --- numbers and tables --------------------------------------------------------------------

def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the same rule as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, min and mean of latencies, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "p95_ms": percentile(ms, 95), "min_ms": min(ms),
            "mean_ms": statistics.fmean(ms), "n": len(ms)}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(report: str, output: Path, results: dict, results_json: Path) -> None:
    """Write a benchmark's markdown report and its raw results, and print the report."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    results_json.write_text(json.dumps(results, indent=2, default=str))
    print(report)
    print(f"written to {output}")
