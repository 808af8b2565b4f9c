"""Writes of the datasets app: datasets, uploads, validation, expectations,
feature specs. Every state change is audited in its own transaction."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.errors import Conflict, PayloadTooLarge, ValidationFailed
from apps.core.events import publish
from apps.core.permissions import grant_on_create, require_perm
from apps.core.services import audit_record, snapshot
from apps.core.storage import artifact_storage, delete_quietly, open_artifact
from apps.datasets import expectations as expectation_rules
from apps.datasets import fileformats, profiling
from apps.datasets.choices import ExpectationKind, Severity, TaskHint, VersionStatus
from apps.datasets.features import FeatureSpecError, validate_feature_spec
from apps.datasets.models import Dataset, DatasetVersion, Expectation

logger = logging.getLogger(__name__)

VALIDATED_EVENT = "datasets.dataset_version.validated"
DATASET_FIELDS = ["name", "description", "task_hint", "target_column", "owner"]
PROGRESS_INTERVAL_S = 0.5


# --- Datasets -----------------------------------------------------------------------

def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A dataset needs a name.", details={"fields": {"name": ["Required."]}})
    if len(name) > 200:
        raise ValidationFailed("The name is longer than 200 characters.", details={"fields": {"name": ["Too long."]}})
    return name


def _check_task_hint(task_hint: str) -> None:
    if task_hint not in TaskHint.values:
        raise ValidationFailed(f"task_hint must be one of {', '.join(TaskHint.values)}.",
                               details={"fields": {"task_hint": ["Unknown value."]}})


def dataset_create(*, user, name: str, description: str = "", task_hint: str = TaskHint.UNSPECIFIED,
                   target_column: str = "", feature_spec: dict | None = None) -> Dataset:
    """Create a dataset owned by ``user`` (who needs ``datasets.add_dataset``)."""
    require_perm(user, "datasets.add_dataset")
    name = _clean_name(name)
    _check_task_hint(task_hint)
    spec = {}
    if feature_spec:
        spec = _validated_spec(feature_spec, schema=None, target=target_column)
    with transaction.atomic():
        if Dataset.objects.filter(name=name).exists():
            raise Conflict(f"A dataset named {name!r} already exists.", details={"fields": {"name": ["Taken."]}})
        try:
            with transaction.atomic():
                dataset = Dataset.objects.create(name=name, description=description or "", owner=user,
                                                 task_hint=task_hint, target_column=(target_column or "").strip(),
                                                 feature_spec=spec)
        except IntegrityError:
            raise Conflict(f"A dataset named {name!r} already exists.", details={"fields": {"name": ["Taken."]}})
        grant_on_create(dataset, owner=user)
        audit_record(actor=user, action="dataset.created", target=dataset, after=snapshot(dataset, DATASET_FIELDS))
    return dataset


def dataset_update(*, dataset: Dataset, user, **changes) -> Dataset:
    """Change a dataset's name, description, task hint or target column."""
    require_perm(user, "datasets.change_dataset", dataset)
    allowed = {"name", "description", "task_hint", "target_column"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    if "name" in changes:
        changes["name"] = _clean_name(changes["name"])
    if "task_hint" in changes:
        _check_task_hint(changes["task_hint"])
    if "target_column" in changes:
        changes["target_column"] = (changes["target_column"] or "").strip()
        schema = latest_schema(dataset)
        if changes["target_column"] and schema and changes["target_column"] not in _column_names(schema):
            raise ValidationFailed(f"The latest valid version has no column {changes['target_column']!r}.",
                                   details={"fields": {"target_column": ["No such column."]}})
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = snapshot(dataset, DATASET_FIELDS)
        if "name" in changes and Dataset.objects.exclude(pk=dataset.pk).filter(name=changes["name"]).exists():
            raise Conflict(f"A dataset named {changes['name']!r} already exists.")
        for field, value in changes.items():
            setattr(dataset, field, value)
        dataset.save()
        audit_record(actor=user, action="dataset.updated", target=dataset, before=before,
                     after=snapshot(dataset, DATASET_FIELDS))
    return dataset


def latest_schema(dataset: Dataset) -> dict | None:
    """The schema of the dataset's newest valid version (what specs are checked against)."""
    version = dataset.versions.filter(status=VersionStatus.VALID).order_by("-version").only("schema").first()
    return version.schema if version is not None else None


def _column_names(schema: dict) -> list[str]:
    return [c["name"] for c in schema.get("columns", [])]


def _validated_spec(spec: dict, *, schema: dict | None, target: str) -> dict:
    try:
        return validate_feature_spec(spec=spec, schema=schema, target=target)
    except FeatureSpecError as exc:
        raise ValidationFailed(str(exc), code="invalid_feature_spec", details={"fields": exc.errors})


def dataset_feature_spec_set(*, dataset: Dataset, user, spec: dict) -> Dataset:
    """Replace the dataset's feature spec, checked against its newest valid
    version's schema (when it has one). An empty spec means the defaults."""
    require_perm(user, "datasets.change_dataset", dataset)
    normalised = _validated_spec(spec or {}, schema=latest_schema(dataset), target=dataset.target_column)
    if not spec:
        normalised = {}
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = dataset.feature_spec
        dataset.feature_spec = normalised
        dataset.save(update_fields=["feature_spec", "updated_at"])
        audit_record(actor=user, action="dataset.feature_spec_changed", target=dataset,
                     before={"feature_spec": before}, after={"feature_spec": normalised})
    return dataset


# --- Expectations ---------------------------------------------------------------------

def _check_expectation(*, kind: str, column: str, params: dict, severity: str) -> None:
    errors = expectation_rules.check_definition(kind=kind, column=column, params=params)
    if severity not in Severity.values:
        errors["severity"] = f"must be one of {', '.join(Severity.values)}"
    if errors:
        where, what = next(iter(errors.items()))
        raise ValidationFailed(f"The expectation is invalid: {where}: {what}.", details={"fields": errors})


def expectation_create(*, dataset: Dataset, user, kind: str, column: str = "", params: dict | None = None,
                       severity: str = Severity.ERROR) -> Expectation:
    """Add an expectation; it applies to versions validated from now on."""
    require_perm(user, "datasets.change_dataset", dataset)
    column, params = (column or "").strip(), params or {}
    _check_expectation(kind=kind, column=column, params=params, severity=severity)
    with transaction.atomic():
        expectation = Expectation.objects.create(dataset=dataset, kind=kind, column=column, params=params,
                                                 severity=severity, created_by=user)
        audit_record(actor=user, action="expectation.created", target=expectation,
                     after=expectation.as_rule() | {"dataset": dataset.pk})
    return expectation


def expectation_update(*, expectation: Expectation, user, **changes) -> Expectation:
    require_perm(user, "datasets.change_dataset", expectation.dataset)
    unknown = set(changes) - {"kind", "column", "params", "severity"}
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        expectation = Expectation.objects.select_for_update().get(pk=expectation.pk)
        before = expectation.as_rule()
        merged = before | {k: v for k, v in changes.items()}
        merged["column"] = (merged.get("column") or "").strip()
        _check_expectation(kind=merged["kind"], column=merged["column"], params=merged["params"] or {},
                           severity=merged["severity"])
        for field in ("kind", "column", "params", "severity"):
            setattr(expectation, field, merged[field])
        expectation.save()
        audit_record(actor=user, action="expectation.updated", target=expectation, before=before,
                     after=expectation.as_rule())
    return expectation


def expectation_delete(*, expectation: Expectation, user) -> None:
    require_perm(user, "datasets.change_dataset", expectation.dataset)
    with transaction.atomic():
        before = expectation.as_rule() | {"dataset": expectation.dataset_id}
        audit_record(actor=user, action="expectation.deleted", target=expectation, before=before)
        expectation.delete()


def expectation_set_from_schema(*, dataset: Dataset, user, schema: dict, columns: list[str] | None = None) -> int:
    """Turn an inferred schema into expectations (column present with its
    type, not null when it had no missing values). Returns how many were added."""
    require_perm(user, "datasets.change_dataset", dataset)
    existing = {(e.kind, e.column) for e in dataset.expectations.all()}
    added = 0
    for column in schema.get("columns", []):
        name = column["name"]
        if columns is not None and name not in columns:
            continue
        wanted = [(ExpectationKind.COLUMN_TYPE, {"type": column["type"]})]
        if column.get("null_share", 0) == 0:
            wanted.append((ExpectationKind.NOT_NULL, {}))
        for kind, params in wanted:
            if (kind, name) not in existing:
                expectation_create(dataset=dataset, user=user, kind=kind, column=name, params=params)
                added += 1
    return added


# --- Versions: upload ----------------------------------------------------------------

@dataclass(frozen=True)
class UploadOutcome:
    """The version an upload resolved to; ``created`` is False when the same
    content was already a version of the dataset."""

    version: DatasetVersion
    created: bool


def _bad_file(exc: fileformats.BadFile) -> ValidationFailed:
    return ValidationFailed(exc.message, code=exc.code, details=exc.details)


def dataset_version_upload(*, dataset: Dataset, user, file, filename: str | None = None, note: str = "",
                           parent: DatasetVersion | None = None) -> UploadOutcome:
    """Store an uploaded file as the next version of ``dataset`` and queue its validation.

    The file is copied once to a temporary file while its SHA-256, its size
    (against ``settings.DATASET_MAX_UPLOAD_SIZE``, also for bodies without a
    Content-Length) and its UTF-8 validity are computed, so the content is
    never held in memory. The copy is then sniffed (format, encoding,
    delimiter, header); a file that cannot be a table is refused with a 4xx
    and leaves nothing behind. Identical content returns the existing
    version. Call it outside a transaction: the stored file is removed when
    the version row cannot be written, which only works when this function
    owns the transaction."""
    require_perm(user, "datasets.view_dataset", dataset)
    require_perm(user, "datasets.add_datasetversion")
    require_perm(user, "datasets.change_dataset", dataset)
    filename = os.path.basename((filename or getattr(file, "name", "") or "").replace("\\", "/"))[:255]
    try:
        file_format = fileformats.format_for_filename(filename)
    except fileformats.BadFile as exc:
        raise _bad_file(exc)
    if parent is not None and parent.dataset_id != dataset.pk:
        raise ValidationFailed("The parent version belongs to another dataset.",
                               details={"fields": {"parent": ["Not a version of this dataset."]}})
    extension = os.path.splitext(filename)[1].lower()
    limit = settings.DATASET_MAX_UPLOAD_SIZE
    with tempfile.NamedTemporaryFile(prefix="dataset-upload-", suffix=extension,
                                     dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        try:
            inspector = fileformats.copy_inspecting(file, spool, limit=limit)
        except fileformats.UploadTooLarge as exc:
            raise PayloadTooLarge(exc.message, details=exc.details)
        try:
            sniffed = fileformats.sniff(spool.name, file_format=file_format, head=inspector.head,
                                        utf8_valid=inspector.utf8_valid, size=inspector.size)
        except fileformats.BadFile as exc:
            raise _bad_file(exc)
        existing = DatasetVersion.objects.filter(dataset=dataset, sha256=inspector.sha256).first()
        if existing is not None:
            return UploadOutcome(version=existing, created=False)
        spool.seek(0)
        stored_name = ""
        try:
            with transaction.atomic():
                Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
                existing = DatasetVersion.objects.filter(dataset=dataset, sha256=inspector.sha256).first()
                if existing is not None:
                    return UploadOutcome(version=existing, created=False)
                number = (dataset.versions.aggregate(n=Max("version"))["n"] or 0) + 1
                stored_name = artifact_storage().save(
                    f"datasets/{dataset.pk}/v{number}-{inspector.sha256[:16]}{extension}", File(spool))
                version = DatasetVersion.objects.create(
                    dataset=dataset, version=number, parent=parent, file=stored_name,
                    original_filename=filename, file_format=file_format, encoding=sniffed.encoding,
                    delimiter=sniffed.delimiter, sha256=inspector.sha256, size_bytes=inspector.size,
                    column_count=len(sniffed.columns), row_count=sniffed.num_rows, note=note or "",
                    created_by=user, progress_message="Queued for validation",
                )
                audit_record(actor=user, action="dataset_version.uploaded", target=version, after={
                    "dataset": dataset.pk, "version": number, "sha256": inspector.sha256,
                    "size_bytes": inspector.size, "file_format": file_format, "encoding": sniffed.encoding,
                    "original_filename": filename, "parent": parent.pk if parent else None,
                })
                _enqueue_validation(version.pk)
        except IntegrityError:
            # The same content won a race for this dataset: answer with it.
            delete_quietly(stored_name)
            existing = DatasetVersion.objects.filter(dataset=dataset, sha256=inspector.sha256).first()
            if existing is None:
                raise
            return UploadOutcome(version=existing, created=False)
        except BaseException:
            delete_quietly(stored_name)
            raise
    return UploadOutcome(version=version, created=True)


def _enqueue_validation(version_id: int) -> None:
    from apps.datasets.tasks import validate_dataset_version

    transaction.on_commit(partial(validate_dataset_version.delay, version_id))


def dataset_version_revalidate(*, version: DatasetVersion, user) -> DatasetVersion:
    """Queue the validation again: after expectations changed, or when a
    worker died while the version was ``validating``."""
    require_perm(user, "datasets.change_dataset", version.dataset)
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        before = {"status": version.status}
        version.status = VersionStatus.PENDING
        version.progress = 0.0
        version.progress_message = "Queued for validation"
        version.save(update_fields=["status", "progress", "progress_message"])
        audit_record(actor=user, action="dataset_version.revalidation_requested", target=version, before=before,
                     after={"status": version.status})
        _enqueue_validation(version.pk)
    return version


# --- Versions: validation --------------------------------------------------------------

class _ProgressWriter:
    """Writes progress to the row at most every PROGRESS_INTERVAL_S seconds."""

    def __init__(self, version_id: int):
        self.version_id = version_id
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        DatasetVersion.objects.filter(pk=self.version_id, status=VersionStatus.VALIDATING).update(
            progress=round(min(max(fraction, 0.0), 0.99), 4), progress_message=message[:200])


def dataset_version_validate(*, version_id: int) -> DatasetVersion:
    """Infer the schema, check the expectations and write the quality report.

    Idempotent: a version already ``valid`` or ``invalid`` is returned as it
    is; one left ``pending`` or ``validating`` (a worker died) is validated
    from the start. Content problems make the version ``invalid`` with the
    reason; the file itself is never changed."""
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version_id)
        if version.status in (VersionStatus.VALID, VersionStatus.INVALID):
            return version
        version.status = VersionStatus.VALIDATING
        version.progress = 0.01
        version.progress_message = "Validation started"
        version.save(update_fields=["status", "progress", "progress_message"])
    dataset = version.dataset
    rules = [e.as_rule() for e in dataset.expectations.order_by("id")]
    try:
        from apps.datasets.selectors import dataset_version_sniffed

        sniffed = dataset_version_sniffed(version=version, from_file=True)
        result = profiling.profile_file(
            lambda: open_artifact(version.file), sniffed=sniffed, size_bytes=version.size_bytes,
            target=dataset.target_column, expectations=rules, progress=_ProgressWriter(version.pk),
        )
    except fileformats.BadFile as exc:
        return _finish(version.pk, status=VersionStatus.INVALID, reason=exc.message)
    except Exception as exc:
        if isinstance(exc, OSError):
            raise  # storage trouble: the task retries, the version stays re-validatable
        logger.exception("validation of dataset version %s failed", version.pk)
        _finish(version.pk, status=VersionStatus.INVALID,
                reason=f"Validation failed unexpectedly ({type(exc).__name__}: {exc}). Re-validate to retry.")
        raise
    status = VersionStatus.INVALID if result.problems else VersionStatus.VALID
    return _finish(version.pk, status=status, reason="\n".join(result.problems), result=result)


def _finish(version_id: int, *, status: str, reason: str, result: profiling.ProfileResult | None = None):
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version_id)
        before = {"status": version.status}
        version.status = status
        version.status_reason = reason
        version.progress = 1.0
        version.progress_message = "Valid" if status == VersionStatus.VALID else "Invalid"
        version.validated_at = timezone.now()
        if result is not None:
            version.schema = result.schema
            version.quality_report = result.quality_report
            version.quality_score = result.quality_report["score"]
            version.expectation_results = result.expectation_results
            version.row_count = result.row_count
            version.column_count = result.column_count
        version.save()
        audit_record(actor=None, action="dataset_version.validated", target=version, before=before, after={
            "status": status, "reason": reason[:2000], "quality_score": version.quality_score,
            "row_count": version.row_count,
        })
        publish(VALIDATED_EVENT, {"dataset_version_id": version.pk, "dataset_id": version.dataset_id,
                                  "status": status})
    return version
