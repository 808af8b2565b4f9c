"""``/api/v1/webhooks/``: subscriptions, a test event, the delivery log
(registered by ``apps/core/api/urls.py``; the path is the one the registry
served before the facility moved to core)."""

import django_filters
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.core.permissions import is_admin
from apps.core.schema import ID_PATTERN
from apps.core.webhooks import selectors, services, subjects
from apps.core.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

WEBHOOK_URL = RegexValidator(r"^https?://[^/\s?#]+", "Only http and https URLs with a host are allowed.")


class WebhookDeliveryFilter(django_filters.FilterSet):
    class Meta:
        model = WebhookDelivery
        fields = ["status", "event"]


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = WebhookSubscription
        fields = ["id", "name", "url", "events", "is_active", "created_by", "created_at", "updated_at"]
        read_only_fields = fields

    def get_fields(self):
        # One field per kind of object a subscription may be scoped to,
        # named by the app that owns it (e.g. "registered_model": a name).
        fields = super().get_fields()
        for kind in subjects.kinds():
            fields[kind.key] = serializers.SerializerMethodField(method_name="get_subject_name",
                                                                 help_text=kind.help_text or None)
        return fields

    def get_subject_name(self, obj) -> str | None:
        return None

    def to_representation(self, instance):
        return super().to_representation(instance) | subjects.describe(instance)


class WebhookCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret. Shown once; store it now.")

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


@extend_schema_field({"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$"}})
class EventListField(serializers.JSONField):
    pass


class WebhookCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500, validators=[WEBHOOK_URL],
                                help_text="http:// or https:// only; redirects are not followed.")
    events = EventListField(required=False, default=list,
                            help_text="Event names or prefixes (registry.*); empty for every event.")
    secret = serializers.CharField(required=False, allow_blank=True, default="", write_only=True,
                                   help_text="At least 16 characters; generated when empty.")
    is_active = serializers.BooleanField(required=False, default=True)

    def get_fields(self):
        fields = super().get_fields()
        for kind in subjects.kinds():
            fields[kind.key] = serializers.CharField(
                required=False, allow_null=True, default=None,
                help_text=kind.help_text or f"Only events of this {kind.model._meta.verbose_name}.")
        return fields


class WebhookUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    url = serializers.CharField(max_length=500, required=False, validators=[WEBHOOK_URL])
    events = EventListField(required=False)
    secret = serializers.CharField(required=False, write_only=True)
    is_active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    response_excerpt = serializers.CharField(
        read_only=True, help_text="The first 2 KB of the response; Admins only (absent for other users).")

    class Meta:
        model = WebhookAttempt
        fields = ["number", "status_code", "response_time_ms", "error", "response_excerpt", "created_at"]
        read_only_fields = fields

    def _show_response_bodies(self) -> bool:
        # What a receiver answered may carry anything from inside its
        # network: only Admins, who choose the targets, read it. Decided once
        # per response (the context is shared by every nested serializer).
        if "show_response_bodies" not in self.context:
            request = self.context.get("request")
            self.context["show_response_bodies"] = request is not None and is_admin(request.user)
        return self.context["show_response_bodies"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self._show_response_bodies():
            data.pop("response_excerpt", None)
        return data


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempts = WebhookAttemptSerializer(many=True, read_only=True)
    subscription = serializers.IntegerField(source="subscription_id", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "uuid", "subscription", "event", "status", "attempt_count", "last_status_code",
                  "last_error", "next_attempt_at", "created_at", "completed_at", "body", "attempts"]
        read_only_fields = fields


class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Webhook subscriptions, per object (e.g. one registered model) or global. Configured by Admins; the
    secret is returned once, at creation. Each delivery is signed
    (``X-Mlops-Signature: sha256=<HMAC-SHA256 of the body>``) and retried with
    exponential backoff; ``deliveries`` lists every attempt."""

    queryset = WebhookSubscription.objects.none()
    serializer_class = WebhookSubscriptionSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return selectors.webhook_list(user=self.request.user)

    def get_object(self):
        return selectors.webhook_get(user=self.request.user, pk=int(self.kwargs["pk"]))

    @extend_schema(request=WebhookCreateSerializer, responses={201: WebhookCreatedSerializer})
    def create(self, request):
        data = WebhookCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        named = {kind.key: fields.pop(kind.key, None) for kind in subjects.kinds()}
        named = {key: value for key, value in named.items() if value}
        if len(named) > 1:
            raise ValidationFailed(f"Scope a webhook to one object at most, not {', '.join(sorted(named))}.")
        subject = next((subjects.resolve(user=request.user, key=key, value=value)
                        for key, value in named.items()), None)
        subscription = services.webhook_subscription_create(actor=request.user, subject=subject, **fields)
        body = WebhookSubscriptionSerializer(subscription).data | {"secret": subscription.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookUpdateSerializer, responses=WebhookSubscriptionSerializer)
    def partial_update(self, request, pk=None):
        data = WebhookUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_update(subscription=self.get_object(), actor=request.user,
                                                            **data.validated_data)
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def destroy(self, request, pk=None):
        services.webhook_subscription_delete(subscription=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer}, summary="Send a test event")
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.webhook_send_test(subscription=self.get_object(), actor=request.user)
        return Response(WebhookDeliverySerializer(delivery, context=self.get_serializer_context()).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=WebhookDeliverySerializer(many=True),
                   parameters=[OpenApiParameter("status", str), OpenApiParameter("event", str)],
                   summary="Deliveries of this webhook, newest first, with every attempt")
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        queryset = WebhookDeliveryFilter(
            request.query_params,
            queryset=selectors.webhook_delivery_list(user=request.user, subscription=self.get_object())).qs
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            WebhookDeliverySerializer(page, many=True, context=self.get_serializer_context()).data)
