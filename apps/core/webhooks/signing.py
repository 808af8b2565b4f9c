"""Webhook signatures: HMAC-SHA256 (RFC 2104, FIPS 198-1) of the raw request
body with the subscription's secret, sent as
``X-Mlops-Signature: sha256=<hex digest>`` — the same scheme as GitHub's
``X-Hub-Signature-256``, so receivers can reuse their verification code.

No Django here: receivers may copy this module as it is."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Mlops-Signature"
EVENT_HEADER = "X-Mlops-Event"
DELIVERY_HEADER = "X-Mlops-Delivery"
SCHEME = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header_value: str) -> bool:
    """True when ``header_value`` is the signature of ``body``; compares in
    constant time so that timing reveals nothing about the expected digest."""
    if not header_value or not header_value.startswith(SCHEME):
        return False
    return hmac.compare_digest(sign(body, secret), header_value)
