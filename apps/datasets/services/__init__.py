"""Writes of the datasets app: datasets, uploads, validation, expectations,
feature specs. Every state change is audited in its own transaction."""

from apps.datasets.services.datasets import (
    DATASET_FIELDS,
    dataset_create,
    dataset_feature_spec_set,
    dataset_update,
    latest_schema,
)
from apps.datasets.services.expectations import (
    expectation_create,
    expectation_delete,
    expectation_set_from_schema,
    expectation_update,
)
from apps.datasets.services.preview import dataset_version_preview
from apps.datasets.services.versions import (
    PROGRESS_INTERVAL_S,
    VALIDATED_EVENT,
    UploadOutcome,
    dataset_version_revalidate,
    dataset_version_upload,
    dataset_version_validate,
    read_options_clean,
)

__all__ = [
    "DATASET_FIELDS",
    "PROGRESS_INTERVAL_S",
    "VALIDATED_EVENT",
    "UploadOutcome",
    "dataset_create",
    "dataset_feature_spec_set",
    "dataset_update",
    "dataset_version_preview",
    "dataset_version_revalidate",
    "dataset_version_upload",
    "dataset_version_validate",
    "expectation_create",
    "expectation_delete",
    "expectation_set_from_schema",
    "expectation_update",
    "latest_schema",
    "read_options_clean",
]
