"""Serving bytes that users uploaded (run artifacts, dataset files, model files).

Everything a user stored is served from the platform's own origin, so a file
that the browser would treat as a document (HTML, SVG, XML, JavaScript) could
run script in a colleague's session — for example an approver's. This is the
one place that decides how such bytes go out:

- as an attachment by default; inline only when asked for *and* the file's
  extension is on a short allowlist of passive types;
- the content type comes from that allowlist, never from what the uploader
  declared nor from a guess that could yield an active type; text is always
  ``text/plain; charset=utf-8``;
- ``X-Content-Type-Options: nosniff`` so the browser does not second-guess
  it, and a ``Content-Security-Policy`` with ``sandbox`` so that even a
  document that slips through runs in an opaque origin without script.
"""

from __future__ import annotations

import posixpath

from django.http import FileResponse

# Extension -> type served inline. Images are passive (no SVG: it is a
# document that can carry script). Text-like formats are shown as plain text
# so that the browser never renders them as markup.
_TEXT = "text/plain; charset=utf-8"
INLINE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
    ".txt": _TEXT,
    ".log": _TEXT,
    ".json": _TEXT,
    ".csv": _TEXT,
    ".tsv": _TEXT,
    ".md": _TEXT,
    ".yaml": _TEXT,
    ".yml": _TEXT,
}
ATTACHMENT_TYPE = "application/octet-stream"
# The page policy (apps.core.middleware.ContentSecurityPolicyMiddleware) keeps
# a header that is already set, so this one wins on user content.
USER_CONTENT_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def inline_type_for(filename: str) -> str | None:
    """The type a file may be shown inline as, or None when it must be downloaded."""
    return INLINE_TYPES.get(posixpath.splitext(filename.lower())[1])


def user_content_response(fileobj, *, filename: str, inline: bool = False) -> FileResponse:
    """A response carrying user-uploaded bytes that cannot act as a page of
    the platform. ``inline`` is the caller's wish; it is honoured only for
    the allowlisted passive types."""
    safe_type = inline_type_for(filename)
    show_inline = inline and safe_type is not None
    response = FileResponse(fileobj, as_attachment=not show_inline, filename=filename,
                            content_type=safe_type if show_inline else ATTACHMENT_TYPE)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = USER_CONTENT_CSP
    return response
