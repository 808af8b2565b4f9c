"""Model versions: register from a finished run or from an uploaded skops
file, load a version's model, change its description and tags."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections import OrderedDict
from typing import BinaryIO

from django.db import transaction

from apps.core import modelio
from apps.core.errors import InvalidState, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.core.storage import delete_quietly, open_artifact, sha256_of, store_file
from apps.registry.choices import RegistryEvent
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services._events import announce

MODEL_PATH = "model/model.skops"
SIGNATURE_PATH = "model/signature.json"
INPUT_EXAMPLE_PATH = "model/input_example.json"
TEST_INDICES_PATH = "evaluation/test_indices.json"
INPUT_EXAMPLE_MAX_ROWS = 20


def _require_register(actor, registered_model: RegisteredModel) -> None:
    # require_perm answers 404 when the model is not even visible, so the
    # change check also covers viewing.
    require_perm(actor, "registry.add_modelversion")
    require_perm(actor, "registry.change_registeredmodel", registered_model)


def read_run_artifact(run, path: str) -> bytes | None:
    """The bytes of a run's artifact at ``path`` (None when the run has none),
    refused when they no longer match the SHA-256 recorded at upload."""
    artifact = run.artifacts.filter(path=path).first()
    if artifact is None:
        return None
    with open_artifact(artifact.file) as handle:
        data = handle.read()
    if artifact.sha256 and modelio.sha256_bytes(data) != artifact.sha256:
        raise ValidationFailed(f"The run's {path} does not match its recorded SHA-256.", code="artifact_hash_mismatch")
    return data


def _json_or_none(data: bytes | None):
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _clean_input_example(value) -> list:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        return []
    return value[:INPUT_EXAMPLE_MAX_ROWS]


def _create_version(*, registered_model: RegisteredModel, actor, **fields) -> ModelVersion:
    with transaction.atomic():
        # The row lock on the model serialises numbering: two registrations
        # at once get N and N+1, never the same number.
        model = RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
        model.latest_version += 1
        model.save(update_fields=["latest_version", "updated_at"])
        version = ModelVersion.objects.create(registered_model=model, version=model.latest_version,
                                              created_by=actor, **fields)
        audit_record(actor=actor, action="model_version.registered", target=version, after={
            "version": version.version, "sha256": version.sha256, "source_run": version.source_run_id,
            "dataset_version": version.dataset_version_id, "artifact": version.artifact,
        })
        announce(RegistryEvent.VERSION_CREATED, registered_model=model, payload={
            "registered_model": model.name, "version_id": version.pk, "version": version.version,
            "run_id": version.source_run_id, "created_by": actor.get_username(),
        })
    return version


def model_version_register(*, registered_model: RegisteredModel, run, actor, description: str = "") -> ModelVersion:
    """Version N of ``registered_model`` from a finished run: its skops model,
    signature, input example and latest metrics, with lineage to the run and
    its dataset version. The model file is shared with the run (artifact
    storage never overwrites a file)."""
    from apps.experiments.choices import RunStatus

    _require_register(actor, registered_model)
    require_perm(actor, "experiments.view_experiment", run.experiment)
    if run.status != RunStatus.FINISHED:
        raise InvalidState(f"Run {run.pk} is {run.status}; only finished runs can be registered.",
                           details={"run_status": run.status})
    artifact = run.artifacts.filter(path=MODEL_PATH).first()
    if artifact is None:
        raise ValidationFailed(f"Run {run.pk} has no {MODEL_PATH} artifact to register.", code="no_model_artifact")
    data = read_run_artifact(run, MODEL_PATH)
    modelio.check(data)
    signature = _json_or_none(read_run_artifact(run, SIGNATURE_PATH))
    task = signature.get("task") if isinstance(signature, dict) else None
    if task and task != registered_model.task_type:
        raise ValidationFailed(
            f"Run {run.pk} trained a {task} model; {registered_model.name} is a {registered_model.task_type} model.",
            code="task_type_mismatch")
    return _create_version(
        registered_model=registered_model, actor=actor, description=description or "",
        source_run=run, dataset_version=run.dataset_version, artifact=artifact.file,
        sha256=modelio.sha256_bytes(data), size_bytes=len(data),
        signature=signature if isinstance(signature, dict) else {},
        input_example=_clean_input_example(_json_or_none(read_run_artifact(run, INPUT_EXAMPLE_PATH))),
        metrics={m.key: m.value for m in run.latest_metrics.all()},
    )


def model_version_upload(
    *, registered_model: RegisteredModel, actor, data: bytes | BinaryIO, signature: dict, input_example=None,
    description: str = "", dataset_version=None,
) -> ModelVersion:
    """Version N from an uploaded file (bytes, or a file object such as the
    upload spooled to disk, which is never read into memory whole). Only
    skops archives naming nothing but trusted classes are accepted; a pickle
    or joblib file is refused with a 400 that says why, and a refused file
    leaves nothing stored. No platform training job trained it, so its metric
    and regression gates fail until an Approver sets the model's evaluation
    dataset version (or an Admin overrides them)."""
    _require_register(actor, registered_model)
    if not isinstance(signature, dict):
        raise ValidationFailed("signature must be a JSON object.",
                               details={"fields": {"signature": ["Not an object."]}})
    handle = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    # The upload handler hashed the file while it streamed; load() re-reads
    # it against that hash, and the stored copy must match it too.
    checked_sha256 = getattr(data, "sha256", None) or sha256_of(handle)[0]
    model = modelio.load(handle, expected_sha256=checked_sha256)
    if not hasattr(model, "predict"):
        raise modelio.ModelFileError("The uploaded object has no predict method; upload a fitted estimator.")
    if dataset_version is not None:
        require_perm(actor, "datasets.view_dataset", dataset_version.dataset)
    stored = store_file(handle, f"registry/{registered_model.name}/{uuid.uuid4().hex}.skops")
    try:
        if stored.sha256 != checked_sha256:
            raise modelio.ModelFileError("The uploaded file changed while it was being stored; upload it again.",
                                         code="model_hash_mismatch")
        return _create_version(
            registered_model=registered_model, actor=actor, description=description or "",
            dataset_version=dataset_version, artifact=stored.name, sha256=stored.sha256, size_bytes=stored.size,
            signature=signature, input_example=_clean_input_example(input_example or []), metrics={},
        )
    except Exception:
        delete_quietly(stored.name)
        raise


def model_version_update(*, version: ModelVersion, actor, description: str | None = None,
                         tags: dict | None = None) -> ModelVersion:
    require_perm(actor, "registry.change_registeredmodel", version.registered_model)
    if tags is not None and not isinstance(tags, dict):
        raise ValidationFailed("tags must be an object.")
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        before = {"description": locked.description, "tags": locked.tags}
        if description is not None:
            locked.description = description
        if tags is not None:
            locked.tags = tags
        locked.save(update_fields=["description", "tags"])
        audit_record(actor=actor, action="model_version.updated", target=locked, before=before,
                     after={"description": locked.description, "tags": locked.tags})
    return locked


# --- Loading ------------------------------------------------------------------------

class _ModelCache:
    """A few loaded models per process: versions are immutable (name and
    SHA-256 never change), so a cached model is never stale."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_models = _ModelCache()


def model_version_read_bytes(*, version: ModelVersion) -> bytes:
    with open_artifact(version.artifact) as handle:
        return handle.read()


def model_version_load(*, version: ModelVersion):
    """The version's fitted model, loaded with skops after checking its SHA-256
    and trusted types."""
    key = (version.artifact, version.sha256)
    model = _models.get(key)
    if model is None:
        model = modelio.loads(model_version_read_bytes(version=version), expected_sha256=version.sha256)
        _models.put(key, model)
    return model
