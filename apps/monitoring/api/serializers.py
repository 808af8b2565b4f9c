"""Drift report requests and results."""

from rest_framework import serializers

from apps.core.api.fields import IdField
from apps.monitoring.choices import Correction, ReportStatus
from apps.monitoring.drift import METHODS
from apps.monitoring.plan import MAX_COLUMNS


class DriftReportCreateSerializer(serializers.Serializer):
    """Two modes: two dataset versions (``reference_version_id`` and
    ``current_version_id``), or an endpoint's logged inputs over a window
    (``endpoint`` with optional ``since``/``until``; the reference is the
    serving model version's training data unless ``reference_version_id``
    names one)."""

    reference_version_id = IdField(
        required=False,
        help_text="Dataset version used as the reference (e.g. the training data). Required with "
                  "current_version_id; with endpoint it overrides the model version's training data.")
    current_version_id = IdField(required=False, help_text="Dataset version compared with the reference.")
    endpoint = serializers.SlugField(
        max_length=100, required=False,
        help_text="Check this endpoint's logged inputs (invalid requests included) instead of a dataset version.")
    since = serializers.CharField(
        max_length=64, required=False,
        help_text="Start of the endpoint window (ISO 8601; default: an hour before until). At most 31 days.")
    until = serializers.CharField(max_length=64, required=False,
                                  help_text="End of the endpoint window, exclusive (ISO 8601; default: now).")
    columns = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=MAX_COLUMNS,
        help_text="Columns to test; by default every numeric or categorical feature column both versions share.",
    )
    drift_share = serializers.FloatField(
        required=False, default=0.5, min_value=0, max_value=1,
        help_text="The dataset drifts when at least this share of the tested columns drift; in (0, 1].",
    )
    correction = serializers.ChoiceField(
        choices=Correction.choices, required=False, default=Correction.NONE,
        help_text="Multiple-testing correction of the p-values of test-based columns.",
    )
    methods = serializers.DictField(
        child=serializers.ChoiceField(choices=sorted(METHODS)), required=False, default=dict,
        help_text="Per-column method: " + ", ".join(f"{m.name} ({m.description})" for m in METHODS.values()) + ".",
    )
    thresholds = serializers.DictField(
        child=serializers.FloatField(min_value=0), required=False, default=dict,
        help_text="Per-column threshold: the p-value level for tests, the drift level for distances.",
    )

    def validate(self, attrs):
        if "endpoint" in attrs:
            if "current_version_id" in attrs:
                raise serializers.ValidationError(
                    {"current_version_id": ["Give either endpoint or current_version_id, not both."]})
            return attrs
        for name in ("since", "until"):
            if name in attrs:
                raise serializers.ValidationError({name: ["A window applies only with endpoint."]})
        for name in ("reference_version_id", "current_version_id"):
            if name not in attrs:
                raise serializers.ValidationError(
                    {name: ["This field is required (or give endpoint to check its logged inputs)."]})
        return attrs


class DriftStatisticsSerializer(serializers.Serializer):
    """Every statistic that applies to the column (absent ones do not apply)."""

    ks_statistic = serializers.FloatField(required=False)
    ks_p_value = serializers.FloatField(required=False)
    wasserstein_normed = serializers.FloatField(required=False)
    psi = serializers.FloatField(required=False)
    js_distance = serializers.FloatField(required=False)
    chi2_p_value = serializers.FloatField(required=False,
                                          help_text="Two-sample χ² test of homogeneity.")
    chi2_gof_p_value = serializers.FloatField(required=False,
                                              help_text="Evidently's χ² goodness of fit to the reference shares.")
    z_p_value = serializers.FloatField(required=False)


class DriftColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["numeric", "categorical"])
    method = serializers.ChoiceField(choices=sorted(METHODS))
    statistic = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField()
    drifted = serializers.BooleanField()
    reference_count = serializers.IntegerField()
    current_count = serializers.IntegerField()
    statistics = DriftStatisticsSerializer()
    p_value_adjusted = serializers.FloatField(required=False)


class SkippedColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField()


class ServedVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class DriftReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    reference_version_id = serializers.IntegerField()
    current_version_id = serializers.IntegerField(allow_null=True)
    endpoint = serializers.CharField(allow_null=True, help_text="The endpoint whose logged inputs were checked.")
    since = serializers.DateTimeField(allow_null=True, help_text="Start of the endpoint window.")
    until = serializers.DateTimeField(allow_null=True, help_text="End of the endpoint window (exclusive).")
    model_version = ServedVersionSerializer(
        allow_null=True, help_text="The model version that answered most of the window's requests.")
    drift_share = serializers.FloatField()
    correction = serializers.ChoiceField(choices=Correction.choices)
    dataset_drift = serializers.BooleanField(allow_null=True, help_text="Set once the report is done.")
    drifted_share = serializers.FloatField(allow_null=True)
    drifted_count = serializers.IntegerField(allow_null=True)
    columns = DriftColumnSerializer(many=True)
    target = DriftColumnSerializer(allow_null=True, help_text="Drift of the dataset's target column, if tested.")
    skipped = SkippedColumnSerializer(many=True)
    reference_rows = serializers.IntegerField(allow_null=True)
    current_rows = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    owner = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class DriftReportCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
