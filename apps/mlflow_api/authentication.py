"""Authentication the way the MLflow client sends it.

* ``MLFLOW_TRACKING_TOKEN`` arrives as ``Authorization: Bearer <token>``: a
  platform API key (``tsk_…``, checked by the same hashed lookup as
  ``Api-Key`` headers, so revocation and expiry apply within a second) or a
  JWT access token from ``/api/v1/auth/token/``.
* ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` arrive as HTTP Basic and are
  checked against the platform's users, through the same lockout after
  repeated failures as the login page.
* ``Api-Key <key>`` is accepted too, for scripts that already use it.
"""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate
from rest_framework import authentication, exceptions

from apps.core.authentication import ApiKeyAuthentication, CachedJWTAuthentication
from apps.core.errors import RateLimited
from apps.core.services import (
    API_KEY_PREFIX,
    api_key_authenticate,
    login_throttle_check,
    login_throttle_record_failure,
    login_throttle_reset,
)


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class MlflowBearerAuthentication(authentication.BaseAuthentication):
    """``Bearer tsk_…`` (an API key) or ``Bearer <JWT>``."""

    def __init__(self):
        self._jwt = CachedJWTAuthentication()

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        if token.startswith(API_KEY_PREFIX):
            result = api_key_authenticate(token)
            if result is None:
                raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
            return result
        try:
            validated = self._jwt.get_validated_token(token.encode())
        except exceptions.APIException:
            raise exceptions.AuthenticationFailed("The bearer token is neither a valid API key nor a valid JWT.")
        return self._jwt.get_user(validated), validated

    def authenticate_header(self, request):
        return "Bearer"


class MlflowBasicAuthentication(authentication.BaseAuthentication):
    """HTTP Basic against the platform's users, with the login lockout."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
        ip = _client_ip(request)
        try:
            login_throttle_check(username=username, client_ip=ip)
        except RateLimited as exc:
            raise exceptions.Throttled(detail=exc.message)
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            login_throttle_record_failure(username=username, client_ip=ip)
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        login_throttle_reset(username=username, client_ip=ip)
        return user, None

    def authenticate_header(self, request):
        return 'Basic realm="mlflow"'


AUTHENTICATION_CLASSES = [MlflowBearerAuthentication, MlflowBasicAuthentication, ApiKeyAuthentication]
