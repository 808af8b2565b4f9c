"""Artifacts of a run: files stored under a relative path, write-once, within
the run's quota (``RUN_ARTIFACT_QUOTA_BYTES``)."""

from __future__ import annotations

import mimetypes
import posixpath

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from apps.core.errors import Conflict, InvalidState, PayloadTooLarge, ValidationFailed
from apps.core.storage import delete_quietly, store_file
from apps.experiments.choices import RunStatus
from apps.experiments.models import Artifact, Run
from apps.experiments.services.runs import require_run_write


def clean_artifact_path(path: str) -> str:
    """A relative POSIX path inside the run (``plots/roc_curve.json``)."""
    if not isinstance(path, str) or not path.strip():
        raise ValidationFailed("An artifact needs a path.", details={"fields": {"path": ["Required."]}})
    if "\\" in path or any(ord(c) < 32 for c in path):
        raise ValidationFailed("Artifact paths use '/' and no control characters.",
                               details={"fields": {"path": [path[:100]]}})
    if path.startswith("/"):
        raise ValidationFailed("Artifact paths are relative to the run.", details={"fields": {"path": [path[:100]]}})
    parts = path.split("/")
    if any(part in ("..", ".") for part in parts):
        raise ValidationFailed("Artifact paths may not contain '.' or '..' segments.",
                               details={"fields": {"path": [path[:100]]}})
    normal = posixpath.normpath(path)
    if len(normal) > 400:
        raise ValidationFailed("Artifact paths have at most 400 characters.")
    return normal


def artifact_log(*, actor, run: Run, fileobj, path: str, content_type: str = "", check_access: bool = True
                 ) -> Artifact:
    """Store a file as an artifact of ``run`` under ``path``; paths are
    write-once (409 when the path exists). ``check_access=False`` is for the
    platform's own writers (training jobs) acting for the job's creator."""
    path = clean_artifact_path(path)
    if check_access:
        require_run_write(actor, run)
    if Artifact.objects.filter(run_id=run.pk, path=path).exists():
        raise Conflict(f"Run {run.pk} already has an artifact at {path!r}; artifacts are write-once.",
                       code="artifact_exists", details={"path": path})
    content_type = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    upload_bytes = _file_size(fileobj)
    _check_artifact_quota(run_id=run.pk, upload_bytes=upload_bytes)
    stored = store_file(fileobj, f"runs/{run.pk}/{path}")
    try:
        with transaction.atomic():
            locked = Run.objects.select_for_update().get(pk=run.pk)
            if locked.status == RunStatus.KILLED:
                raise InvalidState(f"Run {run.pk} was killed; it accepts no more artifacts.")
            # Again under the run's lock: two uploads racing past the first
            # check must not both land.
            _check_artifact_quota(run_id=run.pk, upload_bytes=stored.size)
            artifact = Artifact.objects.create(run=locked, path=path, file=stored.name, size_bytes=stored.size,
                                               sha256=stored.sha256, content_type=content_type[:100])
    except IntegrityError:
        delete_quietly(stored.name)
        raise Conflict(f"Run {run.pk} already has an artifact at {path!r}; artifacts are write-once.",
                       code="artifact_exists", details={"path": path})
    except Exception:
        delete_quietly(stored.name)
        raise
    return artifact


def _file_size(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if size is None:
        position = fileobj.tell()
        size = fileobj.seek(0, 2)
        fileobj.seek(position)
    return int(size)


def _check_artifact_quota(*, run_id: int, upload_bytes: int) -> None:
    quota = settings.RUN_ARTIFACT_QUOTA_BYTES
    used = Artifact.objects.filter(run_id=run_id).aggregate(total=Sum("size_bytes"))["total"] or 0
    if used + upload_bytes > quota:
        raise PayloadTooLarge(
            f"Run {run_id} already stores {used} bytes of artifacts; {upload_bytes} more would pass "
            f"its quota of {quota} bytes.",
            code="artifact_quota_exceeded",
            details={"quota_bytes": quota, "used_bytes": used, "upload_bytes": upload_bytes},
        )


__all__ = [
    "artifact_log",
    "clean_artifact_path",
]
