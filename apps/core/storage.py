"""Artifact storage: where dataset files, models and run artifacts live.

Filesystem under ``var/artifacts`` by default; any Django storage (e.g.
S3-compatible through django-storages) with ``ARTIFACT_STORAGE``. Files are
written once under content-addressed or id-scoped names and never
overwritten."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files.base import File
from django.core.files.storage import Storage, storages

CHUNK_SIZE = 1024 * 1024


def artifact_storage() -> Storage:
    return storages["artifacts"]


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    size: int


def sha256_of(fileobj: BinaryIO) -> tuple[str, int]:
    """SHA-256 and size of a file object, read in chunks; rewinds it."""
    digest = hashlib.sha256()
    size = 0
    fileobj.seek(0)
    while chunk := fileobj.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return digest.hexdigest(), size


def store_file(fileobj: BinaryIO, name: str) -> StoredFile:
    """Save ``fileobj`` under ``name`` (the storage may add a suffix rather
    than overwrite) and return where it went, with its hash and size."""
    sha256, size = sha256_of(fileobj)
    stored_name = artifact_storage().save(name, File(fileobj))
    return StoredFile(name=stored_name, sha256=sha256, size=size)


def delete_quietly(name: str) -> None:
    """Remove a stored file when the transaction that needed it failed."""
    if not name:
        return
    with contextlib.suppress(OSError):
        artifact_storage().delete(name)


def open_artifact(name: str, mode: str = "rb"):
    return artifact_storage().open(name, mode)
