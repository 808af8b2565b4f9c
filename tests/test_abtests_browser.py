"""A real Chromium fills the A/B calculator, reads the comparison, then sees
the sample-ratio banner for a broken split. No script is needed for it."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_fill_the_calculator_and_read_the_result(page, browser_login, make_user):
    make_user("Viewer", username="ab_analyst")
    browser_login("ab_analyst")
    page.get_by_role("link", name="A/B calculator").click()
    page.wait_for_url("**/ab-tests/calculator/")

    page.fill("#id_arms-0-n", "53")
    page.fill("#id_arms-0-sum", "5")
    page.fill("#id_arms-1-name", "new-kit")
    page.fill("#id_arms-1-n", "47")
    page.fill("#id_arms-1-sum", "7")
    page.click("#calculator-form button[type=submit]")
    page.wait_for_selector("#analysis-result")

    cells = page.locator("#comparisons-table tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == ["new-kit", "+57.87%", "-114.71% to +230.46%", "0.507"]
    assert cells[4].strip() == "no"
    assert "no mismatch" in page.locator("#srm-ok").inner_text()
    # The form keeps what was typed, so the analyst can change one setting and post again.
    page.select_option("#id_engine", "bayesian")
    page.click("#calculator-form button[type=submit]")
    page.wait_for_selector("#comparisons-table th:has-text('Chance to win')")
    assert page.locator("#comparisons-table tbody td").nth(3).inner_text() == "74.7%"

    page.fill("#id_arms-0-n", "5000")
    page.fill("#id_arms-0-sum", "500")
    page.fill("#id_arms-1-n", "4500")
    page.fill("#id_arms-1-sum", "480")
    page.click("#calculator-form button[type=submit]")
    page.wait_for_selector("#srm-banner")
    assert "Sample ratio mismatch" in page.locator("#srm-banner").inner_text()
    assert page.errors == []


def test_a_refused_row_is_marked_where_it_was_typed(page, browser_login, make_user):
    make_user("Viewer", username="ab_analyst_2")
    browser_login("ab_analyst_2")
    page.goto("/ab-tests/calculator/")
    page.fill("#id_arms-0-n", "53")
    page.fill("#id_arms-0-sum", "5")
    page.fill("#id_arms-1-n", "47")
    page.fill("#id_arms-1-sum", "70")
    page.click("#calculator-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#analysis-result").count() == 0
    assert "must be between 0 and n" in page.locator("#arms-table tbody tr").nth(1).inner_text()


def test_create_a_test_through_the_form_start_it_and_read_the_arms_and_chart(page, browser_login, make_user):
    from apps.abtests import services
    from apps.abtests.models import ABTest
    from apps.registry.choices import Stage
    from apps.serving.models import PredictionLog
    from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

    engineer = make_user("ML Engineer", username="ab_engineer")
    control = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    challenger = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-ab", environment="staging")
    deploy(endpoint=endpoint, version=control, actor=engineer)

    # The pages hold no inline script and the chart draws under the policy: record any violation.
    page.add_init_script('window.__csp = []; document.addEventListener("securitypolicyviolation", '
                         'function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });')
    browser_login("ab_engineer")
    page.get_by_role("link", name="A/B tests", exact=True).click()
    page.wait_for_url("**/ab-tests/")
    page.select_option("#id_endpoint", "qc-ab")
    page.fill("#id_name", "kit B latency")
    page.fill("#id_hypothesis", "v2 answers as fast as v1")
    page.select_option("#id_arm0_version", str(control.pk))
    page.select_option("#id_arm1_version", str(challenger.pk))
    page.select_option("#id_primary_metric", "latency_ms")
    page.select_option("#id_engine", "frequentist")
    page.click("#create-test")
    page.wait_for_selector("#test-status")
    assert "created as a draft on qc-ab" in page.locator(".messages").inner_text()
    test = ABTest.objects.get(name="kit B latency")

    page.click("#start-button")  # opens the confirmation dialog
    page.click("#start-confirm")
    page.wait_for_selector("#stop-button")
    assert "started: qc-ab's traffic is split control 50" in page.locator(".messages").inner_text()

    test.refresh_from_db()
    deployments = {d.model_version_id: d.pk for d in endpoint.deployments.all()}
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint=endpoint, deployment_id=deployments[version.pk], model_version=version,
                      request_id=f"b{arm}-{i}", unit_id=f"S-{arm}-{i}", latency_ms=base + i % 7,
                      split_id=test.split_id, split_arm=arm)
        for arm, (version, base) in enumerate(((control, 10.0), (challenger, 13.0))) for i in range(60)])
    services.ab_test_stats_update(ab_test_id=test.pk)

    page.reload()
    rows = page.locator("#arms-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").nth(3).inner_text() == "60"
    assert rows.nth(1).locator("td").nth(5).inner_text() == "+23.26%"  # 15.9 ms against 12.9 ms
    assert rows.nth(1).locator("td").nth(8).inner_text() == "yes"
    expect(page.locator("#lift-chart[data-rendered='1'] .legendtext").first).to_be_visible()
    assert any("lift" in text for text in page.locator("#lift-chart .legendtext").all_text_contents())
    assert page.evaluate("window.__csp") == []
    assert page.errors == []
