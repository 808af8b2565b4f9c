import pytest
from django.db import transaction


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="sci")


@pytest.fixture
def experiment(scientist):
    from apps.experiments.services import experiment_create

    return experiment_create(actor=scientist, name="qc-model", description="library-prep QC")


@pytest.fixture
def make_run(scientist, experiment):
    from apps.experiments.services import run_create

    def _make(exp=None, user=None, **kwargs):
        with transaction.atomic():
            return run_create(actor=user or scientist, experiment=exp or experiment, **kwargs)

    return _make


def make_lab_version(user, *, rows: int = 300, seed: int = 7, name: str = "lab-submissions"):
    """A validated version of generated lab submissions (target qc_pass;
    turnaround_hours dropped, it would leak the label)."""
    import io

    from apps.datasets import services as datasets
    from apps.datasets.generator import generate_submissions
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.filter(name=name).first() or datasets.dataset_create(
        actor=user, name=name, task_hint="classification", target_column="qc_pass")
    if not dataset.feature_spec:
        datasets.dataset_feature_spec_set(dataset=dataset, actor=user,
                                          spec={"columns": {"turnaround_hours": {"kind": "drop"}}})
    upload = io.BytesIO(generate_submissions(rows=rows, seed=seed).to_csv(index=False).encode())
    upload.name = "lab.csv"
    outcome = datasets.dataset_version_upload(dataset=dataset, actor=user, file=upload, filename="lab.csv")
    return datasets.dataset_version_validate(version_id=outcome.version.pk)


@pytest.fixture
def lab_version(scientist):
    return make_lab_version(scientist)
