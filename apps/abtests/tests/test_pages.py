"""The A/B test pages: the list with its new-test form and planner, the
test page with its per-arm table, banners, power panel, history and
buttons (who sees which), the actions with their confirmation, and the
endpoint page's banner and 409 link while a test holds the split."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.abtests import services
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.core.permissions import make_private
from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving.models import PredictionLog
from apps.serving.runtime import runtime
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _serving_process_state():
    runtime.reset()
    logbuffer.buffer.clear()
    previous = logbuffer.buffer.use_thread
    logbuffer.buffer.use_thread = False
    yield
    logbuffer.buffer.use_thread = previous
    logbuffer.buffer.clear()
    runtime.reset()


@pytest.fixture
def engineer(make_user):
    return make_user("ML Engineer", "Approver", username="engineer_p")


@pytest.fixture
def versions(engineer):
    return (make_model_version(owner=engineer, stage=Stage.PRODUCTION),
            make_model_version(owner=engineer, stage=Stage.STAGING, seed=12))


@pytest.fixture
def endpoint(engineer, versions):
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    return endpoint


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _create(endpoint, versions, actor, **extra) -> ABTest:
    return services.ab_test_create(endpoint=endpoint, name="new QC model", actor=actor,
                                   arms=[{"model_version": versions[0], "weight": 50},
                                         {"model_version": versions[1], "weight": 50}],
                                   guardrail_metrics=["error_rate"], **extra)


def _form(endpoint, versions, **extra) -> dict:
    return {"endpoint": endpoint.slug, "name": "kit B", "hypothesis": "v2 is more accurate",
            "arm0_version": versions[0].pk, "arm0_weight": "50", "arm1_version": versions[1].pk,
            "arm1_weight": "50", "primary_metric": "error_rate", "guardrail_metrics": ["latency_ms"],
            "minimum_detectable_effect": "0.1", "alpha": "0.05", "power": "0.8", "engine": "frequentist",
            "correction": "holm"} | extra


def test_the_list_shows_visible_tests_and_the_nav_entry(engineer, endpoint, versions):
    _create(endpoint, versions, engineer)
    response = _client(engineer).get("/ab-tests/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "new QC model" in body and 'id="new-test-form"' in body and "not started" in body
    assert re.search(r'<a href="/ab-tests/"[^>]*>A/B tests</a>', body)


def test_someone_elses_private_endpoint_hides_its_tests(make_user, engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer)
    make_private(endpoint)
    outsider = _client(make_user("ML Engineer", username="outsider_p"))
    assert outsider.get(f"/ab-tests/{test.pk}/").status_code == 404
    assert outsider.get(f"/ab-tests/{test.pk}/charts/lift.json").status_code == 404
    assert outsider.post(f"/ab-tests/{test.pk}/start/", {"confirmed": "1"}).status_code == 404
    assert "new QC model" not in outsider.get("/ab-tests/").content.decode()
    ABTest.objects.get(pk=test.pk, status="draft")


def test_creating_through_the_form_makes_a_draft_and_says_so(engineer, endpoint, versions):
    client = _client(engineer)
    response = client.post("/ab-tests/new/", _form(endpoint, versions), follow=True)
    test = ABTest.objects.get(name="kit B")
    assert response.redirect_chain[-1][0] == f"/ab-tests/{test.pk}/"
    assert test.status == "draft" and test.primary_metric == "error_rate" and test.engine == "frequentist"
    assert test.kind == "champion_challenger" and [a.weight for a in test.arms.all()] == [50, 50]
    assert "created as a draft on qc" in response.content.decode()


def test_a_refused_form_says_why_and_creates_nothing(engineer, endpoint, versions):
    response = _client(engineer).post("/ab-tests/new/", _form(endpoint, versions, arm1_version=versions[0].pk))
    assert response.status_code == 400
    assert "different model version" in response.content.decode()
    assert not ABTest.objects.exists()


def test_a_viewer_sees_the_page_without_buttons_or_form(make_user, engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer)
    viewer = _client(make_user("Viewer", username="viewer_p"))
    body = viewer.get(f"/ab-tests/{test.pk}/").content.decode()
    assert 'id="arms-table"' in body and 'id="test-actions"' not in body and "start-button" not in body
    assert 'id="new-test-form"' not in viewer.get("/ab-tests/").content.decode()
    assert viewer.post(f"/ab-tests/{test.pk}/start/", {"confirmed": "1"}, follow=True).status_code == 200
    assert ABTest.objects.get(pk=test.pk).status == "draft"


def test_start_asks_first_then_runs_and_says_so_in_words(engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer)
    client = _client(engineer)
    page = client.get(f"/ab-tests/{test.pk}/").content.decode()
    assert 'id="start-button"' in page and 'id="approve-button"' not in page
    confirm = client.post(f"/ab-tests/{test.pk}/start/")
    assert confirm.status_code == 200 and 'id="start-confirm-form"' in confirm.content.decode()
    assert ABTest.objects.get(pk=test.pk).status == "draft"
    response = client.post(f"/ab-tests/{test.pk}/start/", {"confirmed": "1"}, follow=True)
    assert "started: qc&#x27;s traffic is split control 50" in response.content.decode()
    assert ABTest.objects.get(pk=test.pk).status == "running"
    assert 'id="stop-button"' in response.content.decode()


def test_the_creator_gets_no_approve_button_another_approver_does(make_user, engineer, versions):
    endpoint = make_endpoint(owner=engineer, slug="qc-prod", environment="production")
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    test = _create(endpoint, versions, engineer)
    services.ab_test_start(ab_test=test, actor=engineer)
    assert ABTest.objects.get(pk=test.pk).status == "pending_approval"
    creator_page = _client(engineer).get(f"/ab-tests/{test.pk}/").content.decode()
    assert 'id="approve-button"' not in creator_page and 'id="awaiting-approval"' in creator_page
    response = _client(engineer).post(f"/ab-tests/{test.pk}/approve/", {"confirmed": "1"}, follow=True)
    assert "was not approved: Four eyes" in response.content.decode()
    approver = _client(make_user("Approver", username="approver_p"))
    assert 'id="approve-button"' in approver.get(f"/ab-tests/{test.pk}/").content.decode()
    response = approver.post(f"/ab-tests/{test.pk}/approve/", {"confirmed": "1"}, follow=True)
    assert "approved and started" in response.content.decode()
    assert ABTest.objects.get(pk=test.pk).status == "running"


def _stats(test, metric, arms):
    for arm, (n, total, squares) in zip(test.arms.order_by("index"), arms, strict=True):
        ABTestArmStatistic.objects.create(arm=arm, metric=metric, n=n, sum=total, sum_squares=squares)


def test_the_page_shows_the_arms_srm_banner_and_power(engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer, primary_metric="accuracy", minimum_detectable_effect=0.05)
    services.ab_test_start(ab_test=test, actor=engineer)
    _stats(test, "accuracy", [(5000, 4000, 4000), (3000, 2550, 2550)])
    _stats(test, "error_rate", [(5000, 0, 0), (3000, 0, 0)])
    body = _client(engineer).get(f"/ab-tests/{test.pk}/").content.decode()
    assert 'id="srm-banner"' in body  # 5000 : 3000 against 50/50
    assert "+6.25%" in body  # 0.85 / 0.80 - 1
    assert 'id="achieved-power"' in body and "per arm" in body
    assert "ab_test.started" in body  # decision history


def test_the_lift_chart_draws_daily_cumulative_lift_with_its_band(engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer, primary_metric="latency_ms")
    services.ab_test_start(ab_test=test, actor=engineer)
    test.refresh_from_db()
    rows = []
    for arm, base in ((0, 10.0), (1, 12.0)):
        for i in range(40):
            rows.append(PredictionLog(endpoint=endpoint, deployment_id=test.endpoint.deployments.first().pk,
                                      model_version=versions[arm], request_id=f"r{arm}-{i}", latency_ms=base + i % 5,
                                      split_id=test.split_id, split_arm=arm))
    PredictionLog.objects.bulk_create(rows)
    figure = _client(engineer).get(f"/ab-tests/{test.pk}/charts/lift.json").json()
    names = [trace.get("name") for trace in figure["data"]]
    assert any(name and name.endswith("lift") for name in names)
    lift = next(t for t in figure["data"] if (t.get("name") or "").endswith("lift"))
    assert lift["y"][0] == pytest.approx(14 / 12 - 1, abs=1e-9)  # mean latency 14 ms against 12 ms
    assert any(t.get("fill") == "tonexty" for t in figure["data"])


def test_the_planner_uses_the_endpoints_traffic(engineer, endpoint, versions):
    deployment = endpoint.deployments.first()
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint=endpoint, deployment=deployment, model_version=versions[0], request_id=f"p{i}",
                      unit_id=f"S-{i % 70}", latency_ms=5.0) for i in range(200)])
    response = _client(engineer).get("/ab-tests/", {"plan": "1", "endpoint": "qc", "metric": "accuracy",
                                                    "baseline": "0.8", "mde": "0.05", "alpha": "0.05",
                                                    "power": "0.8", "arms": "2"})
    body = response.content.decode()
    assert "10.0 units a day" in body  # 70 units over 7 days
    assert 'id="plan-per-arm">1570<' in body
    assert 'id="plan-days">314.0 days' in body


def test_the_endpoint_page_names_the_test_holding_the_split_and_the_409_links_to_it(engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer)
    services.ab_test_start(ab_test=test, actor=engineer)
    client = _client(engineer)
    body = client.get("/serving/qc/").content.decode()
    assert f'href="/ab-tests/{test.pk}/" id="split-held-link"' in body
    assert f'action="/ab-tests/{test.pk}/stop/"' in body
    response = client.post("/serving/qc/deploy/", {"model_version": versions[1].pk, "strategy": "immediate"},
                           follow=True)
    assert f'<a href="/ab-tests/{test.pk}/" id="split-holder-link">' in response.content.decode()
    stopped = client.post(f"/ab-tests/{test.pk}/stop/", {"confirmed": "1", "next": "/serving/qc/"}, follow=True)
    assert stopped.redirect_chain[-1][0] == "/serving/qc/"
    assert 'id="split-held"' not in stopped.content.decode()
    assert ABTest.objects.get(pk=test.pk).status == "stopped"


def test_a_foreign_next_address_is_not_followed(engineer, endpoint, versions):
    test = _create(endpoint, versions, engineer)
    response = _client(engineer).post(f"/ab-tests/{test.pk}/abort/",
                                      {"confirmed": "1", "reason": "wrong arms", "next": "https://evil.example/"})
    assert response["Location"] == f"/ab-tests/{test.pk}/"
    assert ABTest.objects.get(pk=test.pk).status == "aborted"


def test_the_list_costs_the_same_queries_for_one_test_or_many(engineer, endpoint, versions, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client(engineer)
    first = _create(endpoint, versions, engineer)
    services.ab_test_start(ab_test=first, actor=engineer)
    client.get("/ab-tests/")
    with CaptureQueriesContext(connection) as one:
        client.get("/ab-tests/")
    services.ab_test_stop(ab_test=first, actor=engineer)
    for _ in range(3):
        services.ab_test_start(ab_test=_create(endpoint, versions, engineer), actor=engineer)
        services.ab_test_stop(ab_test=ABTest.objects.filter(status="running").get(), actor=engineer)
    with CaptureQueriesContext(connection) as many:
        body = client.get("/ab-tests/").content.decode()
    assert body.count("data-test=") == 4
    assert len(many.captured_queries) == len(one.captured_queries)
