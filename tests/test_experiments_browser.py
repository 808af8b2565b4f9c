"""A real Chromium and a real worker: start a training job from the form,
watch it finish, look at its run, then compare two runs."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_train_from_the_form_watch_it_finish_and_compare_two_runs(
        page, browser_login, make_user, live_worker, make_lab_version):
    from apps.experiments.services import experiment_create, run_create, run_finish, run_log_batch

    scientist = make_user("Data Scientist", username="bench_scientist")
    version = make_lab_version(scientist, rows=300)
    experiment = experiment_create(actor=scientist, name="browser-qc")
    # A run logged by a script, to compare the trained one with.
    manual = run_create(actor=scientist, experiment=experiment, name="notebook run")
    run_log_batch(actor=scientist, run_id=manual.pk,
                  metrics=[{"key": "test_roc_auc", "value": 0.7},
                           *[{"key": "cv_roc_auc", "value": 0.6 + fold / 100, "step": fold} for fold in range(3)]],
                  params=[{"key": "estimator", "value": "logistic_regression"}, {"key": "C", "value": "0.5"}])
    run_finish(actor=scientist, run=manual, status="finished")

    browser_login("bench_scientist")
    page.goto(f"/experiments/training/new/?experiment={experiment.pk}")
    page.select_option("#id_dataset_version", str(version.pk))
    page.select_option("#id_estimator", "random_forest")
    page.fill("#id_hyperparameters", '{"n_estimators": 30, "max_depth": 6}')
    page.fill("#id_cv_folds", "3")
    page.click("#start-training")
    page.wait_for_url("**/experiments/training/*/")
    assert page.locator("#job-progress .progress").is_visible()
    # progress.js polls the job and reloads the page once it has ended.
    page.wait_for_selector("#job-status.finished", timeout=240_000)
    assert page.locator("[data-progress-text]").inner_text().startswith("Finished")

    page.click("#job-run-link")
    page.wait_for_selector("#run-status.finished")
    assert "test_roc_auc" in page.locator("#run-metrics").inner_text()
    page.locator(".plot-preview").first.scroll_into_view_if_needed()  # drawn when in view
    page.wait_for_selector(".plot-preview[data-rendered='1']", timeout=30_000)
    assert page.locator(".plot-preview").count() >= 3  # confusion matrix, ROC curve, feature importance
    page.locator(".metric-chart").first.scroll_into_view_if_needed()
    page.wait_for_selector(".metric-chart[data-rendered='1']", timeout=30_000)  # cv_* as a bar per fold

    page.goto(f"/experiments/{experiment.pk}/")
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 2
    page.fill("#id_filter", "params.estimator = 'random_forest' or metrics.test_roc_auc < 0.75")
    page.fill("#id_order_by", "metrics.test_roc_auc DESC")
    page.click("#run-filter button[type=submit]")
    page.wait_for_load_state("networkidle")
    names = page.locator("#runs-table tbody tr td:nth-child(2)").all_inner_texts()
    assert len(names) == 2 and names[0].startswith("random_forest") and names[1].startswith("notebook run")
    for checkbox in page.locator("#runs-table input[name=runs]").all():
        checkbox.check()
    page.click("#compare-selected")
    page.wait_for_url("**/experiments/compare/*")
    page.wait_for_selector("#overlay-chart[data-rendered='1']")
    page.wait_for_selector("#parallel-chart[data-rendered='1']")
    diff = page.locator("#param-diff").inner_text()
    assert "estimator" in diff and "random_forest" in diff and "logistic_regression" in diff
    assert page.locator("#param-diff tr.differs").count() >= 1
    assert page.errors == []
