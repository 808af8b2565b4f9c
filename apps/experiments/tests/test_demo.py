"""The demo seed: an experiment with queued training jobs, idempotent."""

import pytest

from apps.experiments import demo
from apps.experiments.choices import JobStatus
from apps.experiments.models import Experiment, TrainingJob
from apps.experiments.tests.conftest import make_lab_version

pytestmark = pytest.mark.django_db


def test_seed_queues_the_demo_jobs_once(make_user):
    scientist = make_user("Data Scientist", username="scientist")
    version = make_lab_version(scientist, rows=200)
    context = {"users": {"scientist": scientist}, "dataset_versions": {"reference": version}}
    demo.seed(context, password="x")
    experiment = Experiment.objects.get(name="sample-qc")
    assert context["experiment"] == experiment and experiment.owner == scientist
    assert len(context["training_jobs"]) == 4
    jobs = TrainingJob.objects.filter(parent__isnull=True)
    assert {job.estimator for job in jobs} >= {"logistic_regression", "random_forest", "hist_gradient_boosting"}
    assert jobs.filter(search_kind="random", search_iterations=4).exists()
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.QUEUED}
    demo.seed(context, password="x")
    assert TrainingJob.objects.filter(parent__isnull=True).count() == 4
    assert Experiment.objects.filter(name="sample-qc").count() == 1


def test_seed_without_a_valid_version_trains_nothing(make_user):
    scientist = make_user("Data Scientist", username="scientist")
    context = {"users": {"scientist": scientist}, "dataset_versions": {}}
    demo.seed(context, password="x")
    assert context["training_jobs"] == [] and not TrainingJob.objects.exists()
