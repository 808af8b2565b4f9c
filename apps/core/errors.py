"""The one family of errors a user can cause, and the one API error shape.

Every 4xx the API returns looks like
``{"error": {"code": "...", "message": "...", "details": {...}}}``.
Services raise ``ApplicationError`` subclasses; DRF's own exceptions and
Django's ``ValidationError`` are translated here too.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """An error the caller caused; carries the HTTP status it maps to."""

    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None,
                 status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_failed"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class InvalidState(Conflict):
    code = "invalid_state"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _first_message(detail, path: str = "") -> str:
    """The first leaf message of a DRF error tree, prefixed with its field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = f"{path}.{key}" if path else str(key)
            if key == "non_field_errors":
                sub = path
            return _first_message(value, sub)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                return _first_message(value, f"{path}[{index}]")
            return _first_message(value, path)
        return path or "Invalid input."
    text = str(detail)
    return f"{path}: {text}" if path else text


def _details(detail) -> dict:
    if isinstance(detail, dict):
        return {"fields": detail}
    if isinstance(detail, list):
        return {"errors": detail}
    return {}


def api_exception_handler(exc, context):
    """DRF exception handler producing the documented error shape."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("validation_failed", _first_message(detail), {"fields": detail}), status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", str(exc) or "Request body too large."), status=413)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", "You do not have permission to perform this action."),
                        status=403)
    if isinstance(exc, drf_exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail
        if isinstance(exc, drf_exceptions.ValidationError):
            code = "validation_failed"
            message = _first_message(detail)
            details = _details(detail)
        else:
            code = exc.default_code
            if isinstance(detail, drf_exceptions.ErrorDetail) and detail.code:
                code = detail.code
            message = _first_message(detail)
            details = _details(detail) if isinstance(detail, (dict, list)) else {}
        if isinstance(exc, drf_exceptions.ParseError):
            code = "malformed_request"
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)
    return None


def json_error_response(code: str, message: str, status: int, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)
