import pytest
from django.db import transaction


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="sci")


@pytest.fixture
def experiment(scientist):
    from apps.experiments.services import experiment_create

    return experiment_create(user=scientist, name="qc-model", description="library-prep QC")


@pytest.fixture
def make_run(scientist, experiment):
    from apps.experiments.services import run_create

    def _make(exp=None, user=None, **kwargs):
        with transaction.atomic():
            return run_create(user=user or scientist, experiment=exp or experiment, **kwargs)

    return _make
