"""A real Chromium fills the A/B calculator, reads the comparison, then sees
the sample-ratio banner for a broken split. No script is needed for it."""

import pytest

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
