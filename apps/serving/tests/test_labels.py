"""Serving pages read right: plural forms, flash messages that name the
object, "Promote now" asks before it acts."""

import pytest
from django.test import Client

from apps.serving.models import Endpoint
from apps.serving.tests.factories import make_endpoint

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("minutes", "batch", "bake_text", "batch_text"), [
    (1, 1, "<dd>1 minute</dd>", "<dd>1 instance</dd>"),
    (30, 100, "<dd>30 minutes</dd>", "<dd>100 instances</dd>"),
])
def test_endpoint_page_counts_in_singular_and_plural(engineer, minutes, batch, bake_text, batch_text):
    endpoint = make_endpoint(owner=engineer, slug="qc-counts", max_batch_size=batch)
    Endpoint.objects.filter(pk=endpoint.pk).update(bake_minutes=minutes)
    html = browser_for(engineer).get("/serving/qc-counts/").content.decode()
    assert bake_text in html and batch_text in html
    if minutes == 1:
        assert "1 minutes" not in html and "1 instances" not in html


@pytest.fixture
def canary(engineer):
    """sample-qc v1 serving qc-staging; v2 half-way through a canary rollout."""
    from apps.registry.choices import Stage
    from apps.serving.tests.factories import deploy, make_model_version, tick_once

    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    deploy(endpoint=endpoint, version=v1, actor=engineer)
    rollout = deploy(endpoint=endpoint, version=v2, actor=engineer, strategy="canary",
                     config={"steps": [20, 100], "step_seconds": 600, "min_requests": 5})
    tick_once(rollout)
    rollout.refresh_from_db()
    assert rollout.rollout_state == "progressing"
    return rollout


def test_promote_now_asks_first(engineer, canary):
    browser = browser_for(engineer)
    html = browser.get("/serving/qc-staging/").content.decode()
    assert 'id="promote-button" data-confirm-dialog="promote-dialog"' in html
    dialog = html[html.index('<dialog id="promote-dialog"'):html.index("</dialog>")]
    assert 'name="confirmed" value="1"' in dialog and "Promote sample-qc v2 now?" in dialog
    assert "onclick" not in html  # the dialog is opened from a static script (CSP)

    # Without the confirmation (no script, or a bare POST): a page that asks, nothing changes.
    asked = browser.post(f"/serving/deployments/{canary.pk}/promote/")
    assert asked.status_code == 200 and 'id="promote-confirmation"' in asked.content.decode()
    canary.refresh_from_db()
    assert canary.rollout_state == "progressing" and canary.traffic_weight < 100

    done = browser.post(f"/serving/deployments/{canary.pk}/promote/", {"confirmed": "1"}, follow=True)
    assert f"Deployment {canary.pk} (sample-qc v2 on qc-staging) promoted: it takes all traffic now." in \
        done.content.decode()
    canary.refresh_from_db()
    assert canary.traffic_weight == 100
