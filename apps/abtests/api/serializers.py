"""Request and response shapes of ``POST /api/v1/ab-tests/analyze/``.

The request serializer checks types and presence; the statistics core then
checks what only it knows (sums consistent with n, weights summing to 1, a
prior only for the bayesian engine) and names the field either way.
"""

from __future__ import annotations

from rest_framework import serializers

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
