"""The reads the experiment pages make go through selectors that apply the
permissions helper: runs picked by id for comparing, and the metric keys
worth a history chart."""

import pytest
from django.db import transaction

from apps.core.permissions import make_private
from apps.experiments import selectors
from apps.experiments.services import experiment_create, run_create, run_finish, run_log_batch

pytestmark = pytest.mark.django_db


def test_runs_by_ids_keep_the_order_asked_and_leave_out_hidden_runs(scientist, make_user, make_run):
    first, second = make_run(name="a"), make_run(name="b")
    other = make_user("Data Scientist", username="other-sci")
    with transaction.atomic():
        hidden_experiment = experiment_create(actor=other, name="private-study")
        hidden = run_create(actor=other, experiment=hidden_experiment, name="hidden")
    make_private(hidden_experiment)

    runs = selectors.run_list_by_ids(user=scientist, ids=[second.pk, hidden.pk, first.pk, 999_999])

    assert [run.pk for run in runs] == [second.pk, first.pk]
    assert hasattr(runs[0], "metric_map")


def test_metric_keys_with_history_are_the_keys_logged_beyond_step_zero(scientist, make_run):
    run, other = make_run(name="a"), make_run(name="b")
    run_log_batch(actor=scientist, run_id=run.pk, metrics=[
        {"key": "loss", "value": 1.0, "step": 0}, {"key": "loss", "value": 0.5, "step": 3},
        {"key": "test_accuracy", "value": 0.9, "step": 0}])
    run_log_batch(actor=scientist, run_id=other.pk, metrics=[{"key": "auc", "value": 0.7, "step": 2}])

    assert selectors.metric_keys_with_history(runs=[run]) == ["loss"]
    assert selectors.metric_keys_with_history(runs=[run, other]) == ["auc", "loss"]


def test_experiment_list_by_permission_lists_only_those_the_user_may_change(scientist, make_user, experiment):
    viewer = make_user("Viewer", username="viewer")

    assert list(selectors.experiment_list(user=viewer, perm="experiments.change_experiment")) == []
    assert experiment in selectors.experiment_list(user=scientist, perm="experiments.change_experiment")


def test_a_training_jobs_run_is_finished_only_with_its_own_job(scientist, make_run):
    from apps.experiments.models import TrainingJob

    run = make_run(name="manual")
    stranger = TrainingJob(pk=1, run_id=run.pk + 1)
    with pytest.raises(ValueError), transaction.atomic():
        run_finish(actor=None, run=run, status="finished", training_job=stranger)
    run.refresh_from_db()
    assert run.status == "running"
