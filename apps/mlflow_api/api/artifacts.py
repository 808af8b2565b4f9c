"""MLflow's proxied artifact routes, ``/api/2.0/mlflow-artifacts/artifacts/...``.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``,
so the client sends ``PUT .../artifacts/<experiment>/<run>/artifacts/<path>``
to upload, ``GET`` on the same to download, and ``GET .../artifacts?path=``
to list a directory. Uploads go through ``artifact_log`` (run owner only,
write-once paths, the per-run quota); downloads through
``apps.core.usercontent`` (always an attachment, never active content)."""

from __future__ import annotations

import posixpath
import tempfile

from django.conf import settings
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFound, PayloadTooLarge
from apps.core.storage import open_artifact
from apps.core.usercontent import user_content_response
from apps.experiments import selectors, services
from apps.experiments.services import require_run_write
from apps.mlflow_api.api.runs import get_run
from apps.mlflow_api.authentication import AUTHENTICATION_CLASSES
from apps.mlflow_api.errors import mlflow_exception_handler, not_found

_CHUNK = 1024 * 1024


def resolve(user, path: str):
    """(run, path inside the run) for ``<experiment>/<run>/artifacts[/<path>]``."""
    parts = (path or "").strip("/").split("/")
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0].isdigit() or not parts[1].isdigit():
        raise not_found(f"No run artifacts at {path!r}: paths look like <experiment_id>/<run_id>/artifacts/<path>.")
    run = get_run(user, parts[1])
    if str(run.experiment_id) != parts[0]:
        raise not_found(f"Run {run.pk} is not in experiment {parts[0]}.")
    return run, "/".join(parts[3:])


def _upload_limit() -> int:
    return min(settings.MODEL_MAX_UPLOAD_SIZE, settings.RUN_ARTIFACT_QUOTA_BYTES)


def _spool_body(request, limit: int):
    """The request body in a temporary file, refused past ``limit`` bytes
    (also when the client sent no Content-Length)."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 - returned open
    size = 0
    while chunk := request._request.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"Artifact larger than {limit} bytes.", details={"limit_bytes": limit})
        spool.write(chunk)
    spool.seek(0)
    return spool


class ArtifactView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsAuthenticated]
    parser_classes: list = []
    schema = None
    max_body_size = staticmethod(lambda: settings.MODEL_MAX_UPLOAD_SIZE)

    def get_exception_handler(self):
        return mlflow_exception_handler

    def put(self, request, path: str):
        run, inner = resolve(request.user, path)
        require_run_write(request.user, run)  # before reading a byte of the body
        spool = _spool_body(request, _upload_limit())
        with spool:
            services.artifact_log(actor=request.user, run=run, fileobj=spool, path=inner,
                                  content_type=request.content_type.split(";")[0] if request.content_type else "")
        return Response({})

    def get(self, request, path: str):
        run, inner = resolve(request.user, path)
        artifact = selectors.artifact_get(run=run, path=inner)
        try:
            handle = open_artifact(artifact.file)
        except (FileNotFoundError, OSError):
            raise NotFound(f"The file of artifact {inner!r} is missing from storage.")
        response = user_content_response(handle, filename=posixpath.basename(artifact.path))
        response["X-Content-SHA256"] = artifact.sha256
        return response


class ArtifactListView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsAuthenticated]
    schema = None

    def get_exception_handler(self):
        return mlflow_exception_handler

    def get(self, request):
        run, inner = resolve(request.user, request.query_params.get("path", ""))
        prefix = f"{inner.rstrip('/')}/" if inner else ""
        files, dirs = [], set()
        for artifact in selectors.artifact_list(run=run):
            if artifact.path == inner:
                return Response({"files": [{"path": posixpath.basename(inner), "is_dir": False,
                                            "file_size": artifact.size_bytes}]})
            if not artifact.path.startswith(prefix):
                continue
            rest = artifact.path[len(prefix):]
            head, slash, _ = rest.partition("/")
            if slash:
                dirs.add(head)
            else:
                files.append({"path": rest, "is_dir": False, "file_size": artifact.size_bytes})
        entries = [{"path": name, "is_dir": True} for name in sorted(dirs)] + files
        return Response({"files": sorted(entries, key=lambda e: e["path"])} if entries else {})
