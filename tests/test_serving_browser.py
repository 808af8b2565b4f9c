"""In a real browser: deploy a canary from the endpoint page and watch the
traffic split move while lab traffic flows (a real worker advances it)."""

import json
import threading
import urllib.request
import uuid

import pytest
from django.db import transaction
from django.test import override_settings

from apps.core.services import api_key_create
from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.tests.factories import make_endpoint, make_model_version, run_rollout

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class LabTraffic(threading.Thread):
    """Single-row predictions against the live server until stopped."""

    def __init__(self, url: str, key: str, instance: dict):
        super().__init__(daemon=True)
        self.url, self.key, self.instance = url, key, instance
        self.stopped = threading.Event()
        self.answers: list[int] = []

    def run(self):
        i = 0
        while not self.stopped.is_set():
            body = json.dumps({"instances": [self.instance], "unit_id": f"S-{i}"}).encode()
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Authorization": f"Api-Key {self.key}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.answers.append(json.loads(response.read())["version"])
            except OSError:
                pass
            i += 1
            self.stopped.wait(0.05)


def test_deploy_a_canary_from_the_page_and_watch_the_split_move(page, browser_login, live_server, make_user,
                                                                 worker_factory):
    queue = f"rollouts-{uuid.uuid4().hex[:8]}"
    engineer = make_user("ML Engineer", username="engineer_b")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    with transaction.atomic():
        key = api_key_create(user=engineer, name="lims").raw_key
    with override_settings(SERVING_ROLLOUT_QUEUE=queue):
        assert run_rollout(services.deployment_start(endpoint=endpoint, model_version=v1,
                                                     actor=engineer)).status == "healthy"
        worker_factory("rollouts-browser", queues=queue, concurrency=1, extra_env={"SERVING_ROLLOUT_QUEUE": queue})
        traffic = LabTraffic(f"{live_server.url}/api/v1/endpoints/qc-staging/predict/", key, v1.input_example[0])
        traffic.start()
        try:
            browser_login("engineer_b")
            page.goto("/serving/qc-staging/")
            split = page.locator("#split-table tbody")
            assert "sample-qc v1" in split.inner_text() and "100 %" in split.inner_text()
            page.locator("#traffic-chart").scroll_into_view_if_needed()  # charts draw when in view
            page.wait_for_selector("#traffic-chart[data-rendered='1']")

            page.select_option("#id_model_version", label="sample-qc v2 (Staging)")
            page.select_option("#id_strategy", "canary")
            page.fill("#id_steps", "50, 100")
            page.fill("#id_step_seconds", "4")
            page.fill("#id_min_requests", "5")
            page.click("#deploy-button")
            page.wait_for_load_state("networkidle")
            assert "Deployment" in page.locator(".messages").inner_text()

            # The table under the chart refreshes every 2 s: first the canary's half …
            v2_row = page.locator("#split-table tbody tr", has_text="sample-qc v2")
            v2_row.filter(has_text="50 %").wait_for(timeout=120_000)
            # … then, its steps passed on live traffic, all of it.
            v2_row.filter(has_text="100 %").wait_for(timeout=120_000)
            page.locator("#split-table tbody tr", has_text="sample-qc v1").wait_for(state="detached",
                                                                                     timeout=30_000)
        finally:
            traffic.stopped.set()
            traffic.join(timeout=15)
    assert {1, 2} <= set(traffic.answers)
    page.reload()
    assert "Promoted" in page.locator("#timeline").inner_text()
    assert page.errors == []
