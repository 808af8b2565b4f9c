"""The demo seed: a reference and a drifted version, validated, idempotent."""

import io

import pytest

from apps.datasets import demo
from apps.datasets.models import Dataset, DatasetVersion, Expectation
from apps.datasets.selectors import dataset_version_read_frame

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]


def test_seed_loads_reference_and_drifted_versions_and_is_idempotent():
    from apps.core import demo as core_demo

    context: dict = {}
    core_demo.seed(context, password="pw-Secret-123")
    out = io.StringIO()
    demo.seed(context, password="pw-Secret-123", stdout=out)

    dataset = context["datasets"]["submissions"]
    reference = context["dataset_versions"]["reference"]
    drifted = context["dataset_versions"]["drifted"]
    assert dataset.name == "lab-sample-submissions" and dataset.owner.username == "scientist"
    assert dataset.target_column == "qc_pass" and dataset.task_hint == "classification"
    assert reference.status == "valid" and drifted.status == "valid", (reference.status_reason,
                                                                       drifted.status_reason)
    assert reference.row_count == 4000 and drifted.parent_id == reference.pk
    warnings = [r for r in drifted.expectation_results if not r["passed"]]
    assert [w["column"] for w in warnings] == ["rin"], "the freezer failure trips the RIN warning"
    assert all(r["passed"] for r in reference.expectation_results)
    assert "turnaround_hours" in dataset.feature_spec["columns"]
    assert "lab-sample-submissions v1 (reference)" in out.getvalue()

    frame = dataset_version_read_frame(version=reference)
    drifted_frame = dataset_version_read_frame(version=drifted)
    assert drifted_frame["rin"].mean() < frame["rin"].mean() - 1

    counts = (Dataset.objects.count(), DatasetVersion.objects.count(), Expectation.objects.count())
    again: dict = {}
    core_demo.seed(again, password="pw-Secret-123")
    demo.seed(again, password="pw-Secret-123")
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), Expectation.objects.count()) == counts
    assert again["dataset_versions"]["reference"].pk == reference.pk
