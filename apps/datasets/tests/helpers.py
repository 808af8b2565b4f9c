"""Helpers of the datasets API tests (test_api.py, test_api_bad_input.py)."""

from __future__ import annotations

import os

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.storage import artifact_storage
from apps.datasets.models import DatasetVersion
from apps.datasets.tasks import dataset_version_validate


def stored_files() -> set[str]:
    root = artifact_storage().location
    found = set()
    for folder, _, files in os.walk(os.path.join(root, "datasets")):
        found.update(os.path.relpath(os.path.join(folder, name), root) for name in files)
    return found


def upload(api, dataset, name: str, content: bytes, **extra):
    return api.post(f"/api/v1/datasets/{dataset.pk}/versions/",
                    {"file": SimpleUploadedFile(name, content), **extra}, format="multipart")


def validated(version_id: int) -> DatasetVersion:
    assert dataset_version_validate.run(version_id) in ("valid", "invalid")
    return DatasetVersion.objects.get(pk=version_id)
