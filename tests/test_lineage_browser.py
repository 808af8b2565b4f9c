"""A real Chromium on the everyday path between pages: from a dataset
version to the training form, and reading an endpoint's prediction log."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_train_on_this_version_opens_the_form_prefilled(page, browser_login, make_user):
    from apps.experiments.models import TrainingJob
    from apps.experiments.tests.conftest import make_lab_version

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
