from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from apps.core.errors import RateLimited
from apps.core.forms import client_ip
from apps.core.models import ApiKey, AuditEvent, Notification
from apps.core.services import login_throttle_check, login_throttle_record_failure, login_throttle_reset


class UserSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "is_superuser", "roles"]

    def get_roles(self, obj) -> list[str]:
        return sorted(g.name for g in obj.groups.all())


class ApiKeySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at",
                  "is_active"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor_username", "action", "object_type", "object_id", "object_repr",
                  "before", "after", "message", "request_id"]
        read_only_fields = fields


class ThrottledTokenObtainPairSerializer(TokenObtainPairSerializer):
    def validate(self, attrs):
        request = self.context.get("request")
        username = attrs.get(self.username_field, "") or ""
        ip = client_ip(request)
        login_throttle_check(username=username, client_ip=ip)
        try:
            data = super().validate(attrs)
        except Exception:
            login_throttle_record_failure(username=username, client_ip=ip)
            raise
        login_throttle_reset(username=username, client_ip=ip)
        return data


__all__ = ["RateLimited"]


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "verb", "text", "object_type", "object_id", "url", "created_at", "read_at", "is_read"]
        read_only_fields = fields


class NotificationsMarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were unread and are read now.")
