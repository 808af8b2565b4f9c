from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.fields import MAX_NUMBER, IdField
from apps.serving.choices import Environment, FollowMode, Strategy
from apps.serving.models import Deployment, Endpoint, RolloutEvent


class DeploymentBriefSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)

    class Meta:
        model = Deployment
        fields = ["id", "model", "version", "strategy", "traffic_weight", "status", "rollout_state", "serving_path"]
        read_only_fields = fields


class EndpointSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    deployments = serializers.SerializerMethodField()
    stale_versions = serializers.SerializerMethodField()
    predict_url = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = ["id", "slug", "name", "environment", "description", "owner", "config", "follow_mode",
                  "follow_strategy", "bake_minutes", "created_at", "updated_at", "deployments", "stale_versions",
                  "predict_url"]
        read_only_fields = fields

    def _live(self, obj) -> list:
        live = getattr(obj, "live_deployments", None)
        if live is None:
            from apps.serving.selectors import endpoint_live_deployments

            live = obj.live_deployments = endpoint_live_deployments(endpoint=obj)
        return live

    @extend_schema_field(DeploymentBriefSerializer(many=True))
    def get_deployments(self, obj) -> list:
        """The live deployments and the rollout in progress, if any."""
        return DeploymentBriefSerializer(self._live(obj), many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_stale_versions(self, obj) -> list[int]:
        """Versions a production endpoint still serves although they left
        Production (a manual endpoint, or one that could not follow)."""
        if obj.environment != Environment.PRODUCTION:
            return []
        return sorted({d.model_version.version for d in self._live(obj)
                       if d.traffic_weight > 0 and d.model_version.stage != "production"})

    def get_predict_url(self, obj) -> str:
        return f"/api/v1/endpoints/{obj.slug}/predict/"


class EndpointCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=100, validators=[RegexValidator(
        r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$", "Lower-case letters, digits and hyphens, e.g. sample-qc.")],
        help_text="Part of the predict URL; not new or deployments.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    environment = serializers.ChoiceField(choices=Environment.choices, default=Environment.STAGING)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict,
                                   help_text='{"max_batch_size": 100, "log_inputs": true}')


class EndpointUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    config = serializers.JSONField(required=False)
    follow_mode = serializers.ChoiceField(choices=FollowMode.choices, required=False)
    follow_strategy = serializers.ChoiceField(choices=Strategy.choices, required=False)
    bake_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=7 * 24 * 60)


class RolloutEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, default=None, allow_null=True,
                                  help_text="Null for the rollout's own steps (the worker).")

    class Meta:
        model = RolloutEvent
        fields = ["id", "kind", "message", "traffic_weight", "data", "actor", "created_at"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    endpoint = serializers.CharField(source="endpoint.slug", read_only=True)
    model = serializers.CharField(source="model_version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    model_version_id = serializers.IntegerField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    current_step = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = ["id", "endpoint", "model", "version", "model_version_id", "strategy", "traffic_weight", "status",
                  "status_reason", "rollout_state", "rollout_step", "current_step", "paused_reason", "config",
                  "serving_path", "serving_path_reason", "health", "step_started_at", "next_check_at",
                  "created_by", "created_at", "updated_at", "started_at", "finished_at", "bake_until", "baked_at",
                  "previous_deployment", "registry_transition"]
        read_only_fields = fields

    def get_current_step(self, obj) -> float | None:
        """The traffic percentage of the current canary/rolling step."""
        steps = (obj.config or {}).get("steps") or []
        return steps[obj.rollout_step] if 0 <= obj.rollout_step < len(steps) else None


class DeploymentDetailSerializer(DeploymentSerializer):
    events = RolloutEventSerializer(many=True, read_only=True)

    class Meta(DeploymentSerializer.Meta):
        fields = [*DeploymentSerializer.Meta.fields, "events"]
        read_only_fields = fields


class DeploymentStartSerializer(serializers.Serializer):
    """Name the version to deploy: ``model`` and ``version`` together, or ``model_version_id``."""

    model = serializers.CharField(required=False, help_text="Registered model name (with version).")
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_NUMBER)
    model_version_id = IdField(required=False)
    strategy = serializers.ChoiceField(choices=Strategy.choices, default=Strategy.IMMEDIATE)
    config = serializers.JSONField(
        required=False, default=dict,
        help_text=('e.g. {"steps": [10, 25, 50, 100], "step_seconds": 300, "min_requests": 50, '
                   '"max_error_rate": 0.05, "max_p95_ms": 250, "rollback_window_s": 300, "replicas": 2, '
                   '"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}'))

    def validate(self, attrs):
        if "model_version_id" not in attrs and not ("model" in attrs and "version" in attrs):
            raise serializers.ValidationError({"model": ['Give "model" and "version", or "model_version_id".']})
        return attrs


class DryRunSerializer(serializers.Serializer):
    manifests = serializers.ListField(child=serializers.DictField())


class DeploymentPauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DeploymentRollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class FeedbackItemSerializer(serializers.Serializer):
    request_id = serializers.CharField(max_length=64)
    index = serializers.IntegerField(min_value=0, max_value=MAX_NUMBER, default=0)
    label = serializers.JSONField()


class FeedbackSerializer(serializers.Serializer):
    feedback = FeedbackItemSerializer(many=True)


class FeedbackResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    joined = serializers.IntegerField()
    unknown = serializers.IntegerField()


class WindowStatsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    instances = serializers.IntegerField()
    errors = serializers.IntegerField()
    invalid = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)
    rps = serializers.FloatField()
    accuracy = serializers.FloatField(allow_null=True)


class DeploymentStatsSerializer(WindowStatsSerializer):
    deployment_id = serializers.IntegerField()
    model = serializers.CharField()
    version = serializers.IntegerField()
    traffic_weight = serializers.FloatField()
    status = serializers.CharField()
    feedback = serializers.IntegerField()


class MetricsSerializer(serializers.Serializer):
    endpoint = serializers.CharField()
    window_seconds = serializers.FloatField()
    total = WindowStatsSerializer()
    deployments = DeploymentStatsSerializer(many=True)
    series = serializers.DictField(help_text="t, rps, p50_ms, p95_ms, p99_ms, error_rate: one value per bin")

    # "from"/"to" are Python keywords, so they are declared here.
    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields
