"""Fixtures of the datasets tests: lab files on disk and profiled schemas."""

from __future__ import annotations

import pytest

from apps.datasets import fileformats, profiling, services
from apps.datasets.generator import generate_submissions


def profile_path(path, *, target: str = "qc_pass", expectations=None):
    """Sniff and profile a file on disk the way the validation task does."""
    file_format = fileformats.format_for_filename(str(path))
    inspector = fileformats.UploadInspector()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            inspector.feed(chunk)
    inspector.finish()
    sniffed = fileformats.sniff(str(path), file_format=file_format, head=inspector.head,
                                utf8_valid=inspector.utf8_valid, size=inspector.size)
    result = profiling.profile_file(lambda: open(path, "rb"), sniffed=sniffed,  # noqa: SIM115 - closed by the profiler
                                    size_bytes=inspector.size, target=target, expectations=expectations or [])
    return sniffed, result


@pytest.fixture(scope="session")
def reference_frame():
    return generate_submissions(rows=1500, seed=42)


@pytest.fixture(scope="session")
def reference_csv(tmp_path_factory, reference_frame):
    path = tmp_path_factory.mktemp("lab") / "submissions.csv"
    reference_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def reference_profile(reference_csv):
    return profile_path(reference_csv)


@pytest.fixture
def isolated_storage(settings, tmp_path):
    """Artifact storage in a fresh folder, so a test can assert that nothing
    was left behind. (Not for tests with a worker process: it keeps the
    session's storage.)"""
    storages = {**settings.STORAGES}
    artifacts = {**storages["artifacts"], "OPTIONS": {**storages["artifacts"]["OPTIONS"],
                                                      "location": str(tmp_path / "artifacts")}}
    settings.STORAGES = {**storages, "artifacts": artifacts, "default": artifacts}
    return tmp_path / "artifacts"


# --- The API tests' user, client and dataset (test_api.py, test_api_bad_input.py) ---------------

@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="sci")


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)


@pytest.fixture
def dataset(scientist):
    return services.dataset_create(actor=scientist, name="submissions", task_hint="classification",
                                   target_column="qc_pass")


@pytest.fixture(scope="module")
def lab_csv() -> bytes:
    return generate_submissions(rows=300, seed=11).to_csv(index=False).encode()
