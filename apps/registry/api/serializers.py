import json

from django.core.validators import RegexValidator
from django.urls import reverse
from rest_framework import serializers

from apps.core.api.fields import MAX_NUMBER, IdField
from apps.registry.choices import PromotionStage
from apps.registry.models import (
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)


class JSONStringOrValueField(serializers.JSONField):
    """A JSON value given either as JSON (application/json) or as a JSON
    string (a multipart form field)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.")
        return super().to_internal_value(data)


# --- Registered models ------------------------------------------------------------

class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    production_version = serializers.IntegerField(read_only=True, allow_null=True,
                                                  help_text="The version number in Production, if any.")
    pending_requests = serializers.IntegerField(read_only=True)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "description", "owner", "task_type", "tags", "quality_gates",
                  "evaluation_dataset_version", "evaluation_target",
                  "champion_follows_production", "latest_version", "production_version", "pending_requests",
                  "aliases", "created_at", "updated_at"]
        read_only_fields = fields

    def get_aliases(self, obj) -> dict[str, int]:
        return {a.alias: a.version.version for a in obj.aliases.all()}


# What registered_model_create accepts (a slug), stated here so the schema shows it.
MODEL_NAME = RegexValidator(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$",
                            "Lower-case letters, digits, hyphens and underscores, e.g. sample-qc.")


class RegisteredModelCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, validators=[MODEL_NAME],
                                 help_text="A slug such as sample-qc (no double hyphens).")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    task_type = serializers.ChoiceField(choices=RegisteredModel._meta.get_field("task_type").choices)
    quality_gates = serializers.JSONField(required=False, default=dict, help_text=(
        '{"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.85}], '
        '"max_regression": {"metric": "test_roc_auc", "margin": 0.02}, '
        '"require_valid_signature": true, "require_valid_dataset": true}'))
    tags = serializers.JSONField(required=False, default=dict)
    champion_follows_production = serializers.BooleanField(required=False, default=True)


class RegisteredModelUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    quality_gates = serializers.JSONField(required=False, help_text="Approvers and Admins only.")
    evaluation_dataset_version_id = IdField(
        required=False, allow_null=True, help_text=(
            "Approvers and Admins only: the dataset version metric gates score candidates on (null: the test "
            "split of the platform training job that trained the candidate)."))
    evaluation_target = serializers.CharField(required=False, allow_blank=True, help_text=(
        "Approvers and Admins only: its label column (default: the dataset's target column)."))
    tags = serializers.JSONField(required=False)
    champion_follows_production = serializers.BooleanField(required=False)


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField()


# --- Versions ------------------------------------------------------------------------

METRICS_SOURCE = "reported by the client"


class ModelVersionSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name", read_only=True)
    metrics = serializers.JSONField(read_only=True, help_text=(
        "The metrics the run logged, as reported by the client. Quality gates never judge them: the platform "
        "re-scores the model on its own holdout (see gate_results of a promotion request)."))
    metrics_source = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    aliases = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    rolled_back_by = serializers.CharField(source="rolled_back_by.username", read_only=True, default=None)

    class Meta:
        model = ModelVersion
        fields = ["id", "registered_model", "version", "description", "stage", "approval_status", "source_run",
                  "dataset_version", "sha256", "size_bytes", "signature", "input_example", "metrics",
                  "metrics_source", "tags", "aliases", "created_by", "created_at", "stage_changed_at",
                  "rolled_back_at", "rolled_back_by", "download_url"]
        read_only_fields = fields

    def get_aliases(self, obj) -> list[str]:
        return sorted(a.alias for a in obj.aliases.all())

    def get_metrics_source(self, obj) -> str:
        return METRICS_SOURCE

    def get_download_url(self, obj) -> str:
        # reverse() once per response, not once per row: a page of 100
        # versions otherwise spends most of its time resolving URLs.
        root = self.root
        parts = getattr(root, "_download_url_parts", None)
        if parts is None:
            template = reverse("registry-model-version-download", kwargs={"name": "__name__", "version": 0})
            parts = root._download_url_parts = template.split("__name__/versions/0/")
        return f"{parts[0]}{obj.registered_model.name}/versions/{obj.version}/{parts[1]}"


class ModelVersionRegisterSerializer(serializers.Serializer):
    run_id = IdField(help_text="A finished run with a model/model.skops artifact.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ModelVersionUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A skops file (skops.io.dump). Pickle and joblib files are refused.")
    signature = JSONStringOrValueField(help_text='{"inputs": [{"name", "type"}], "target", "task"}')
    input_example = JSONStringOrValueField(required=False, default=list)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    dataset_version_id = IdField(required=False, allow_null=True, default=None)


class ModelVersionUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.JSONField(required=False)


class LineageSerializer(serializers.Serializer):
    dataset_version = serializers.JSONField(allow_null=True)
    run = serializers.JSONField(allow_null=True)
    model_version = serializers.JSONField()
    deployments = serializers.ListField(child=serializers.JSONField())
    deployments_available = serializers.BooleanField(
        help_text="False while no serving app is installed to record deployments.")
    hidden = serializers.JSONField(help_text=(
        "What the caller may not view, counted and never named: whether the dataset version and the run are "
        "hidden (booleans) and how many deployments are on endpoints they cannot view."))


# --- Aliases ---------------------------------------------------------------------------

class ModelAliasSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    version_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = ModelAlias
        fields = ["registered_model", "alias", "version", "version_id", "updated_at"]
        read_only_fields = fields


class ModelAliasSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=MAX_NUMBER)


# --- Promotion requests -------------------------------------------------------------------

class PromotionRequestSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = PromotionRequest
        fields = ["id", "registered_model", "version", "version_id", "target_stage", "status", "requested_by",
                  "justification", "gate_results", "gates_passed", "gates_evaluated_at", "decided_by",
                  "decided_at", "decision_comment",
                  "override_reason", "created_at"]
        read_only_fields = fields

    def get_decided_by(self, obj) -> str | None:
        return obj.decided_by.username if obj.decided_by_id else None


class PromotionRequestCreateSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=PromotionStage.choices)
    justification = serializers.CharField()


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField()
    override_reason = serializers.CharField(required=False, allow_blank=True, default="", help_text=(
        "Admins only: why the promotion may go ahead although quality gates failed."))


class RejectSerializer(serializers.Serializer):
    comment = serializers.CharField()
