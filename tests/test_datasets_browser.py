"""A real Chromium uploads a lab file, watches the version become valid
(a real worker validates it) and sees the quality charts render."""

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.generator import generate_submissions

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_upload_watch_validation_and_see_the_charts(page, browser_login, make_user, live_worker, tmp_path):
    from apps.datasets import services

    scientist = make_user("Data Scientist", username="bench_scientist")
    dataset = services.dataset_create(actor=scientist, name="browser-submissions", target_column="qc_pass",
                                      task_hint="classification")
    path = tmp_path / "submissions-week-12.csv"
    generate_submissions(rows=600, seed=12).to_csv(path, index=False)

    browser_login("bench_scientist")
    page.goto("/datasets/")
    page.get_by_role("link", name="browser-submissions").click()
    page.wait_for_load_state("networkidle")
    page.set_input_files("#id_file", str(path))
    page.fill("#id_note", "week 12 from the LIMS export")
    page.click("#upload-button")

    # The XHR upload reports progress, then opens the version page, where
    # progress.js follows the validation and reloads once it is done.
    page.wait_for_url("**/datasets/versions/*/", timeout=30_000)
    page.wait_for_selector("#version-status.valid", timeout=120_000)
    assert page.locator("#schema-table tbody tr").count() == 20
    # Charts are drawn as they scroll into view (static/js/charts.js).
    charts = page.locator("#distributions .chart")
    assert charts.count() == 19
    for chart in [*charts.all(), page.locator("#missing-map"), page.locator("#correlation")]:
        chart.scroll_into_view_if_needed()
        expect(chart).to_have_attribute("data-rendered", "1", timeout=30_000)
    assert page.locator("#missing-map .main-svg").count() >= 1
    assert page.locator("#correlation .main-svg").count() >= 1
    assert "score = 100" in page.locator("#quality-score").inner_text()
    assert page.errors == []

    version = dataset.versions.get()
    assert version.note == "week 12 from the LIMS export"
    assert version.status == "valid"


def test_a_bad_file_shows_the_reason_without_leaving_the_page(page, browser_login, make_user, tmp_path):
    from apps.datasets import services

    scientist = make_user("Data Scientist", username="bad_file_scientist")
    dataset = services.dataset_create(actor=scientist, name="browser-bad-files")
    path = tmp_path / "dupes.csv"
    path.write_text("sample_id,rin,rin\nS1,7.1,7.3\n")

    browser_login("bad_file_scientist")
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-button")
    error = page.locator("#upload-error")
    error.wait_for(state="visible")
    assert "repeated: 'rin'" in error.inner_text()
    assert dataset.versions.count() == 0


def test_preview_a_decimal_comma_export_choose_a_type_and_upload(page, browser_login, make_user, tmp_path):
    from apps.datasets import services

    scientist = make_user("Data Scientist", username="preview_scientist")
    dataset = services.dataset_create(actor=scientist, name="browser-preview", target_column="qc_pass",
                                      task_hint="classification")
    path = tmp_path / "export-de.csv"
    frame = generate_submissions(rows=120, seed=4)
    frame["submitting_lab"] = "Universität µ-Labor"
    path.write_bytes(frame.to_csv(index=False, sep=";", decimal=",").encode("cp1252"))

    browser_login("preview_scientist")
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files("#id_file", str(path))
    # Choosing the file previews it: decimal commas read as numbers.
    rin = page.locator('#preview-table select[data-column="rin"]')
    rin.wait_for(state="visible")
    assert rin.input_value() == "float"
    summary = page.locator("[data-preview-summary]").inner_text()
    assert "decimal mark ," in summary and "cp1252" in summary
    assert "Universität µ-Labor" in page.locator("#preview-table tbody").inner_text()
    assert page.locator("#preview-table tbody tr").count() == 20
    # A type chosen in the preview is read back by a new preview and stored with the upload.
    page.select_option('#preview-table select[data-column="freeze_thaw_cycles"]', "categorical")
    # (expect() polls from here: a string predicate would be eval'd, which the page's CSP refuses.)
    expect(page.locator('#preview-table select[data-column="freeze_thaw_cycles"]')).to_be_visible()
    expect(page.locator("[data-preview-summary]")).to_have_text(re.compile(r"^Read as"))
    assert page.locator('#preview-table select[data-column="freeze_thaw_cycles"]').input_value() == "categorical"
    assert dataset.versions.count() == 0
    page.click("#upload-button")
    page.wait_for_url("**/datasets/versions/*/", timeout=30_000)
    version = dataset.versions.get()
    assert version.read_options["decimal"] == ","
    assert version.read_options["column_types"] == {"freeze_thaw_cycles": "categorical"}
    assert page.errors == []
