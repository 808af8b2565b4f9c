"""Exceptions raised by the client.

Every error the server reports comes back as ``{"error": {"code", "message",
"details"}}``; :class:`MlopsApiError` carries those three fields plus the HTTP
status and the request that failed, so a caller can branch on ``code`` and a
person reading a traceback sees what was wrong without a debugger.
"""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Base class of everything this package raises on purpose."""


class MlopsApiError(MlopsError):
    """The server refused a request (a 4xx, or a 5xx that outlived the retries)."""

    def __init__(self, *, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 method: str = "", url: str = ""):
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.method = method
        self.url = url
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"HTTP {self.status} {self.code}: {self.message}"
        if self.details:
            text += f" (details: {self.details})"
        if self.method:
            text += f" [{self.method} {self.url}]"
        return text


class MlopsConnectionError(MlopsError):
    """The server could not be reached (or kept failing) after every retry."""


class BatchRejectedError(MlopsApiError):
    """The server refused a buffered log-batch; its items were discarded.

    Batches are all-or-nothing on the server, so nothing of a rejected batch
    was stored. ``discarded`` counts the metrics, params and tags lost."""

    def __init__(self, cause: MlopsApiError, *, discarded: dict[str, int]):
        self.discarded = dict(discarded)
        super().__init__(status=cause.status, code=cause.code, message=cause.message, details=cause.details,
                         method=cause.method, url=cause.url)

    def __str__(self) -> str:
        lost = ", ".join(f"{n} {kind}" for kind, n in self.discarded.items() if n)
        return f"a buffered log-batch was rejected and discarded ({lost or 'nothing'}): {super().__str__()}"
