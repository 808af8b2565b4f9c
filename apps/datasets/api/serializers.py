from django.urls import reverse
from rest_framework import serializers

from apps.core.api.fields import IdField
from apps.datasets.choices import ExpectationKind, Severity, TaskHint
from apps.datasets.models import Dataset, DatasetVersion, Expectation


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    version_count = serializers.IntegerField(read_only=True, default=0)
    latest_version = serializers.IntegerField(read_only=True, allow_null=True, default=None)
    latest_status = serializers.CharField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "owner", "task_hint", "target_column", "feature_spec",
                  "schema_version", "schema_check_severity",
                  "version_count", "latest_version", "latest_status", "created_at", "updated_at"]
        read_only_fields = fields


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    task_hint = serializers.ChoiceField(choices=TaskHint.choices, required=False, default=TaskHint.UNSPECIFIED)
    target_column = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    task_hint = serializers.ChoiceField(choices=TaskHint.choices, required=False)
    target_column = serializers.CharField(max_length=200, required=False, allow_blank=True)
    schema_version = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="Id of the version new versions are compared with (null: the previous valid version).")
    schema_check_severity = serializers.ChoiceField(choices=Severity.choices, required=False)


# A plain string in the OpenAPI schema: a status enum here would collide
# with the other apps' "status" enums in drf-spectacular's naming.
VERSION_STATUS_HELP = "pending → validating → valid | invalid"


class DatasetVersionSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=VERSION_STATUS_HELP)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "dataset_name", "version", "parent", "original_filename", "file_format",
                  "encoding", "delimiter", "read_options", "sha256", "size_bytes", "row_count", "column_count",
                  "status",
                  "status_reason", "progress", "progress_message", "quality_score", "note", "created_by",
                  "created_at", "validated_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, obj) -> str:
        return reverse("dataset-version-download", kwargs={"pk": obj.pk})


class DatasetVersionDetailSerializer(DatasetVersionSerializer):
    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "schema", "expectation_results", "quality_report"]
        read_only_fields = fields


class DatasetVersionUploadedSerializer(DatasetVersionSerializer):
    created = serializers.BooleanField(
        read_only=True,
        help_text="False when the same content already was a version of this dataset; that version is returned.")

    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "created"]
        read_only_fields = fields


class ReadOptionsSerializer(serializers.Serializer):
    """Overrides of what is detected; left out (or empty) means "detect".
    Checked by ``apps.datasets.fileformats.clean_options`` (400 ``invalid_read_options``)."""

    delimiter = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                      help_text="One character: , ; | or tab (also 'tab').")
    decimal = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                    help_text="Decimal mark: '.' or ','.")
    thousands = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                      help_text="Thousands separator: '', '.', ',', ' ' or \"'\".")
    encoding = serializers.CharField(required=False, allow_blank=True, help_text="e.g. utf-8, cp1252, latin-1.")
    header_row = serializers.CharField(required=False, allow_blank=True,
                                       help_text="Line number (1-based) of the header; lines above are skipped.")
    sheet = serializers.CharField(required=False, allow_blank=True, help_text="Sheet of an .xlsx (default: first).")
    column_types = serializers.JSONField(required=False,
                                         help_text='Type per column, e.g. {"lane": "categorical"}.')

    def read_options(self) -> dict:
        return {k: v for k, v in self.validated_data.items() if k in ReadOptionsSerializer._declared_fields}


class DatasetVersionPreviewSerializer(ReadOptionsSerializer):
    file = serializers.FileField(allow_empty_file=True, help_text="CSV, TSV, Excel .xlsx or Parquet.")


class DatasetVersionUploadSerializer(ReadOptionsSerializer):
    file = serializers.FileField(allow_empty_file=True,
                                 help_text="CSV, TSV, Excel .xlsx or Parquet; the extension decides the format.")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    parent = IdField(required=False, allow_null=True, default=None,
                                      help_text="Id of the version this one derives from.")


class PreviewColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class DatasetVersionPreviewResultSerializer(serializers.Serializer):
    read_options = serializers.DictField()
    columns = PreviewColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.DictField())


class DatasetVersionStatusSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=VERSION_STATUS_HELP)

    class Meta:
        model = DatasetVersion
        fields = ["id", "status", "status_reason", "progress", "progress_message", "quality_score", "validated_at"]
        read_only_fields = fields


# Plain strings in the OpenAPI schema (validated by the service): "kind" and
# "severity" enums would collide with other apps' fields of the same name.
KIND_HELP = "column_exists | column_type | value_range | allowed_categories | not_null | unique | row_count"
SEVERITY_HELP = "error (a failure makes the version invalid) | warning (reported only)"


class ExpectationSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=KIND_HELP)
    severity = serializers.CharField(read_only=True, help_text=SEVERITY_HELP)
    description = serializers.CharField(source="__str__", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Expectation
        fields = ["id", "dataset", "kind", "column", "params", "severity", "description", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = fields


# Named enums on input (ENUM_NAME_OVERRIDES), so clients see the allowed values.
class ExpectationWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExpectationKind.choices, help_text=KIND_HELP)
    column = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    params = serializers.JSONField(required=False, default=dict)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.ERROR,
                                       help_text=SEVERITY_HELP)


class ExpectationPatchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExpectationKind.choices, required=False, help_text=KIND_HELP)
    column = serializers.CharField(max_length=200, required=False, allow_blank=True)
    params = serializers.JSONField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, help_text=SEVERITY_HELP)


class FeatureSpecSerializer(serializers.Serializer):
    spec = serializers.JSONField(help_text="The stored spec ({} means the defaults).")
    effective = serializers.JSONField(read_only=True, allow_null=True,
                                      help_text="The spec with every column's kind, against the newest valid version.")
    feature_columns = serializers.ListField(child=serializers.CharField(), read_only=True)
    signature = serializers.JSONField(read_only=True, allow_null=True)
    schema_version = serializers.IntegerField(read_only=True, allow_null=True)
    error = serializers.CharField(read_only=True, allow_blank=True)


class FeatureSpecWriteSerializer(serializers.Serializer):
    spec = serializers.JSONField()


class DatasetLineageSerializer(serializers.Serializer):
    dataset_version = serializers.JSONField()
    parent = serializers.JSONField(allow_null=True)
    children = serializers.ListField(child=serializers.JSONField())
    runs = serializers.ListField(child=serializers.JSONField())
    training_jobs = serializers.ListField(child=serializers.JSONField())
    model_versions = serializers.ListField(child=serializers.JSONField())
    deployments = serializers.ListField(child=serializers.JSONField())
    hidden = serializers.DictField(child=serializers.IntegerField(), help_text=(
        "How many runs, model versions and deployments derived from this version the caller may not view "
        "(counted, never named)."))
