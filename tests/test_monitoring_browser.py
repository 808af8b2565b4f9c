"""A real Chromium and a real worker: compare two dataset versions from the
drift page, watch the report finish on the monitoring queue, read its table
and chart."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_compare_two_versions_from_the_page_and_read_the_report(page, browser_login, make_user, live_worker):
    from apps.monitoring.models import DriftReport
    from apps.monitoring.tests.conftest import make_version

    scientist = make_user("Data Scientist", username="drift_scientist")
    reference = make_version(scientist, rows=1200, seed=1)
    current = make_version(scientist, rows=600, seed=2, scenario="freezer_failure")

    browser_login("drift_scientist")
    page.goto(f"/datasets/versions/{reference.pk}/")
    page.click("#drift-link")
    page.wait_for_url("**/monitoring/drift-reports/**")
    assert page.locator("#id_reference_version").input_value() == str(reference.pk)
    page.select_option("#id_current_version", str(current.pk))
    page.click("#new-drift-report button[type=submit]")
    page.wait_for_url("**/monitoring/drift-reports/*/")

    # The worker on the monitoring queue computes it; the page reloads when it is done.
    page.wait_for_selector("#verdict", timeout=120_000)
    report = DriftReport.objects.get()
    assert report.status == "done" and report.result["columns"]
    rows = page.locator("#drift-columns tbody tr")
    assert rows.count() == len(report.result["columns"])
    rin = page.locator("#drift-columns tbody tr", has_text="rin").first
    assert "ks" in rin.inner_text() and rin.locator(".badge.failed").count() == 1  # drifted
    page.locator("#drift-chart").scroll_into_view_if_needed()  # charts draw when in view
    page.wait_for_selector("#drift-chart[data-rendered='1']", timeout=30_000)
    assert page.locator("#drift-chart .main-svg").count() >= 1
    assert "qc_pass" in page.locator("#target-drift").inner_text()
    assert page.errors == []
