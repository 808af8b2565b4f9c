"""Fixtures shared by every test: users with roles, API clients, a real Celery
worker process and a real browser.

Tests that need PostgreSQL, Chromium or a worker skip with a reason where
those are missing, except under ``MLOPS_CI=1`` (set by .ci/run), where a
missing piece fails the run instead."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent


def in_ci() -> bool:
    return os.environ.get("MLOPS_CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    if in_ci():
        pytest.fail(f"{reason} (MLOPS_CI is set, so this cannot be skipped)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _postgres_marker(request):
    if request.node.get_closest_marker("postgres") is None:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture(autouse=True)
def _prediction_log_buffer_is_per_test():
    """Rows a test's predictions left in the in-process log buffer never reach
    the next test (whose database no longer has their deployment)."""
    yield
    logbuffer = sys.modules.get("apps.serving.logbuffer")
    if logbuffer is not None:
        logbuffer.buffer.clear()


# --- Users and clients ----------------------------------------------------------

@pytest.fixture
def make_user(db):
    from apps.core.services import user_ensure

    counter = {"n": 0}

    def _make(*roles: str, username: str | None = None, password: str = "pw-Secret-123", **extra):
        counter["n"] += 1
        name = username or f"user{counter['n']}_{'_'.join(r.replace(' ', '').lower() for r in roles) or 'none'}"
        from django.db import transaction

        with transaction.atomic():
            user, _ = user_ensure(username=name, password=password, roles=list(roles), **extra)
        return user

    return _make


@pytest.fixture
def admin_user(make_user):
    return make_user("Admin", username="admin_test", is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(db):
    """An API client authenticated as the given user."""
    from rest_framework.test import APIClient

    def _client(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return _client


# --- A real Celery worker ---------------------------------------------------------

class LiveWorker:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, *, hard: bool = False) -> None:
        """Stop the worker: SIGTERM (a warm shutdown) or, with ``hard``, SIGKILL."""
        stop_worker(self, hard=hard)

    def wait_for(self, predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
        """Poll ``predicate`` until it returns a truthy value; fail with the worker log."""
        from django.db import close_old_connections

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            close_old_connections()
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited while waiting for {what}:\n{self.log()[-4000:]}")
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout}s waiting for {what}; worker log:\n{self.log()[-4000:]}")


def start_worker(name: str, queues: str = "default,training,monitoring,rollouts", concurrency: int = 2,
                 extra_env: dict | None = None) -> LiveWorker:
    from django.db import connection

    run_dir = Path(os.environ["MLOPS_TEST_RUN_DIR"])
    log_path = run_dir / f"worker-{name}.log"
    env = os.environ.copy()
    env.update({
        "DJANGO_SETTINGS_MODULE": "mlops_site.settings.test",
        "MLOPS_WORKER_TEST_DB": connection.settings_dict["NAME"],
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--loglevel", "INFO",
         "--queues", queues, "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker = LiveWorker(process, log_path)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(worker)
            pytest.fail(f"the Celery worker did not start:\n{worker.log()[-4000:]}")
        time.sleep(0.2)
    return worker


def stop_worker(worker: LiveWorker, *, hard: bool = False) -> None:
    if worker.process.poll() is None:
        try:
            os.killpg(worker.process.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_worker(django_db_setup, django_db_blocker):
    """One real worker process for the session, on the configured broker
    (Redis in CI, the filesystem transport otherwise), sharing the test
    database. Tests that use it need ``django_db(transaction=True)``."""
    with django_db_blocker.unblock():
        worker = start_worker("session")
    yield worker
    stop_worker(worker)


@pytest.fixture
def worker_factory(django_db_setup, django_db_blocker):
    """Start extra workers (e.g. two on the training queue); stopped after the test."""
    started = []

    def _start(name: str, **kwargs) -> LiveWorker:
        with django_db_blocker.unblock():
            worker = start_worker(name, **kwargs)
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        stop_worker(worker)


# --- A real browser ---------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        skip_or_fail(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


@pytest.fixture
def browser_login(page):
    def _login(username: str, password: str = "pw-Secret-123"):
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        return page

    return _login
