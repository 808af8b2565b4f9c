"""A real Chromium walks the main pages under the Content-Security-Policy and
fails on any violation: every script, style and chart must still load and
render from the platform's own files (or carry the response's nonce)."""

import io
import json

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any page script, outside the page's policy, and keeps what the
# browser reports.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || "") + ":" +
                              e.lineNumber);
});
"""


@pytest.fixture
def watched_page(page):
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_csp = []
    page.on("console", lambda msg: page.console_csp.append(msg.text)
            if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text else None)
    return page


def visit(page, url: str, *, wait_for: str | None = None):
    response = page.goto(url)
    assert response.status < 400, url
    assert "nonce-" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    if wait_for:
        # Charts are drawn when they scroll into view.
        page.locator(wait_for.replace("[data-rendered='1']", "")).first.scroll_into_view_if_needed()
        page.wait_for_selector(wait_for, timeout=30_000)
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], f"{url}: {violations}"
    assert page.console_csp == [], f"{url}: {page.console_csp}"
    assert page.errors == [], f"{url}: {page.errors}"


def test_main_pages_render_without_any_policy_violation(watched_page, browser_login, make_user, make_lab_version):
    from apps.experiments.services import artifact_log, experiment_create, run_create, run_log_batch

    scientist = make_user("Data Scientist", "Admin", username="csp_admin", is_superuser=True)
    version = make_lab_version(scientist, rows=300)
    experiment = experiment_create(actor=scientist, name="csp-qc")
    run = run_create(actor=scientist, experiment=experiment, name="charted run")
    run_log_batch(actor=scientist, run_id=run.pk,
                  metrics=[{"key": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(30)],
                  params=[{"key": "estimator", "value": "random_forest"}])
    figure = {"data": [{"type": "scatter", "x": [0, 1], "y": [0, 1]}], "layout": {"title": {"text": "ROC"}}}
    other = run_create(actor=scientist, experiment=experiment, name="second run")
    run_log_batch(actor=scientist, run_id=other.pk,
                  metrics=[{"key": "loss", "value": 2.0 / (step + 1), "step": step} for step in range(30)],
                  params=[{"key": "estimator", "value": "logistic_regression"}])
    plot = io.BytesIO(json.dumps(figure).encode())
    artifact_log(actor=scientist, run=run, fileobj=plot, path="plots/roc.json", content_type="application/json")

    page = browser_login("csp_admin")
    visit(page, "/")
    visit(page, f"/experiments/{experiment.pk}/")
    visit(page, f"/experiments/runs/{run.pk}/", wait_for=".plot-preview[data-rendered='1']")
    page.wait_for_selector(".metric-chart[data-rendered='1']")
    visit(page, f"/experiments/compare/?runs={run.pk},{other.pk}", wait_for="#parallel-chart[data-rendered='1']")
    visit(page, f"/datasets/{version.dataset_id}/")
    visit(page, f"/datasets/versions/{version.pk}/", wait_for="#distributions .chart[data-rendered='1']")
    visit(page, "/api/docs/", wait_for=".swagger-ui .opblock")
    visit(page, "/api/v1/experiments/")
    visit(page, "/admin/")
    visit(page, "/admin/experiments/run/")
    visit(page, f"/admin/experiments/experiment/{experiment.pk}/change/")


def test_endpoint_page_sends_a_prediction_with_the_page_csrf_token(watched_page, browser_login, make_user):
    from apps.serving.tests import factories

    engineer = make_user("ML Engineer", username="csp_engineer")
    version = factories.make_model_version(owner=engineer, name="csp-qc")
    endpoint = factories.make_endpoint(owner=engineer, slug="csp-qc")
    factories.deploy(endpoint=endpoint, version=version, actor=engineer)

    page = browser_login("csp_engineer")
    assert not any(cookie["name"] == "csrftoken" and not cookie["httpOnly"] for cookie in page.context.cookies())
    visit(page, f"/serving/{endpoint.slug}/", wait_for="#traffic-chart[data-rendered='1']")
    page.click("#try-form button[type=submit]")
    page.wait_for_selector("#try-result:text-matches('^HTTP ')")
    assert page.locator("#try-result").inner_text().startswith("HTTP 200")
    assert page.evaluate("window.__cspViolations") == []
