"""API authentication: ``Authorization: Api-Key <key>`` and a JWT variant that
does not hit the database on every request."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from apps.core.services import _TtlCache, api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(self.keyword + " "):
            return None
        raw_key = header[len(self.keyword) + 1:].strip()
        result = api_key_authenticate(raw_key)
        if result is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.", code="invalid_api_key")
        return result

    def authenticate_header(self, request):
        return self.keyword


_jwt_users = _TtlCache(ttl=1.0)


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt, with the user looked up at most once a second per process."""

    def get_user(self, validated_token):
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        user = _jwt_users.get(user_id)
        if user is None:
            user = super().get_user(validated_token)
            _jwt_users.set(user_id, user)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive.", code="user_inactive")
        return user


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`, from /api/v1/api-keys/"}


class CachedJwtScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.CachedJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


__all__ = ["ApiKeyAuthentication", "CachedJWTAuthentication", "get_user_model"]
