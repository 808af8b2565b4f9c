"""Model version uploads by API: the file streams to disk (hashed and
size-checked on the way), and a file that names anything but the trusted
classes is refused with 400 invalid_model_file, runs nothing and leaves
nothing stored."""

import json
import os
import pickle

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import RequestFactory

from apps.core import modelio
from apps.core.errors import PayloadTooLarge
from apps.core.storage import artifact_storage
from apps.core.tests.test_modelio_attacks import PAYLOADS
from apps.registry import services
from apps.registry.models import ModelVersion
from apps.registry.tests import factories
from apps.registry.uploadhandlers import ModelFileUploadHandler

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/sample-qc/versions/"


@pytest.fixture
def sci(people, client_for):
    client = client_for(people.scientist)
    created = client.post("/api/v1/models/", {"name": "sample-qc", "task_type": "classification"}, format="json")
    assert created.status_code == 201, created.content
    return client


def stored_models() -> set[str]:
    root = artifact_storage().location
    found = set()
    for folder, _, files in os.walk(os.path.join(root, "registry")):
        found.update(os.path.relpath(os.path.join(folder, name), root) for name in files)
    return found


def upload(client, name: str, content: bytes):
    return client.post(URL, {"file": SimpleUploadedFile(name, content),
                             "signature": json.dumps(factories.signature_for())}, format="multipart")


def test_an_uploaded_model_streams_to_disk_and_is_stored_as_hashed(sci, data, monkeypatch):
    received = []
    real = services.model_version_upload

    def spy(**kwargs):
        received.append(kwargs["data"])
        return real(**kwargs)

    monkeypatch.setattr(services, "model_version_upload", spy)
    content = modelio.dumps(factories.fit_pipeline(data.frame))
    response = upload(sci, "model.skops", content)
    assert response.status_code == 201, response.content
    assert isinstance(received[0], TemporaryUploadedFile), "small files too go to disk, never memory"
    assert received[0].sha256 == modelio.sha256_bytes(content) == response.json()["sha256"]


@pytest.mark.parametrize("payload", ["sklearn function as constructor", "scipy.sparse function",
                                     "sklearn function nested in a fitted pipeline"])
def test_a_crafted_model_file_is_refused_runs_nothing_and_stores_nothing(sci, payload, tmp_path):
    marker = tmp_path / ("pwned.npz" if "scipy" in payload else "pwned")
    before = stored_models()
    response = upload(sci, "model.skops", PAYLOADS[payload](marker))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_model_file"
    assert error["details"]["untrusted_types"]
    assert not marker.exists()
    assert not ModelVersion.objects.exists() and stored_models() == before


def test_a_pickle_is_refused_on_its_first_bytes(sci, data):
    before = stored_models()
    response = upload(sci, "model.pkl", pickle.dumps(factories.fit_pipeline(data.frame)))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["detected_format"] == "pickle"
    assert not ModelVersion.objects.exists() and stored_models() == before


def test_the_model_upload_handler_stops_at_the_limit_and_removes_its_spool_file():
    handler = ModelFileUploadHandler(RequestFactory().post("/"), limit=10_000)
    handler.new_file("file", "model.skops", "application/octet-stream", None)
    handler.receive_data_chunk(b"PK" + b"a" * 7998, 0)
    temp_path = handler.file.temporary_file_path()
    with pytest.raises(PayloadTooLarge):
        handler.receive_data_chunk(b"a" * 8000, 8000)
    assert not os.path.exists(temp_path)

    handler = ModelFileUploadHandler(RequestFactory().post("/"), limit=10_000)
    handler.new_file("file", "model.pkl", "application/octet-stream", None)
    temp_path = handler.file.temporary_file_path()
    with pytest.raises(modelio.ModelFileError, match="pickle"):
        handler.receive_data_chunk(b"\x80\x04" + b"a" * 100, 0)
    assert not os.path.exists(temp_path)


def test_an_upload_over_the_limit_is_a_clear_413(sci, data, settings):
    settings.MODEL_MAX_UPLOAD_SIZE = 1000
    before = stored_models()
    response = upload(sci, "model.skops", modelio.dumps(factories.fit_pipeline(data.frame)))
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert not ModelVersion.objects.exists() and stored_models() == before
