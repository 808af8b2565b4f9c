"""Writes on dataset versions: upload, re-validation and the validation itself."""

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

from apps.core.errors import PayloadTooLarge, ValidationFailed
from apps.core.events import publish
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.core.storage import artifact_storage, delete_quietly, open_artifact
from apps.datasets import fileformats, profiling
from apps.datasets.choices import VersionStatus
from apps.datasets.models import Dataset, DatasetVersion

logger = logging.getLogger(__name__)

VALIDATED_EVENT = "datasets.dataset_version.validated"
PROGRESS_INTERVAL_S = 0.5

# --- Versions: upload ----------------------------------------------------------------

@dataclass(frozen=True)
class UploadOutcome:
    """The version an upload resolved to; ``created`` is False when the same
    content was already a version of the dataset."""

    version: DatasetVersion
    created: bool


def _bad_file(exc: fileformats.BadFile) -> ValidationFailed:
    return ValidationFailed(exc.message, code=exc.code, details=exc.details)


def read_options_clean(options: dict | None) -> dict:
    """The uploader's read options, checked (400 ``invalid_read_options`` naming the option)."""
    try:
        return fileformats.clean_options(options)
    except fileformats.OptionError as exc:
        raise ValidationFailed(str(exc), code="invalid_read_options", details={"fields": exc.fields})


def dataset_version_upload(*, dataset: Dataset, actor, file, filename: str | None = None, note: str = "",
                           parent: DatasetVersion | None = None, options: dict | None = None) -> UploadOutcome:
    """Store an uploaded file as the next version of ``dataset`` and queue its validation.

    The file is copied once to a temporary file while its SHA-256, its size
    (against ``settings.DATASET_MAX_UPLOAD_SIZE``, also for bodies without a
    Content-Length) and its UTF-8 validity are computed, so the content is
    never held in memory. The copy is then sniffed (format, encoding,
    delimiter, header); a file that cannot be a table is refused with a 4xx
    and leaves nothing behind. Identical content returns the existing
    version. Call it outside a transaction: the stored file is removed when
    the version row cannot be written, which only works when this function
    owns the transaction. ``options`` override what sniffing would detect
    (delimiter, decimal, thousands, encoding, header_row, sheet, column_types);
    the resulting read options are stored on the version."""
    require_perm(actor, "datasets.view_dataset", dataset)
    require_perm(actor, "datasets.add_datasetversion")
    require_perm(actor, "datasets.change_dataset", dataset)
    options = read_options_clean(options)
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
                                        utf8_valid=inspector.utf8_valid, size=inspector.size, options=options)
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
                    delimiter=sniffed.delimiter, read_options=sniffed.read_options(), sha256=inspector.sha256,
                    size_bytes=inspector.size,
                    column_count=len(sniffed.columns), row_count=sniffed.num_rows, note=note or "",
                    created_by=actor, progress_message="Queued for validation",
                )
                audit_record(actor=actor, action="dataset_version.uploaded", target=version, after={
                    "dataset": dataset.pk, "version": number, "sha256": inspector.sha256,
                    "size_bytes": inspector.size, "file_format": file_format, "encoding": sniffed.encoding,
                    "original_filename": filename, "parent": parent.pk if parent else None,
                    "read_options": sniffed.read_options(),
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
    from apps.datasets.tasks import dataset_version_validate

    transaction.on_commit(partial(dataset_version_validate.delay, version_id))


def dataset_version_revalidate(*, version: DatasetVersion, actor) -> DatasetVersion:
    """Queue the validation again: after expectations changed, or when a
    worker died while the version was ``validating``."""
    require_perm(actor, "datasets.change_dataset", version.dataset)
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        before = {"status": version.status}
        version.status = VersionStatus.PENDING
        version.progress = 0.0
        version.progress_message = "Queued for validation"
        version.save(update_fields=["status", "progress", "progress_message"])
        audit_record(actor=actor, action="dataset_version.revalidation_requested", target=version, before=before,
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


def dataset_version_validate(*, version_id: int, actor=None) -> DatasetVersion | None:
    """Infer the schema, check the expectations and write the quality report.

    Idempotent: a version already ``valid`` or ``invalid`` is returned as it
    is; one left ``pending`` or ``validating`` (a worker died) is validated
    from the start; a version deleted meanwhile gives ``None``. Content
    problems make the version ``invalid`` with the reason; the file itself is
    never changed. ``actor`` is ``None`` when the platform validates (the
    worker)."""
    with transaction.atomic():
        version = (DatasetVersion.objects.select_for_update().select_related("dataset")
                   .filter(pk=version_id).first())
        if version is None or version.status in (VersionStatus.VALID, VersionStatus.INVALID):
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
            reference=_reference_schema(version), schema_severity=dataset.schema_check_severity,
        )
    except fileformats.BadFile as exc:
        return _finish(version.pk, status=VersionStatus.INVALID, reason=exc.message, actor=actor)
    except Exception as exc:
        if isinstance(exc, OSError):
            raise  # storage trouble: the task retries, the version stays re-validatable
        logger.exception("validation of dataset version %s failed", version.pk)
        _finish(version.pk, status=VersionStatus.INVALID, actor=actor,
                reason=f"Validation failed unexpectedly ({type(exc).__name__}: {exc}). Re-validate to retry.")
        raise
    status = VersionStatus.INVALID if result.problems else VersionStatus.VALID
    return _finish(version.pk, status=status, reason="\n".join(result.problems), result=result, actor=actor)


def _reference_schema(version: DatasetVersion) -> dict | None:
    """What a new version is compared with: the dataset's pinned schema
    version, else the newest valid version before this one."""
    dataset = version.dataset
    if dataset.schema_version_id and dataset.schema_version_id != version.pk:
        pinned = DatasetVersion.objects.filter(pk=dataset.schema_version_id).only("schema", "version").first()
        if pinned is not None and pinned.schema:
            return pinned.schema | {"version": pinned.version}
    previous = (DatasetVersion.objects.filter(dataset=dataset, status=VersionStatus.VALID, version__lt=version.version)
                .exclude(schema=None).order_by("-version").only("schema", "version").first())
    return previous.schema | {"version": previous.version} if previous is not None else None


def _finish(version_id: int, *, status: str, reason: str, result: profiling.ProfileResult | None = None,
            actor=None):
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
        audit_record(actor=actor, action="dataset_version.validated", target=version, before=before, after={
            "status": status, "reason": reason[:2000], "quality_score": version.quality_score,
            "row_count": version.row_count,
        })
        publish(VALIDATED_EVENT, {"dataset_version_id": version.pk, "dataset_id": version.dataset_id,
                                  "status": status})
    return version
