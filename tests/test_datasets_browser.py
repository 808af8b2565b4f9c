"""A real Chromium uploads a lab file, watches the version become valid
(a real worker validates it) and sees the quality charts render."""

import pytest

from apps.datasets.generator import generate_submissions

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_upload_watch_validation_and_see_the_charts(page, browser_login, make_user, live_worker, tmp_path):
    from apps.datasets import services

    scientist = make_user("Data Scientist", username="bench_scientist")
    dataset = services.dataset_create(user=scientist, name="browser-submissions", target_column="qc_pass",
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
    page.wait_for_selector("#distributions .chart .main-svg", timeout=30_000)
    rendered = page.locator("#distributions .chart[data-rendered='1']").count()
    assert rendered == 19
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
    dataset = services.dataset_create(user=scientist, name="browser-bad-files")
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
