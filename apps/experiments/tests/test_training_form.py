"""The training form: started from a dataset version ("Train on this
version"), defaulting to the latest valid version of the chosen dataset, and
creating a new experiment in the same step."""

import pytest
from django.urls import reverse

from apps.datasets.choices import VersionStatus
from apps.datasets.models import DatasetVersion
from apps.experiments.models import Experiment, TrainingJob
from apps.experiments.tests.conftest import make_lab_version

pytestmark = pytest.mark.django_db

URL = "/experiments/training/new/"
FIELDS = {"target_column": "", "task": "", "estimator": "random_forest", "hyperparameters": '{"n_estimators": 5}',
          "test_size": 0.2, "validation_size": 0.1, "seed": 1, "stratify": "on", "cv_folds": 0,
          "search_kind": "none", "search_space": "", "n_iter": 8, "search_metric": "", "run_name": ""}


@pytest.fixture
def browser_client(client, scientist):
    client.force_login(scientist)
    return client


@pytest.fixture
def versions(scientist):
    """v1 and v2 valid, v3 uploaded later but invalid."""
    v1 = make_lab_version(scientist, seed=7)
    v2 = make_lab_version(scientist, seed=8)
    v3 = make_lab_version(scientist, seed=9)
    DatasetVersion.objects.filter(pk=v3.pk).update(status=VersionStatus.INVALID, status_reason="broken on purpose")
    return v1, v2, v3


def _selected(html: str, field: str) -> str | None:
    """The value of the selected option of the <select name=field>."""
    import re

    select = re.search(rf'<select name="{field}"[^>]*>(.*?)</select>', html, re.S).group(1)
    found = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return found.group(1) if found else None


def test_the_dataset_version_page_offers_training_on_valid_versions_only(browser_client, client, make_user,
                                                                        versions):
    v1, _, v3 = versions
    page = browser_client.get(reverse("datasets:version", args=[v1.pk])).content.decode()
    assert f'href="{URL}?dataset_version={v1.pk}"' in page and 'id="train-on-version"' in page
    invalid = browser_client.get(reverse("datasets:version", args=[v3.pk])).content.decode()
    assert 'id="train-on-version"' not in invalid
    client.force_login(make_user("Viewer", username="looker"))  # may look, may not train
    assert 'id="train-on-version"' not in client.get(reverse("datasets:version", args=[v1.pk])).content.decode()


def test_the_form_is_prefilled_with_the_version_it_came_from(browser_client, versions):
    v1, _, v3 = versions
    html = browser_client.get(URL, {"dataset_version": v1.pk}).content.decode()
    assert _selected(html, "dataset_version") == str(v1.pk)
    assert _selected(html, "dataset") == str(v1.dataset_id)
    # An invalid version is not offered at all, so it cannot be pre-filled either.
    assert f'value="{v3.pk}"' not in html.split('name="dataset_version"')[1].split("</select>")[0]
    html = browser_client.get(URL, {"dataset_version": v3.pk}).content.decode()
    assert _selected(html, "dataset_version") in (None, "")  # "latest valid version of the dataset"


def test_without_a_version_the_job_trains_on_the_latest_valid_one(browser_client, experiment, versions):
    v1, v2, _ = versions
    html = browser_client.get(URL).content.decode()
    assert _selected(html, "dataset") == str(v1.dataset_id) and _selected(html, "dataset_version") in (None, "")
    response = browser_client.post(URL, {**FIELDS, "experiment": experiment.pk, "dataset": v1.dataset_id,
                                         "dataset_version": ""})
    assert response.status_code == 302
    assert TrainingJob.objects.get().dataset_version == v2  # v3 is newer but invalid


def test_a_version_of_another_dataset_is_refused(browser_client, scientist, experiment, versions):
    other = make_lab_version(scientist, seed=21, name="other-lab")
    html = browser_client.post(URL, {**FIELDS, "experiment": experiment.pk, "dataset": versions[0].dataset_id,
                                     "dataset_version": other.pk}).content.decode()
    assert "is not a version of lab-submissions" in html and not TrainingJob.objects.exists()
    html = browser_client.post(URL, {**FIELDS, "experiment": experiment.pk}).content.decode()
    assert "Choose a dataset or one of its valid versions." in html and not TrainingJob.objects.exists()


def test_the_form_creates_a_new_experiment_with_the_job(browser_client, scientist, experiment, versions):
    v1 = versions[0]
    response = browser_client.post(URL, {**FIELDS, "experiment": "", "new_experiment": "qc from v1",
                                         "dataset_version": v1.pk})
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and job.run.experiment.name == "qc from v1"
    assert job.run.experiment.owner == scientist and job.dataset_version == v1
    both = browser_client.post(URL, {**FIELDS, "experiment": experiment.pk, "new_experiment": "twice",
                                     "dataset_version": v1.pk}).content.decode()
    assert "not both" in both
    neither = browser_client.post(URL, {**FIELDS, "dataset_version": v1.pk}).content.decode()
    assert "Pick an experiment or name a new one." in neither
    assert TrainingJob.objects.count() == 1


def test_a_refused_job_leaves_no_empty_experiment(browser_client, experiment, versions):
    html = browser_client.post(URL, {**FIELDS, "new_experiment": "never made", "dataset_version": versions[0].pk,
                                     "target_column": "no_such_column"}).content.decode()
    assert "no_such_column" in html
    assert not Experiment.objects.filter(name="never made").exists() and not TrainingJob.objects.exists()
    taken = browser_client.post(URL, {**FIELDS, "new_experiment": "qc-model", "dataset_version": versions[0].pk})
    assert "already exists" in taken.content.decode()


def test_versions_of_datasets_the_user_cannot_see_are_not_offered(client, make_user, versions):
    from apps.core.permissions import make_private

    make_private(versions[0].dataset)
    other = make_user("Data Scientist", username="other_sci")
    client.force_login(other)
    html = client.get(URL, {"dataset_version": versions[0].pk}).content.decode()
    assert "lab-submissions" not in html
    response = client.post(URL, {**FIELDS, "new_experiment": "sneaky", "dataset_version": versions[0].pk})
    assert "Select a valid choice" in response.content.decode() and not TrainingJob.objects.exists()
