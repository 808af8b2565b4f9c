"""Experiment pages read right: hyperparameters as tables, search trials
named "trial 2 of 3", the job header agreeing with its progress."""

import pytest
from django.test import Client

from apps.experiments.services import hyperparameter_search_start, training_job_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(scientist):
    client = Client()
    client.force_login(scientist)
    return client


@pytest.fixture
def search_job(scientist, experiment, lab_version, monkeypatch):
    """A grid search over max_depth, started (three queued trials) but not run."""
    from apps.experiments.services import hyperparameter_searches

    monkeypatch.setattr(hyperparameter_searches, "_launch_chord", lambda job_id, children: None)
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest", hyperparameters={"n_estimators": 10},
                              search={"kind": "grid", "space": {"max_depth": [1, 3, None]}})
    hyperparameter_search_start(job_id=job.pk, worker="celery@trainer-1")
    job.refresh_from_db()
    return job


def test_training_job_page_shows_hyperparameters_as_a_table(browser, scientist, experiment, lab_version):
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
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


def test_search_trials_are_named_trial_n_of_m(search_job):
    from apps.experiments.models import Run

    names = list(Run.objects.filter(parent_id=search_job.run_id).order_by("pk").values_list("name", flat=True))
    assert names == ["trial 1 of 3", "trial 2 of 3", "trial 3 of 3"]


def test_runs_table_shows_a_search_parents_best_metrics(browser, scientist, experiment, make_run):
    from apps.experiments.services import run_log_batch

    parent = make_run(name="forest search")
    run_log_batch(actor=scientist, run_id=parent.pk, metrics=[{"key": "best_val_f1", "value": 0.875, "step": 0},
                                                             {"key": "best_test_f1", "value": 0.8125, "step": 0}])
    single = make_run(name="one forest")
    run_log_batch(actor=scientist, run_id=single.pk, metrics=[{"key": "test_f1", "value": 0.5, "step": 0}])
    html = browser.get(f"/experiments/{experiment.pk}/").content.decode()
    head = html[html.index('id="runs-table"'):html.index("</thead>")]
    assert 'title="metrics.test_f1"' in head and 'title="metrics.val_f1"' in head
    assert "best_test_f1" not in head, "one column per metric, the parent's best value fills it"
    row = html[html.index(f'data-run-id="{parent.pk}"'):]
    row = row[:row.index("</tr>")]
    assert '<span class="muted" title="the best trial\'s value">best</span> 0.8125' in row
    assert "0.8750" in row
    other = html[html.index(f'data-run-id="{single.pk}"'):]
    assert "0.5000" in other[:other.index("</tr>")]


def test_training_job_header_agrees_with_its_progress(browser, scientist, experiment, lab_version):
    from django.utils import timezone

    from apps.experiments.models import TrainingJob

    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=lab_version,
                              estimator="random_forest")
    queued = browser.get(f"/experiments/training/{job.pk}/").content.decode()
    assert 'id="job-status" data-progress-field="status">queued<' in queued
    assert 'id="job-started" data-progress-field="started_at">—<' in queued
    started = timezone.now().replace(microsecond=0)
    TrainingJob.objects.filter(pk=job.pk).update(status="running", started_at=started, worker="celery@trainer-1",
                                                 progress=0.4, progress_message="Fitting")
    html = browser.get(f"/experiments/training/{job.pk}/").content.decode()
    assert 'id="job-status" data-progress-field="status">running<' in html
    assert f'data-progress-field="started_at">{started:%Y-%m-%d %H:%M:%S}<' in html
    assert 'id="job-worker" data-progress-field="worker">celery@trainer-1<' in html
    assert "<p class=\"muted\" data-progress-text>Fitting (40%)</p>" in html  # as the poll writes it
