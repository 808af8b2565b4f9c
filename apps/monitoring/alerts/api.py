"""``/api/v1/alert-rules/``, ``/api/v1/alerts/`` and ``/api/v1/silences/``:
parse input, call a service or selector, shape the answer. Reading needs the
view right on the endpoint, changing its deploy right; someone else's
endpoint is a 404. Metric and comparison are checked by the service, so an
unknown one gets the platform's error shape naming the field."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.fields import IdField
from apps.core.errors import NotFound
from apps.core.schema import ID_PATTERN
from apps.monitoring.alerts import selectors, services
from apps.monitoring.alerts.models import Alert, AlertRule, Silence
from apps.serving import selectors as serving


class AlertRuleSerializer(serializers.ModelSerializer):
    endpoint = serializers.SlugField(source="endpoint.slug", read_only=True)
    deployment_id = serializers.IntegerField(allow_null=True, read_only=True)
    metric = serializers.CharField(read_only=True)
    comparison = serializers.CharField(read_only=True)
    state = serializers.CharField(source="alert.state", read_only=True, default="inactive")

    class Meta:
        model = AlertRule
        fields = ["id", "endpoint", "deployment_id", "name", "metric", "window_seconds", "comparison",
                  "warning_threshold", "critical_threshold", "for_seconds", "keep_firing_for_seconds", "labels",
                  "runbook_url", "enabled", "state", "created_at", "updated_at"]
        read_only_fields = fields


class AlertRuleWriteSerializer(serializers.Serializer):
    """A rule's fields; on create ``endpoint``, ``name``, ``metric`` and a threshold are needed."""

    endpoint = serializers.SlugField(max_length=100, required=False, help_text="Endpoint slug (create only).")
    deployment_id = IdField(required=False, allow_null=True, help_text="Watch one deployment of the endpoint.")
    name = serializers.CharField(max_length=100, required=False)
    metric = serializers.CharField(max_length=40, required=False,
                                   help_text="error_rate, latency_p95, request_rate, accuracy or dataset_drift.")
    window_seconds = serializers.JSONField(required=False, help_text="Aggregation window, 10 s to 7 days.")
    comparison = serializers.CharField(max_length=4, required=False, help_text="One of > >= < <=.")
    warning_threshold = serializers.JSONField(required=False)
    critical_threshold = serializers.JSONField(required=False)
    for_seconds = serializers.JSONField(required=False, help_text="How long it must breach before firing.")
    keep_firing_for_seconds = serializers.JSONField(required=False,
                                                    help_text="How long it keeps firing after the last breach.")
    labels = serializers.JSONField(required=False)
    runbook_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class AlertSerializer(serializers.ModelSerializer):
    rule_id = serializers.IntegerField(read_only=True)
    rule = serializers.CharField(source="rule.name", read_only=True)
    endpoint = serializers.SlugField(source="rule.endpoint.slug", read_only=True)
    metric = serializers.CharField(source="rule.metric", read_only=True)
    state = serializers.CharField(read_only=True)
    severity = serializers.CharField(read_only=True)
    acked_by = serializers.CharField(source="acked_by.username", read_only=True, default=None)

    class Meta:
        model = Alert
        fields = ["id", "rule_id", "rule", "endpoint", "metric", "state", "severity", "value", "active_since",
                  "last_evaluated", "acked_by", "acked_at"]
        read_only_fields = fields


class SilenceSerializer(serializers.ModelSerializer):
    endpoint = serializers.SlugField(source="endpoint.slug", read_only=True)
    rule_id = serializers.IntegerField(allow_null=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Silence
        fields = ["id", "endpoint", "rule_id", "starts_at", "ends_at", "reason", "created_by", "created_at"]
        read_only_fields = fields


class SilenceCreateSerializer(serializers.Serializer):
    endpoint = serializers.SlugField(max_length=100)
    rule_id = IdField(required=False, allow_null=True, help_text="Silence one rule (default: the whole endpoint).")
    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=500)


def _deployment(endpoint, deployment_id):
    if deployment_id is None:
        return None
    found = serving.endpoint_live_deployments(endpoint=endpoint)
    match = next((d for d in found if d.pk == deployment_id), None)
    if match is None:
        from apps.serving.models import Deployment

        match = Deployment.objects.filter(pk=deployment_id, endpoint=endpoint).first()
    if match is None:
        raise NotFound("Deployment not found on this endpoint.")
    return match


class AlertRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alert rules of endpoints you may see; changing one needs the deploy right on its endpoint."""

    queryset = AlertRule.objects.none()
    serializer_class = AlertRuleSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return selectors.alert_rule_list(user=self.request.user)

    def get_object(self):
        return selectors.alert_rule_get(user=self.request.user, pk=self.kwargs["pk"])

    def _changes(self, request) -> dict:
        data = AlertRuleWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    @extend_schema(request=AlertRuleWriteSerializer, responses={201: AlertRuleSerializer})
    def create(self, request):
        values = self._changes(request)
        endpoint = serving.endpoint_get(user=request.user, slug=values.pop("endpoint", "") or "")
        values["deployment"] = _deployment(endpoint, values.pop("deployment_id", None))
        rule = services.alert_rule_create(actor=request.user, endpoint=endpoint, **values)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AlertRuleWriteSerializer, responses={200: AlertRuleSerializer})
    def partial_update(self, request, pk=None):
        rule = self.get_object()
        values = self._changes(request)
        values.pop("endpoint", None)
        if "deployment_id" in values:
            values["deployment"] = _deployment(rule.endpoint, values.pop("deployment_id"))
        rule = services.alert_rule_update(actor=request.user, rule=rule, **values)
        return Response(AlertRuleSerializer(rule).data)

    def destroy(self, request, pk=None):
        services.alert_rule_delete(actor=request.user, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[OpenApiParameter("state", str, description="inactive, pending, firing or resolved"),
                           OpenApiParameter("endpoint", str, description="endpoint slug")])
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The alert of each rule you may see, with its state; acknowledge a firing one."""

    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        params = self.request.query_params
        return selectors.alert_list(user=self.request.user, state=params.get("state"),
                                    endpoint_slug=params.get("endpoint"))

    def get_object(self):
        return selectors.alert_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        alert = services.alert_acknowledge(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(alert).data)


class SilenceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Silences: no alert notifications for a rule or an endpoint until they end."""

    queryset = Silence.objects.none()
    serializer_class = SilenceSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return selectors.silence_list(user=self.request.user, endpoint_slug=self.request.query_params.get("endpoint"))

    def get_object(self):
        return selectors.silence_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=SilenceCreateSerializer, responses={201: SilenceSerializer})
    def create(self, request):
        data = SilenceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        endpoint = serving.endpoint_get(user=request.user, slug=values["endpoint"])
        rule = None
        if values.get("rule_id") is not None:
            rule = selectors.alert_rule_list(user=request.user, endpoint=endpoint).filter(
                pk=values["rule_id"]).first()
            if rule is None:
                raise NotFound("Alert rule not found.")
        silence = services.silence_create(actor=request.user, endpoint=endpoint, rule=rule,
                                          starts_at=values.get("starts_at"), ends_at=values["ends_at"],
                                          reason=values["reason"])
        return Response(SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: SilenceSerializer})
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        silence = services.silence_expire(actor=request.user, silence=self.get_object())
        return Response(SilenceSerializer(silence).data)
