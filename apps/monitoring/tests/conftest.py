"""Fixtures of the monitoring tests: validated versions of lab submissions."""

from __future__ import annotations

import io

import pytest


def make_version(user, *, rows: int = 600, seed: int = 7, scenario: str = "reference", name: str = "lab-submissions",
                 frame=None):
    """A validated version of generated lab submissions (target ``qc_pass``)."""
    from apps.datasets import services as datasets
    from apps.datasets.generator import generate_submissions
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.filter(name=name).first() or datasets.dataset_create(
        actor=user, name=name, task_hint="classification", target_column="qc_pass")
    frame = generate_submissions(rows=rows, seed=seed, scenario=scenario) if frame is None else frame
    upload = io.BytesIO(frame.to_csv(index=False).encode())
    upload.name = "lab.csv"
    outcome = datasets.dataset_version_upload(dataset=dataset, actor=user, file=upload, filename="lab.csv")
    return datasets.dataset_version_validate(version_id=outcome.version.pk)


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="sci")


@pytest.fixture
def reference_version(scientist):
    return make_version(scientist, rows=1500, seed=1)


@pytest.fixture
def drifted_version(scientist):
    return make_version(scientist, rows=800, seed=2, scenario="freezer_failure")


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)
