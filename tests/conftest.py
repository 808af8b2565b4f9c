import pytest


@pytest.fixture(scope="module")
def api_objects(django_db_setup, django_db_blocker):
    """tests/api_seed.py's objects, made once per module inside a transaction
    rolled back at its end; each test runs in a savepoint within it (the
    ``db`` fixture)."""
    from django.db import transaction

    from tests.api_seed import seed_api_objects

    with django_db_blocker.unblock(), transaction.atomic():
        yield seed_api_objects()
        transaction.set_rollback(True)


@pytest.fixture
def make_lab_version():
    """``make_lab_version(user, *, rows=300, seed=7, name="lab-submissions")``:
    a validated version of generated lab submissions (target ``qc_pass``;
    ``turnaround_hours`` dropped, it would leak the label)."""
    from apps.experiments.tests.conftest import make_lab_version as make

    def make_valid(user, **options):
        version = make(user, **options)
        assert version.status == "valid", version.status_reason
        return version

    return make_valid


@pytest.fixture
def train_through_api(live_worker):
    """``train_through_api(api, dataset_version, estimator, hyperparameters,
    *, experiment)`` → the run id: a training job posted to
    ``/api/v1/training-jobs/`` (target ``qc_pass``) and run to its end by the
    live worker; fails the test unless the job finished."""
    from apps.experiments.models import TrainingJob

    def train(api, dataset_version, estimator: str, hyperparameters: dict, *, experiment: str) -> int:
        response = api.post("/api/v1/training-jobs/", {
            "experiment": experiment, "dataset_version_id": dataset_version.pk, "target_column": "qc_pass",
            "estimator": estimator, "hyperparameters": hyperparameters}, format="json")
        assert response.status_code == 201, response.content
        job_id = response.json()["id"]
        job = live_worker.wait_for(
            lambda: TrainingJob.objects.filter(pk=job_id, status__in=["finished", "failed"]).first(),
            timeout=300, what=f"the {estimator} training job")
        assert job.status == "finished", job.error
        return job.run_id

    return train
