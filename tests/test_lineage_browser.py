"""A real Chromium on the everyday path between pages: from a dataset
version to the training form, and reading an endpoint's prediction log."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_train_on_this_version_opens_the_form_prefilled(page, browser_login, make_user, make_lab_version):
    from apps.experiments.models import TrainingJob

    scientist = make_user("Data Scientist", username="lineage_scientist")
    make_lab_version(scientist, rows=200, seed=3)
    version = make_lab_version(scientist, rows=200, seed=4)  # v2: not the default the form would pick anyway
    first = version.dataset.versions.get(version=1)

    browser_login("lineage_scientist")
    page.goto(f"/datasets/versions/{first.pk}/")
    page.click("#train-on-version")
    page.wait_for_url(f"**/experiments/training/new/?dataset_version={first.pk}")
    assert page.locator("#id_dataset_version").input_value() == str(first.pk)
    assert page.locator("#id_dataset").input_value() == str(first.dataset_id)
    page.fill("#id_new_experiment", "qc from the version page")
    page.click("#start-training")
    page.wait_for_url("**/experiments/training/*/")
    job = TrainingJob.objects.select_related("run__experiment").get()
    assert job.dataset_version_id == first.pk and job.run.experiment.name == "qc from the version page"
    assert page.errors == []


def test_the_prediction_log_filters_by_status(page, browser_login, make_user):
    from datetime import timedelta

    from django.utils import timezone

    from apps.registry.choices import Stage
    from apps.serving.models import PredictionLog
    from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

    engineer = make_user("ML Engineer", username="lineage_engineer")
    version = make_model_version(owner=engineer, name="log-qc", stage=Stage.STAGING)
    endpoint = make_endpoint(owner=engineer, slug="log-qc", environment="staging")
    deployment = deploy(endpoint=endpoint, version=version, actor=engineer)
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(endpoint=endpoint, deployment=deployment, model_version=version, request_id=f"req-{i}",
                      unit_id=f"S-{i}", inputs=[{"a260_280": 1.8}], predictions=[] if i % 3 == 0 else [True],
                      latency_ms=4.0, status_code=500 if i % 3 == 0 else 200,
                      error="model failed" if i % 3 == 0 else "", created_at=now - timedelta(minutes=i))
        for i in range(9))

    browser_login("lineage_engineer")
    page.goto("/serving/log-qc/")
    page.click("#prediction-log-link")
    page.wait_for_url("**/serving/log-qc/predictions/")
    assert page.locator("#log-table tbody tr").count() == 9
    page.select_option("#id_status", "error")
    page.click("#apply-filter")
    page.wait_for_url("**/predictions/?*status=error*")
    statuses = page.locator("#log-table .log-status").all_inner_texts()
    assert statuses == ["error 500"] * 3
    assert page.locator("#log-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.request)") == [
        "req-0", "req-3", "req-6"]
    assert "status=error" in page.locator("#export-csv").get_attribute("href")
    assert page.errors == []
