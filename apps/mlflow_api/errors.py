"""MLflow's error shape: ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}``
with the HTTP status MLflow's tracking server gives each code
(``mlflow.protos.databricks_pb2`` and ``mlflow.exceptions``). The platform's
own errors (``apps.core.errors``) are translated here, so services raise what
they always raise and the MLflow client sees what it expects."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions

from apps.core.errors import ApplicationError, Conflict, NotFound, PayloadTooLarge, PermissionDenied, RateLimited

logger = logging.getLogger(__name__)

RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
INVALID_STATE = "INVALID_STATE"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
INTERNAL_ERROR = "INTERNAL_ERROR"

HTTP_STATUS = {
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    RESOURCE_ALREADY_EXISTS: 400,
    INVALID_PARAMETER_VALUE: 400,
    INVALID_STATE: 400,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    NOT_IMPLEMENTED: 501,
    REQUEST_LIMIT_EXCEEDED: 429,
    RESOURCE_EXHAUSTED: 429,
    INTERNAL_ERROR: 500,
}

# Platform error codes that mean "it already exists" in MLflow's terms.
_ALREADY_EXISTS_CODES = {"duplicate_name", "artifact_exists", "alias_exists", "duplicate"}


class MlflowError(Exception):
    """An error in MLflow's vocabulary, raised by the views themselves."""

    def __init__(self, message: str, error_code: str = INVALID_PARAMETER_VALUE):
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @property
    def status_code(self) -> int:
        return HTTP_STATUS.get(self.error_code, 400)


def not_found(message: str) -> MlflowError:
    return MlflowError(message, RESOURCE_DOES_NOT_EXIST)


def invalid(message: str) -> MlflowError:
    return MlflowError(message, INVALID_PARAMETER_VALUE)


def mlflow_error_response(error_code: str, message: str, status: int | None = None) -> JsonResponse:
    return JsonResponse({"error_code": error_code, "message": message},
                        status=status or HTTP_STATUS.get(error_code, 400))


def translate(exc: Exception) -> tuple[str, str, int] | None:
    """(error_code, message, status) for an exception the caller caused, or
    None for one that is the platform's fault."""
    if isinstance(exc, MlflowError):
        return exc.error_code, exc.message, exc.status_code
    if isinstance(exc, NotFound):
        return RESOURCE_DOES_NOT_EXIST, exc.message, 404
    if isinstance(exc, PermissionDenied):
        return PERMISSION_DENIED, exc.message, 403
    if isinstance(exc, PayloadTooLarge):
        return RESOURCE_EXHAUSTED, exc.message, 413
    if isinstance(exc, RateLimited):
        return REQUEST_LIMIT_EXCEEDED, exc.message, 429
    if isinstance(exc, Conflict) and exc.code in _ALREADY_EXISTS_CODES:
        return RESOURCE_ALREADY_EXISTS, exc.message, 400
    if isinstance(exc, Conflict) and exc.code == "invalid_state":
        return INVALID_STATE, exc.message, 400
    if isinstance(exc, ApplicationError):
        # Validation, write-once params and the like: MLflow calls them all
        # INVALID_PARAMETER_VALUE.
        return INVALID_PARAMETER_VALUE, exc.message, 400
    if isinstance(exc, DjangoValidationError):
        return INVALID_PARAMETER_VALUE, "; ".join(exc.messages), 400
    if isinstance(exc, RequestDataTooBig):
        return RESOURCE_EXHAUSTED, str(exc) or "Request body too large.", 413
    if isinstance(exc, Http404):
        return RESOURCE_DOES_NOT_EXIST, "Not found.", 404
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return UNAUTHENTICATED, str(exc.detail), 401
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        return PERMISSION_DENIED, "You do not have permission to perform this action.", 403
    if isinstance(exc, drf_exceptions.Throttled):
        return REQUEST_LIMIT_EXCEEDED, str(exc.detail), 429
    if isinstance(exc, drf_exceptions.ParseError):
        return INVALID_PARAMETER_VALUE, f"Malformed request body: {exc.detail}", 400
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return ENDPOINT_NOT_FOUND, str(exc.detail), 405
    if isinstance(exc, drf_exceptions.APIException):
        return INVALID_PARAMETER_VALUE, str(exc.detail), exc.status_code
    return None


def mlflow_exception_handler(exc, context):
    """The DRF exception handler of the MLflow views."""
    translated = translate(exc)
    if translated is None:
        return None  # DRF re-raises: a 500 logged with its traceback
    code, message, status = translated
    response = mlflow_error_response(code, message, status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="mlflow"'
    return response
