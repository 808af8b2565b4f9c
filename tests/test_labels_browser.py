"""In a real browser: actions that skip safeguards ask first."""

import pytest

from apps.registry.choices import Stage
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version, tick_once

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_promote_now_opens_a_dialog_and_cancel_changes_nothing(page, browser_login, make_user):
    engineer = make_user("ML Engineer", username="engineer_promote")
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    canary = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary",
                    config={"steps": [20, 100], "step_seconds": 600, "min_requests": 5})
    tick_once(canary)

    browser_login("engineer_promote")
    page.goto("/serving/qc-staging/")
    dialog = page.locator("#promote-dialog")
    assert not dialog.is_visible()
    page.click("#promote-button")
    dialog.wait_for(state="visible")
    assert "Promote sample-qc v2 now?" in dialog.inner_text()
    page.click("#promote-cancel")
    dialog.wait_for(state="hidden")
    canary.refresh_from_db()
    assert canary.traffic_weight < 100, "cancelling changes nothing"

    page.click("#promote-button")
    page.click("#promote-confirm")
    page.wait_for_load_state("networkidle")
    assert "promoted: it takes all traffic now" in page.locator(".messages").inner_text()
    canary.refresh_from_db()
    assert canary.traffic_weight == 100
    assert page.errors == []
