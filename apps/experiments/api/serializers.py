"""Input and output shapes of the tracking and training API. Output
serializers read what selectors attached; input serializers only parse."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.fields import MAX_NUMBER, IdField
from apps.experiments.choices import JobStatus, RunStatus, TaskType
from apps.experiments.estimators import ESTIMATORS
from apps.experiments.models import Artifact, Experiment, Run, TrainingJob

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NUMBER_MAP = {"type": "object", "additionalProperties": {"type": "number"}}
_TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer",
                                                                 "description": "milliseconds since the epoch"}]}


@extend_schema_field(_STRING_MAP)
class StringMapField(serializers.DictField):
    child = serializers.CharField(allow_blank=True)


@extend_schema_field(_TIME)
class TimeField(serializers.JSONField):
    """An ISO 8601 string or milliseconds since the epoch; parsed by the service."""


# --- Experiments --------------------------------------------------------------------

class ExperimentSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    tags = serializers.SerializerMethodField()
    run_count = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "tags", "owner", "run_count", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(_STRING_MAP)
    def get_tags(self, obj) -> dict:
        return obj.tags or {}

    def get_run_count(self, obj) -> int | None:
        return getattr(obj, "run_count", None)


class ExperimentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = StringMapField(required=False, default=dict)


class ExperimentUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    tags = StringMapField(required=False)


# --- Runs ---------------------------------------------------------------------------

class RunSerializer(serializers.ModelSerializer):
    """A run with its params, latest metric values and tags as objects."""

    experiment_id = serializers.IntegerField(read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    parent_run_id = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)
    dataset_version_id = serializers.IntegerField(read_only=True, allow_null=True)
    params = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    artifacts_count = serializers.SerializerMethodField()
    training_job_id = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = ["id", "experiment_id", "name", "status", "status_reason", "user", "parent_run_id",
                  "dataset_version_id", "source_version", "note", "start_time", "end_time", "created_at",
                  "params", "metrics", "tags", "artifacts_count", "training_job_id"]
        read_only_fields = fields

    @extend_schema_field(_STRING_MAP)
    def get_params(self, obj) -> dict:
        return obj.param_map

    @extend_schema_field(_NUMBER_MAP)
    def get_metrics(self, obj) -> dict:
        return obj.metric_map

    @extend_schema_field(_STRING_MAP)
    def get_tags(self, obj) -> dict:
        return obj.tag_map

    def get_artifacts_count(self, obj) -> int:
        return obj.artifact_count

    def get_training_job_id(self, obj) -> int | None:
        return obj.training_job_id


def run_payloads(runs) -> list[dict]:
    """``RunSerializer(runs, many=True).data`` built directly, for pages of
    runs (search): the same keys in the same order and the same values, at
    a tenth of the cost of a serializer's field machinery per run. Runs
    need ``user`` loaded and ``attach_details``. A test holds the two
    equal; a field added to ``RunSerializer`` must be added here too."""
    moment = serializers.DateTimeField(default_timezone=timezone.get_current_timezone() if settings.USE_TZ
                                       else None).to_representation
    return [{
        "id": run.pk,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "status_reason": run.status_reason,
        "user": run.user.username,
        "parent_run_id": run.parent_id,
        "dataset_version_id": run.dataset_version_id,
        "source_version": run.source_version,
        "note": run.note,
        "start_time": moment(run.start_time),
        "end_time": moment(run.end_time),
        "created_at": moment(run.created_at),
        "params": run.param_map,
        "metrics": run.metric_map,
        "tags": run.tag_map,
        "artifacts_count": run.artifact_count,
        "training_job_id": run.training_job_id,
    } for run in runs]


class RunCreateSerializer(serializers.Serializer):
    """Give ``experiment_id`` or ``experiment`` (its name): one of the two is required."""

    experiment_id = IdField(required=False)
    experiment = serializers.CharField(required=False, help_text="Experiment name, instead of experiment_id.")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=250)
    parent_run_id = IdField(required=False, allow_null=True)
    dataset_version_id = IdField(required=False, allow_null=True)
    source_version = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    tags = StringMapField(required=False, default=dict)
    start_time = TimeField(required=False, allow_null=True)

    def validate(self, attrs):
        if attrs.get("experiment_id") is None and not attrs.get("experiment"):
            raise serializers.ValidationError({"experiment_id": ["Give experiment_id or experiment (a name)."]})
        return attrs


class RunUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=250)
    note = serializers.CharField(required=False, allow_blank=True)


class RunFinishSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED],
                                     default=RunStatus.FINISHED)
    end_time = TimeField(required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


# The service's KEY_RE, shown in the schema (these serializers only document the body).
METRIC_KEY = RegexValidator(r"^[A-Za-z0-9_\-. :/]{1,250}$")


class MetricInSerializer(serializers.Serializer):
    key = serializers.CharField(validators=[METRIC_KEY])
    value = serializers.FloatField(help_text="Finite; NaN and infinity are refused.")
    step = serializers.IntegerField(required=False, default=0)
    timestamp = TimeField(required=False)


class KeyValueSerializer(serializers.Serializer):
    key = serializers.CharField(validators=[METRIC_KEY])
    value = serializers.CharField(allow_blank=True)


class LogBatchSerializer(serializers.Serializer):
    """Documentation of the log-batch body; the service validates it item by
    item (faster than a serializer per item, and it names the bad item)."""

    metrics = MetricInSerializer(many=True, required=False, help_text="At most 1000.")
    params = KeyValueSerializer(many=True, required=False, help_text="At most 100; write-once.")
    tags = KeyValueSerializer(many=True, required=False, help_text="At most 100.")


class LogBatchResultSerializer(serializers.Serializer):
    metrics = serializers.IntegerField()
    params = serializers.IntegerField()
    tags = serializers.IntegerField()


class RunSearchSerializer(serializers.Serializer):
    experiment_ids = serializers.ListField(child=IdField(), required=False, allow_null=True,
                                           help_text="One or many; all experiments you may view when absent.")
    filter = serializers.CharField(required=False, allow_blank=True, default="")
    order_by = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    max_results = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)
    page_token = serializers.CharField(required=False, allow_blank=True, allow_null=True)


class RunSearchResultSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class ArtifactSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["id", "path", "size_bytes", "sha256", "content_type", "created_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, obj) -> str:
        from urllib.parse import urlencode

        base = reverse("run-artifacts-download", kwargs={"pk": obj.run_id})
        return f"{base}?{urlencode({'path': obj.path})}"


class ArtifactUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    path = serializers.CharField(required=False, allow_blank=True, help_text="Defaults to the file name.")


class MetricPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    value = serializers.FloatField()
    timestamp = serializers.DateTimeField()


class MetricHistorySerializer(serializers.Serializer):
    key = serializers.CharField()
    points = MetricPointSerializer(many=True)
    total = serializers.IntegerField()
    downsampled = serializers.BooleanField()
    method = serializers.CharField(help_text="none, lttb, or minmax+lttb (very long histories).")


# --- Training jobs ------------------------------------------------------------------

@extend_schema_field({"type": "string", "enum": list(ESTIMATORS)})
class EstimatorField(serializers.CharField):
    """The allow-list shown in the schema; the service checks it and names the field in its 400."""


class SplitSerializer(serializers.Serializer):
    test_size = serializers.FloatField(required=False, default=0.2)
    validation_size = serializers.FloatField(required=False, default=0.1)
    seed = serializers.IntegerField(required=False, default=42)
    stratify = serializers.BooleanField(required=False, default=True)


class SearchSpecSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["grid", "random"])
    space = serializers.DictField(child=serializers.JSONField())
    n_iter = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_NUMBER)
    metric = serializers.CharField(required=False, allow_blank=True, default="")


class TrainingJobCreateSerializer(serializers.Serializer):
    """Give ``experiment_id`` or ``experiment`` (its name): one of the two is required."""

    experiment_id = IdField(required=False)
    experiment = serializers.CharField(required=False, help_text="Experiment name, instead of experiment_id.")
    dataset_version_id = IdField()
    target_column = serializers.CharField(required=False, allow_blank=True, default="",
                                          help_text="Defaults to the dataset's target column.")
    task = serializers.ChoiceField(choices=TaskType.choices, required=False, allow_null=True, default=None)
    estimator = EstimatorField(help_text="From the allow-list.")
    hyperparameters = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)
    split = SplitSerializer(required=False)
    cv_folds = serializers.IntegerField(required=False, default=0, min_value=0, max_value=20)
    search = SearchSpecSerializer(required=False, allow_null=True)
    run_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=250)

    def validate(self, attrs):
        if attrs.get("experiment_id") is None and not attrs.get("experiment"):
            raise serializers.ValidationError({"experiment_id": ["Give experiment_id or experiment (a name)."]})
        return attrs


class TrainingJobSerializer(serializers.ModelSerializer):
    run_id = serializers.IntegerField(read_only=True)
    experiment_id = serializers.IntegerField(source="run.experiment_id", read_only=True)
    dataset_version_id = serializers.IntegerField(read_only=True)
    parent_job_id = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)
    run_status = serializers.ChoiceField(source="run.status", choices=RunStatus.choices, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    status = serializers.ChoiceField(choices=JobStatus.choices, read_only=True)
    search = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField()

    class Meta:
        model = TrainingJob
        fields = ["id", "run_id", "experiment_id", "dataset_version_id", "parent_job_id", "target_column", "task",
                  "estimator", "hyperparameters", "split", "cv_folds", "search", "status", "progress",
                  "progress_message", "error", "run_status", "worker", "created_by", "created_at", "started_at",
                  "finished_at", "heartbeat_at", "children"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "nullable": True})
    def get_search(self, obj) -> dict | None:
        if obj.search_kind == "none":
            return None
        return {"kind": obj.search_kind, "space": obj.search_space, "n_iter": obj.search_iterations,
                "metric": obj.search_metric}

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_children(self, obj) -> list:
        children = getattr(obj, "child_list", None)
        if children is None:
            return []
        return [{"id": c.pk, "run_id": c.run_id, "status": c.status, "progress": c.progress,
                 "hyperparameters": c.hyperparameters, "worker": c.worker} for c in children]
