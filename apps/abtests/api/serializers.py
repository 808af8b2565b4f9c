"""Request and response shapes of ``POST /api/v1/ab-tests/analyze/``.

The request serializer checks types and presence; the statistics core then
checks what only it knows (sums consistent with n, weights summing to 1, a
prior only for the bayesian engine) and names the field either way.
"""

from __future__ import annotations

from rest_framework import serializers

from apps.abtests.choices import TestCorrection, TestEngine, TestKind, TestMetric
from apps.abtests.models import ABTest, ABTestArm
from apps.abtests.services import CORRECTIONS
from apps.abtests.stats import MAX_ARMS
from apps.abtests.stats.analyze import DIFFERENCES, ENGINES
from apps.abtests.stats.inputs import MAX_UNITS, METRIC_TYPES

MAX_ARM_NAME_LENGTH = 100


class NumberField(serializers.FloatField):
    """A JSON number, finite: no strings, no booleans (``true`` is not 1 unit)."""

    default_error_messages = {"invalid": "A finite number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class UnitCountField(serializers.IntegerField):
    """A JSON whole number of units (``53`` or ``53.0``), within the core's range."""

    default_error_messages = {"invalid": "A whole number of units is required."}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 2)
        kwargs.setdefault("max_value", MAX_UNITS)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        if isinstance(data, float):
            data = int(data)
        return super().to_internal_value(data)


def _optional(help_text: str) -> NumberField:
    return NumberField(required=False, allow_null=True, help_text=help_text)


class ArmStatisticsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_ARM_NAME_LENGTH, help_text="Unique within the request.")
    n = UnitCountField(help_text="Units (users, samples) assigned to the arm.")
    sum = NumberField(help_text="Sum of the metric over the units (conversions, for a proportion).")
    sum_squares = _optional("Sum of the squared metric; required for mean and ratio, equal to sum for a proportion "
                            "(and may then be omitted).")
    denominator_sum = _optional("Ratio metrics: sum of the denominator.")
    denominator_sum_squares = _optional("Ratio metrics: sum of the squared denominator.")
    sum_product = _optional("Ratio metrics: sum of numerator x denominator per unit.")
    covariate_sum = _optional("CUPED: sum of the pre-period covariate (every arm or none).")
    covariate_sum_squares = _optional("CUPED: sum of the squared covariate.")
    covariate_sum_product = _optional("CUPED: sum of metric x covariate per unit.")


class GaussianPriorSerializer(serializers.Serializer):
    mean = NumberField(required=False, default=0.0, help_text="Prior mean of the lift.")
    variance = NumberField(help_text="Prior variance of the lift; positive.")


class MetricAnalysisSerializer(serializers.Serializer):
    metric_type = serializers.ChoiceField(choices=METRIC_TYPES)
    arms = serializers.ListField(
        child=ArmStatisticsSerializer(), min_length=2, max_length=MAX_ARMS,
        help_text=f"2 to {MAX_ARMS} arms; the first is the control, each other arm is compared with it.")
    expected_weights = serializers.ListField(
        child=NumberField(), required=False, allow_null=True, min_length=2, max_length=MAX_ARMS,
        help_text="Expected share of units per arm, positive and summing to 1 (equal shares when omitted); "
                  "the sample-ratio-mismatch check compares the units with it.")
    engine = serializers.ChoiceField(choices=ENGINES, default="frequentist")
    difference = serializers.ChoiceField(choices=DIFFERENCES, default="relative",
                                         help_text="relative: lift over the control mean; absolute: difference.")
    alpha = NumberField(default=0.05, help_text="Significance level, strictly between 0 and 1; the intervals "
                                                "are (1 - alpha).")
    prior = GaussianPriorSerializer(required=False, allow_null=True,
                            help_text="Bayesian engine only: a Gaussian prior on the effect (flat when omitted).")
    sequential_tuning = NumberField(default=5000, help_text="Sequential engine: the confidence sequence's tuning "
                                                            "sample size; positive.")
    correction = serializers.ChoiceField(
        choices=CORRECTIONS, default="none",
        help_text="Multiple-comparison correction of the p-values (frequentist and sequential): holm, or bh "
                  "(Benjamini-Hochberg; 'benjamini-hochberg' is accepted too).")


class SrmCheckSerializer(serializers.Serializer):
    p_value = serializers.FloatField(help_text="Chi-squared test of the units per arm against expected_weights.")
    mismatch = serializers.BooleanField(help_text="p_value < 0.001: the split is broken; distrust the results.")


class ComparisonRiskSerializer(serializers.Serializer):
    control = serializers.FloatField(help_text="Expected loss of keeping the control if the treatment is better.")
    treatment = serializers.FloatField(help_text="Expected loss of shipping the treatment if it is worse.")


def _nullable(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class ArmComparisonSerializer(serializers.Serializer):
    arm = serializers.CharField(help_text="The treatment arm compared with the control.")
    estimate = _nullable("Relative lift or absolute difference.")
    ci = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True,
                               help_text="(1 - alpha) confidence (or credible) interval.")
    p_value = _nullable("Frequentist and sequential engines; the adjusted value under a correction.")
    stddev = _nullable("Standard error of the estimate.")
    dof = _nullable("Welch degrees of freedom (frequentist engine).")
    chance_to_win = _nullable("Bayesian engine: posterior probability that the treatment beats the control.")
    risk = ComparisonRiskSerializer(allow_null=True, help_text="Bayesian engine: expected losses.")
    significant = serializers.BooleanField()
    error = serializers.CharField(allow_null=True, help_text=(
        "Why this comparison has no numbers (zero_control_mean, zero_variance, non_finite); null otherwise."))


class MetricAnalysisResultSerializer(serializers.Serializer):
    srm = SrmCheckSerializer()
    comparisons = ArmComparisonSerializer(many=True)


# --- A/B tests on live traffic (/api/v1/ab-tests/) ----------------------------------------

class ArmInputSerializer(serializers.Serializer):
    """One arm: the version (``model`` + ``version``, or ``model_version_id``) and its weight."""

    model = serializers.CharField(required=False, max_length=200)
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    model_version_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    weight = NumberField(required=False, default=1.0, min_value=0.0)
    name = serializers.CharField(required=False, max_length=MAX_ARM_NAME_LENGTH)

    def validate(self, attrs):
        if "model_version_id" not in attrs and not ("model" in attrs and "version" in attrs):
            raise serializers.ValidationError({"model": ['Give "model" and "version", or "model_version_id".']})
        return attrs


class ABTestCreateSerializer(serializers.Serializer):
    endpoint = serializers.SlugField(max_length=100, help_text="The endpoint's slug.")
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=TestKind.choices, default=TestKind.CHAMPION_CHALLENGER)
    hypothesis = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    arms = ArmInputSerializer(many=True, help_text="Arm 0 is the control.")
    primary_metric = serializers.ChoiceField(choices=TestMetric.choices, default=TestMetric.ACCURACY)
    secondary_metrics = serializers.ListField(child=serializers.ChoiceField(choices=TestMetric.choices),
                                              required=False, default=list, max_length=len(TestMetric.values))
    guardrail_metrics = serializers.ListField(child=serializers.ChoiceField(choices=TestMetric.choices),
                                              required=False, default=list, max_length=len(TestMetric.values))
    minimum_detectable_effect = NumberField(required=False, default=0.02)
    alpha = NumberField(required=False, default=0.05)
    power = NumberField(required=False, default=0.8)
    engine = serializers.ChoiceField(choices=TestEngine.choices, default=TestEngine.SEQUENTIAL)
    correction = serializers.ChoiceField(choices=TestCorrection.choices, default=TestCorrection.HOLM)


class ABTestStopSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ABTestAbortSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ABTestShipSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=["immediate", "blue_green", "rolling", "canary"], default="canary",
                                       help_text="How the winner is deployed once its promotion is approved.")
    config = serializers.JSONField(required=False, allow_null=True, default=None,
                                   help_text='The deployment config; a canary defaults to {"analysis": "sequential"}.')


class ABTestConcludeSerializer(serializers.Serializer):
    winner = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=5,
                                      help_text="The winning arm's index; null or 0 for no detectable difference.")
    summary = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ABTestArmSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)

    class Meta:
        model = ABTestArm
        fields = ["index", "name", "model_version", "model", "version", "weight"]


class ABTestSerializer(serializers.ModelSerializer):
    endpoint = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    arms = ABTestArmSerializer(many=True, read_only=True)

    class Meta:
        model = ABTest
        fields = ["id", "name", "endpoint", "kind", "status", "hypothesis", "arms", "primary_metric",
                  "secondary_metrics", "guardrail_metrics", "minimum_detectable_effect", "alpha", "power", "engine",
                  "correction", "created_by", "approved_by", "approved_at", "split_id", "started_at", "stopped_at",
                  "stop_reason", "concluded_at", "decision", "created_at", "updated_at"]
        read_only_fields = fields
