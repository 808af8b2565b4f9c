from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.views import TokenObtainPairView

from apps.core import selectors, services
from apps.core.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    NotificationSerializer,
    NotificationsMarkedSerializer,
    ThrottledTokenObtainPairSerializer,
    UserSerializer,
)
from apps.core.errors import ValidationFailed
from apps.core.filtersets import AuditEventFilter
from apps.core.models import ApiKey, AuditEvent, Notification
from apps.core.permissions import require_perm
from apps.core.schema import ID_PATTERN, ErrorSerializer


@extend_schema_view(post=extend_schema(responses={
    200: TokenObtainPairSerializer,
    400: OpenApiResponse(ErrorSerializer, description="Username or password missing."),
    401: OpenApiResponse(ErrorSerializer, description="No active account with these credentials."),
    429: OpenApiResponse(ErrorSerializer, description="Too many failed attempts for this username and address."),
}))
class TokenObtainView(TokenObtainPairView):
    """Exchange a username and password for a JWT access/refresh pair.
    Repeated failures lock the (username, address) pair for a while (429)."""

    serializer_class = ThrottledTokenObtainPairSerializer


class MeView(APIView):
    @extend_schema(responses=UserSerializer)
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """Your API keys. The secret is in the creation response only; DELETE or
    ``revoke`` revokes a key (it stays listed, inactive)."""

    queryset = ApiKey.objects.none()  # for the schema; get_queryset scopes to the user
    serializer_class = ApiKeySerializer
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["revoked_at"]
    ordering_fields = ["created_at", "last_used_at"]

    def get_queryset(self):
        return selectors.api_key_list(user=self.request.user)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        require_perm(request.user, "core.add_apikey")
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.api_key_create(user=request.user, **data.validated_data)
        body = ApiKeySerializer(issued.api_key).data | {"key": issued.raw_key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(ApiKeySerializer(api_key).data)

    def destroy(self, request, pk=None):
        services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first. Auditors (Approver, Admin) see every
    event; others see their own."""

    queryset = AuditEvent.objects.none()
    serializer_class = AuditEventSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = AuditEventFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return selectors.audit_event_list(user=self.request.user)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("unread", bool, description="true: only unread; false: only read."),
]))
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your inbox, newest first: promotions waiting for you or decided,
    training jobs finished or failed, deployments degraded or rolled back.
    Only your own notifications exist for you; another user's id is a 404."""

    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer
    lookup_value_regex = ID_PATTERN
    ordering_fields = ["created_at"]

    def get_queryset(self):
        raw = self.request.query_params.get("unread", "").lower()
        choices = {"": None, "true": True, "1": True, "false": False, "0": False}
        if raw not in choices:
            raise ValidationFailed("unread must be true or false.",
                                   details={"fields": {"unread": ["Must be true or false."]}})
        return selectors.notification_list(user=self.request.user, unread=choices[raw])

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(notification=self.get_object(), actor=request.user)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=NotificationsMarkedSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked": services.notifications_mark_all_read(actor=request.user)})
