"""Model files: written and read with skops, never with pickle.

A file is only loaded when every type skops does not trust by default is on
the platform's trusted list (``MODEL_TRUSTED_TYPES``: exact names, or
prefixes ending in "."), and, when a hash is given, when its SHA-256 matches.
Pickle and joblib files are recognised and refused with a clear message."""

from __future__ import annotations

import hashlib
import io
import zipfile

import skops.io as sio
from django.conf import settings

from apps.core.errors import ValidationFailed

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class ModelFileError(ValidationFailed):
    code = "invalid_model_file"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(model) -> bytes:
    """Serialize a fitted estimator or pipeline to skops bytes."""
    return sio.dumps(model)


def _trusted_list() -> tuple[list[str], list[str]]:
    names = list(getattr(settings, "MODEL_TRUSTED_TYPES", []))
    return [n for n in names if not n.endswith(".")], [n for n in names if n.endswith(".")]


def untrusted_types(data: bytes) -> list[str]:
    """Types in ``data`` that neither skops nor the platform trusts."""
    check_format(data)
    exact, prefixes = _trusted_list()
    reported = sio.get_untrusted_types(data=data)
    return [t for t in reported if t not in exact and not t.startswith(tuple(prefixes))]


def check_format(data: bytes) -> None:
    """Refuse anything that is not a skops archive, naming pickle/joblib files."""
    if data[:2] in PICKLE_MAGIC or data[:1] == b"\x80":
        raise ModelFileError(
            "This looks like a pickle or joblib file. The platform only accepts skops files "
            "(skops.io.dump), because unpickling can run arbitrary code.",
            details={"detected_format": "pickle"},
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError("Not a skops model file (expected a skops zip archive).",
                             details={"detected_format": "unknown"})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "schema.json" not in archive.namelist():
            raise ModelFileError("Not a skops model file: the archive has no schema.json.",
                                 details={"detected_format": "zip"})


def loads(data: bytes, *, expected_sha256: str | None = None):
    """Load a model from skops bytes after checking hash and types."""
    if expected_sha256 is not None and sha256_bytes(data) != expected_sha256:
        raise ModelFileError("The model file does not match its recorded SHA-256; refusing to load it.",
                             code="model_hash_mismatch")
    bad = untrusted_types(data)
    if bad:
        raise ModelFileError(
            f"The model file contains types that are not on the trusted list: {', '.join(sorted(bad))}.",
            code="untrusted_model_types", details={"untrusted_types": sorted(bad)},
        )
    trusted = sio.get_untrusted_types(data=data)
    return sio.loads(data, trusted=trusted)
