"""Streaming upload handling for dataset files."""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from apps.core.errors import PayloadTooLarge


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Spool every uploaded file to disk (never memory) and stop reading the
    body as soon as the files pass ``DATASET_MAX_UPLOAD_SIZE`` — the
    middleware's Content-Length check cannot see bodies sent without one."""

    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = limit if limit is not None else settings.DATASET_MAX_UPLOAD_SIZE
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            if getattr(self, "file", None) is not None:
                self.file.close()  # removes the partial temporary file
            raise PayloadTooLarge(f"The file is larger than the upload limit of {self.limit} bytes.",
                                  details={"limit_bytes": self.limit})
        return super().receive_data_chunk(raw_data, start)
