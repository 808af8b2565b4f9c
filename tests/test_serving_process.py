"""The predict path in real gunicorn processes: prediction logs survive a
graceful stop completely and a SIGKILL up to the last second, and a traffic
change made in another process is served within a second."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, transaction

from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.models import PredictionLog
from apps.serving.tests.factories import make_endpoint, make_model_version, run_rollout

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, workers: int = 1, threads: int = 2):
        self.port = _free_port()
        run_dir = Path(os.environ["MLOPS_TEST_RUN_DIR"])
        self.log_path = run_dir / f"gunicorn-{self.port}.log"
        env = os.environ.copy()
        env.update({"DJANGO_SETTINGS_MODULE": "mlops_site.settings.test",
                    "MLOPS_WORKER_TEST_DB": connection.settings_dict["NAME"], "PYTHONUNBUFFERED": "1"})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mlops_site.wsgi", "-c", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", str(threads),
             "--graceful-timeout", "20", "--timeout", "180"],
            cwd=ROOT, env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        # Importing the platform (scikit-learn, skops, plotly) takes a while on a busy machine.
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop(signal.SIGKILL)
                    pytest.fail(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def predict(self, slug: str, body: dict, key: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/v1/endpoints/{slug}/predict/", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def lab(make_user):
    from apps.core.services import api_key_create

    engineer = make_user("ML Engineer", username="engineer_p")
    with transaction.atomic():
        key = api_key_create(user=engineer, name="process test").raw_key
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    first = services.deployment_start(endpoint=endpoint, model_version=v1, actor=engineer)
    assert run_rollout(first).status == "healthy"
    return {"engineer": engineer, "key": key, "endpoint": endpoint, "v1": v1}


@pytest.fixture
def server():
    started = []

    def _start(**kwargs) -> Gunicorn:
        instance = Gunicorn(**kwargs)
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        instance.stop(signal.SIGKILL)


def _drive(web: Gunicorn, lab: dict, seconds: float) -> list[tuple[float, str]]:
    """Send single-row predictions for ``seconds``; (answered at, request id) of each."""
    answered = []
    body = {"instances": lab["v1"].input_example[:1]}
    until = time.monotonic() + seconds
    i = 0
    while time.monotonic() < until:
        body["unit_id"] = f"S-{i}"
        answer = web.predict("qc-staging", body, lab["key"])
        answered.append((time.monotonic(), answer["request_id"]))
        i += 1
    return answered


def _logged(request_ids) -> set[str]:
    return set(PredictionLog.objects.filter(request_id__in=list(request_ids)).values_list("request_id", flat=True))


def test_sigkill_loses_at_most_the_last_second_of_logs(lab, server):
    web = server()
    answered = _drive(web, lab, seconds=3.0)
    killed_at = time.monotonic()
    web.stop(signal.SIGKILL)
    logged = _logged(rid for _, rid in answered)
    older = [rid for at, rid in answered if at < killed_at - 1.0]
    assert len(answered) > 20 and older
    missing_older = [rid for rid in older if rid not in logged]
    assert not missing_older, f"{len(missing_older)} of {len(older)} answers older than 1 s were lost"
    lost = len(answered) - len(logged)
    assert lost <= len(answered) - len(older)


def test_sigterm_loses_nothing(lab, server):
    web = server()
    answered = _drive(web, lab, seconds=2.0)
    web.stop(signal.SIGTERM)
    assert web.process.returncode is not None
    logged = _logged(rid for _, rid in answered)
    assert len(logged) == len(answered) > 10


def test_a_traffic_change_in_another_process_is_served_within_a_second(lab, server):
    web = server(workers=2)
    engineer = lab["engineer"]
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    body = {"instances": lab["v1"].input_example[:1]}

    def versions_served() -> set[int]:
        return {web.predict("qc-staging", {**body, "unit_id": f"S-{i}"}, lab["key"])["version"] for i in range(40)}

    assert versions_served() == {1}
    canary = services.deployment_start(endpoint=lab["endpoint"], model_version=v2, strategy="canary",
                                       config={"steps": [50, 100], "step_seconds": 600}, actor=engineer)
    from apps.serving.tests.factories import tick_once

    tick_once(canary)  # health check, then 50 % (committed: the stamp moves now)
    changed_at = time.monotonic()
    elapsed = None
    while time.monotonic() - changed_at < 3:
        if versions_served() == {1, 2}:
            elapsed = time.monotonic() - changed_at
            break
    assert elapsed is not None and elapsed < 1.0, f"served after {elapsed} s"
