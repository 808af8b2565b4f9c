"""Streaming upload handling for model files."""

from __future__ import annotations

import hashlib

from django.conf import settings

from apps.core import modelio
from apps.datasets.uploadhandlers import LimitedTemporaryFileUploadHandler


class ModelFileUploadHandler(LimitedTemporaryFileUploadHandler):
    """Spool an uploaded model file to disk (never memory), stop at
    ``MODEL_MAX_UPLOAD_SIZE``, refuse a pickle or a non-zip file on its first
    bytes instead of after the whole body, and hash it while it streams
    (``uploaded.sha256``) so what is checked, loaded and stored is provably
    the same file."""

    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request, limit=limit if limit is not None else settings.MODEL_MAX_UPLOAD_SIZE)
        self.digest = None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        if start == 0 and raw_data[:2] != b"PK":  # every skops archive starts with a zip header
            self.file.close()  # removes the partial temporary file
            modelio.check_format(raw_data)  # names a pickle or joblib file
            raise modelio.ModelFileError("Not a skops model file (expected a skops zip archive).",
                                         details={"detected_format": "unknown"})
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()
        return uploaded
