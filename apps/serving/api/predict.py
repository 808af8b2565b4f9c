"""``POST /api/v1/endpoints/<slug>/predict/``: the hot path.

A plain Django view rather than a DRF one: DRF's request wrapping, content
negotiation, throttling hooks and serializers cost far more than the model
itself when the model runs through ONNX. It authenticates with the same
cached authenticators as the API (API key, JWT; session with a CSRF check
for the browser's "try it" form), reads the routing table, permissions and
models from the per-process runtime, and hands the log row to the
background buffer: no database query per request in the steady state.
Errors use the API's error shape.
"""

from __future__ import annotations

import json
import time

from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions

from apps.core.authentication import ApiKeyAuthentication, CachedJWTAuthentication
from apps.core.errors import ApplicationError, error_body
from apps.serving.runtime import runtime
from apps.serving.services.predictions import predict

_api_key_auth = ApiKeyAuthentication()
_jwt_auth = CachedJWTAuthentication()
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(_dumps(body), content_type="application/json", status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _error(code: str, message: str, status: int, details: dict | None = None, headers: dict | None = None):
    return _json(error_body(code, message, details), status=status, headers=headers)


def _csrf_failure(request) -> str | None:
    """The browser's session needs a CSRF token, as DRF's SessionAuthentication requires."""
    response = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    return None if response is None else "CSRF check failed; send the X-CSRFToken header."


def authenticate(request):
    """(user, API key or None, error response): API key, Bearer JWT, or the browser session."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    try:
        if header.startswith("Api-Key "):
            user, key = _api_key_auth.authenticate(request)
            return user, key, None
        if header.startswith("Bearer "):
            result = _jwt_auth.authenticate(request)
            if result is not None:
                return result[0], None, None
    except drf_exceptions.AuthenticationFailed as exc:
        detail = exc.detail.get("detail", exc.detail) if isinstance(exc.detail, dict) else exc.detail
        return None, None, _error("authentication_failed", str(detail), 401,
                                  headers={"WWW-Authenticate": "Api-Key, Bearer"})
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        problem = _csrf_failure(request)
        if problem:
            return None, None, _error("permission_denied", problem, 403)
        return user, None, None
    return None, None, _error("not_authenticated", "Authentication credentials were not provided.", 401,
                              headers={"WWW-Authenticate": "Api-Key, Bearer"})


@csrf_exempt
def predict_view(request, slug: str):
    started = time.perf_counter()
    if request.method != "POST":
        return _error("method_not_allowed", f'Method "{request.method}" not allowed; POST instances here.', 405,
                      headers={"Allow": "POST"})
    user, api_key, failure = authenticate(request)
    if failure is not None:
        return failure
    route = runtime.route(slug)
    if route is None:
        return _error("not_found", f"No endpoint {slug!r}.", 404)
    can_predict, can_view = runtime.access(user, route)
    if not can_predict:
        if not can_view:
            return _error("not_found", f"No endpoint {slug!r}.", 404)
        return _error("permission_denied", f"You may not send predictions to {slug}.", 403,
                      {"permission": "serving.predict_endpoint"})
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error("malformed_request", f"The body is not valid JSON: {exc}", 400)
    try:
        body = predict(route=route, payload=payload, request_id=getattr(request, "request_id", None),
                       started=started, user_id=user.pk, api_key_id=api_key.pk if api_key is not None else None)
    except ApplicationError as exc:
        return _error(exc.code, exc.message, exc.status_code, exc.details)
    return _json(body)
