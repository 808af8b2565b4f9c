"""Experiment pages read right: hyperparameters as tables, search trials
named "trial 2 of 3", the job header agreeing with its progress."""

import pytest
from django.test import Client

from apps.experiments.services import training_job_create, training_search_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(scientist):
    client = Client()
    client.force_login(scientist)
    return client


@pytest.fixture
def search_job(scientist, experiment, lab_version, monkeypatch):
    """A grid search over max_depth, started (three queued trials) but not run."""
    from apps.experiments.services import training as training_services

    monkeypatch.setattr(training_services, "_launch_chord", lambda job_id, children: None)
    job = training_job_create(user=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest", hyperparameters={"n_estimators": 10},
                              search={"kind": "grid", "space": {"max_depth": [1, 3, None]}})
    training_search_start(job_id=job.pk, worker="celery@trainer-1")
    job.refresh_from_db()
    return job


def test_training_job_page_shows_hyperparameters_as_a_table(browser, scientist, experiment, lab_version):
    job = training_job_create(user=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest", hyperparameters={"n_estimators": 20, "max_depth": 4})
    html = browser.get(f"/experiments/training/{job.pk}/").content.decode()
    table = html[html.index('id="job-hyperparameters"'):]
    table = table[:table.index("</table>")]
    assert "<tr><td><code>max_depth</code></td><td>4</td></tr>" in table
    assert "<tr><td><code>n_estimators</code></td><td>20</td></tr>" in table
    assert ">test 20 %, validation 10 %, seed 42, stratified<" in html
    assert "{&#x27;" not in html and "{'n_estimators'" not in html  # no dict printed as-is


def test_search_job_page_shows_its_space_and_each_trial_as_words(browser, search_job):
    html = browser.get(f"/experiments/training/{search_job.pk}/").content.decode()
    space = html[html.index('id="job-search-space"'):]
    assert "<tr><td><code>max_depth</code></td><td>1, 3, None</td></tr>" in space[:space.index("</table>")]
    children = html[html.index('id="job-children"'):]
    assert "<code>max_depth=3</code>, <code>n_estimators=10</code>" in children
