"""The browser pages (server side): list, endpoint page, forms, chart data, admin actions."""

import pytest
from django.test import Client

from apps.core.permissions import make_private
from apps.registry.choices import Stage
from apps.serving.models import Deployment, Endpoint
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version, tick_once

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staging(engineer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    return endpoint, v1, v2


def test_list_and_detail_pages(engineer, viewer, staging):
    page = browser_for(viewer).get("/serving/")
    assert page.status_code == 200
    assert b"qc-staging" in page.content and b"sample-qc v1 \xc2\xb7 100 %" in page.content
    assert b"New endpoint" not in page.content  # viewers cannot create endpoints
    detail = browser_for(viewer).get("/serving/qc-staging/")
    assert detail.status_code == 200
    html = detail.content.decode()
    for marker in ('id="traffic-chart"', 'id="rps-chart"', 'id="latency-chart"', 'id="errors-chart"',
                   'id="deployments-table"', 'id="timeline"'):
        assert marker in html
    assert 'id="deploy-form"' not in html and 'id="try-form"' not in html  # no deploy or predict right
    html = browser_for(engineer).get("/serving/qc-staging/").content.decode()
    assert 'id="deploy-form"' in html and 'id="try-form"' in html
    assert '&quot;concentration_ng_ul&quot;' in html  # "try it" starts from the version's input example


def test_private_endpoints_are_404_for_others(engineer, viewer, staging):
    endpoint, _, _ = staging
    make_private(endpoint)
    assert browser_for(viewer).get("/serving/qc-staging/").status_code == 404
    assert b"qc-staging" not in browser_for(viewer).get("/serving/").content


def test_create_deploy_and_control_from_the_pages(engineer, staging):
    _endpoint, _v1, v2 = staging
    browser = browser_for(engineer)
    response = browser.post("/serving/new/", {"slug": "qc-two", "name": "QC two", "environment": "staging",
                                              "max_batch_size": 10})
    assert response.status_code == 302 and response.url == "/serving/qc-two/"
    assert Endpoint.objects.get(slug="qc-two").config["max_batch_size"] == 10

    response = browser.post("/serving/qc-staging/deploy/", {
        "model_version": v2.pk, "strategy": "canary", "steps": "20, 100", "step_seconds": 120,
        "min_requests": 5, "max_error_rate": 0.02, "max_p95_ms": 100, "rollback_window_s": 60})
    assert response.status_code == 302
    canary = Deployment.objects.get(model_version=v2)
    assert canary.config["steps"] == [20, 100] and canary.config["max_p95_ms"] == 100
    assert "rollback_window_s" not in canary.config  # only the chosen strategy's settings
    tick_once(canary)
    html = browser.get("/serving/qc-staging/").content.decode()
    assert 'id="rollout"' in html and 'id="pause-button"' in html

    paused = browser.post(f"/serving/deployments/{canary.pk}/pause/", {"reason": ""}, follow=True)
    assert f"Deployment {canary.pk} (sample-qc v2 on qc-staging) paused." in paused.content.decode()
    canary.refresh_from_db()
    assert canary.rollout_state == "paused"
    browser.post(f"/serving/deployments/{canary.pk}/rollback/", {"reason": "from the page"})
    canary.refresh_from_db()
    assert (canary.status, canary.status_reason) == ("rolled_back", "from the page")
    # A refused action is a message, not an error page.
    response = browser.post(f"/serving/deployments/{canary.pk}/promote/", {"confirmed": "1"}, follow=True)
    assert response.status_code == 200 and b"only a rollout that passed its health check" in response.content


def test_deploy_form_offers_only_versions_the_endpoint_accepts(engineer, staging):
    make_endpoint(owner=engineer, slug="qc-prod", environment="production")
    html = browser_for(engineer).get("/serving/qc-prod/").content.decode()
    assert "sample-qc v1 (Production)" in html and "sample-qc v2 (Staging)" not in html


def test_chart_and_split_json(engineer, staging):
    browser = browser_for(engineer)
    split = browser.get("/serving/qc-staging/split.json").json()["split"]
    assert [(s["version"], s["traffic_weight"]) for s in split] == [(1, 100.0)]
    traffic = browser.get("/serving/qc-staging/charts/traffic.json").json()
    assert traffic["data"][0]["x"] == [100.0]
    for kind in ("rps", "latency", "errors"):
        figure = browser.get(f"/serving/qc-staging/charts/{kind}.json").json()
        assert "data" in figure and "layout" in figure
    assert browser.get("/serving/qc-staging/charts/bogus.json").status_code == 404


def test_admin_actions_use_the_services(admin_user, engineer, staging):
    endpoint, _v1, v2 = staging
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary",
                    config={"steps": [10, 100]})
    browser = browser_for(admin_user)
    response = browser.post("/admin/serving/deployment/", {"action": "pause_selected",
                                                           "_selected_action": [canary.pk]}, follow=True)
    assert response.status_code == 200
    canary.refresh_from_db()
    assert canary.rollout_state == "paused"
    browser.post("/admin/serving/deployment/", {"action": "rollback_selected", "_selected_action": [canary.pk]})
    canary.refresh_from_db()
    assert canary.status == "rolled_back"
    assert browser.get(f"/admin/serving/deployment/{canary.pk}/change/").status_code == 200


def test_overview_card(engineer, staging):
    from apps.serving.selectors import overview_card

    card = overview_card(user=engineer)
    assert card["url"] == "/serving/"
    assert dict(card["stats"])["Live deployments"] == 1


def test_follow_settings_and_the_stale_banner_on_the_endpoint_page(engineer, viewer):
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    endpoint = make_endpoint(owner=engineer, slug="qc-prod", environment="production")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    assert 'id="follow-form"' not in browser_for(viewer).get("/serving/qc-prod/").content.decode()
    client = browser_for(engineer)
    client.post("/serving/qc-prod/follow/", {"follow_mode": "manual", "follow_strategy": "rolling",
                                             "bake_minutes": "20"})
    endpoint.refresh_from_db()
    assert (endpoint.follow_mode, endpoint.follow_strategy, endpoint.bake_minutes) == ("manual", "rolling", 20)
    assert browser_for(viewer).post("/serving/qc-prod/follow/", {"follow_mode": "auto",
                                                                 "follow_strategy": "canary"}).status_code in (403,
                                                                                                               404)
    endpoint.refresh_from_db()
    assert endpoint.follow_mode == "manual"
    make_model_version(owner=engineer, stage=Stage.PRODUCTION, seed=12)  # v1 archived behind the endpoint's back
    html = client.get("/serving/qc-prod/").content.decode()
    assert 'id="stale-version"' in html and "sample-qc v1" in html and "follows the registry manually" in html


def test_the_admin_changes_follow_mode_through_the_service(admin_user, engineer, staging):
    from apps.core.models import AuditEvent

    endpoint, *_ = staging
    client = browser_for(admin_user)
    url = f"/admin/serving/endpoint/{endpoint.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    response = client.post(url, {"name": endpoint.name, "description": "", "config": '{"max_batch_size": 100, '
                                 '"log_inputs": true}', "follow_mode": "manual", "follow_strategy": "canary",
                                 "bake_minutes": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert endpoint.follow_mode == "manual"
    assert AuditEvent.objects.filter(action="endpoint.updated", actor=admin_user).exists()
