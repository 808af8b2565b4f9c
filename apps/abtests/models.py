from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.abtests.choices import TestCorrection, TestEngine, TestKind, TestMetric, TestStatus


class ABTest(models.Model):
    """A test of model versions on an endpoint's live traffic: arms at fixed
    weights (arm 0 the control), a hypothesis and the metrics it is judged
    on, and the design (minimum detectable effect, alpha, power, engine,
    correction). Starting it makes serving hold the arms as a split
    (``split_id``); stopping it gives the traffic back to the control. On a
    production endpoint, a challenger outside Production needs an Approver
    other than the creator (``approved_by``). A concluded test keeps its
    decision and the results it rested on (``result_snapshot``)."""

    endpoint = models.ForeignKey("serving.Endpoint", on_delete=models.PROTECT, related_name="ab_tests")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=TestKind.choices, default=TestKind.CHAMPION_CHALLENGER)
    hypothesis = models.TextField(blank=True)
    primary_metric = models.CharField(max_length=20, choices=TestMetric.choices, default=TestMetric.ACCURACY)
    secondary_metrics = models.JSONField(default=list, blank=True)
    guardrail_metrics = models.JSONField(default=list, blank=True)
    minimum_detectable_effect = models.FloatField(default=0.02, validators=[MinValueValidator(0.0)],
                                                  help_text="Relative lift the test is sized to detect.")
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)])
    power = models.FloatField(default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)])
    engine = models.CharField(max_length=20, choices=TestEngine.choices, default=TestEngine.SEQUENTIAL)
    correction = models.CharField(max_length=10, choices=TestCorrection.choices, default=TestCorrection.HOLM)
    status = models.CharField(max_length=20, choices=TestStatus.choices, default=TestStatus.DRAFT, db_index=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    # The serving split that holds the arms while the test runs (a plain id:
    # serving does not know about tests).
    split_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    concluded_at = models.DateTimeField(null=True, blank=True)
    # {"winner": arm index or null, "summary": "..."}
    decision = models.JSONField(default=dict, blank=True)
    result_snapshot = models.JSONField(default=dict, blank=True)
    # How far ``ab_test_stats_update`` has read: the last prediction log and
    # feedback ids added into the arms' statistics.
    stats_prediction_cursor = models.BigIntegerField(default=0)
    stats_feedback_cursor = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "A/B test"
        constraints = [
            models.UniqueConstraint(fields=["endpoint"], condition=Q(status="running"),
                                    name="one_running_ab_test_per_endpoint"),
        ]

    def __str__(self):
        return f"A/B test {self.pk}: {self.name}"

    @property
    def label(self) -> str:
        """How serving names the holder of the split."""
        return f"A/B test {self.pk} ({self.name})"[:200]


class ABTestArm(models.Model):
    """One arm of a test: a model version and its share of the traffic."""

    ab_test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="arms")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="ab_test_arms")
    weight = models.FloatField(validators=[MinValueValidator(0.0)])

    class Meta:
        ordering = ["ab_test", "index"]
        verbose_name = "A/B test arm"
        constraints = [
            models.UniqueConstraint(fields=["ab_test", "index"], name="ab_test_arm_index_unique"),
            models.UniqueConstraint(fields=["ab_test", "model_version"], name="ab_test_arm_version_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="ab_test_arm_weight_positive"),
        ]

    def __str__(self):
        return f"{self.ab_test_id}/{self.index} {self.name}"

    @property
    def is_control(self) -> bool:
        return self.index == 0


class ABTestArmStatistic(models.Model):
    """Running sufficient statistics of one arm on one metric (count, sum,
    sum of squares), added to incrementally by ``ab_test_stats_update`` from
    the prediction log and feedback, so that results never scan the log."""

    arm = models.ForeignKey(ABTestArm, on_delete=models.CASCADE, related_name="statistics")
    metric = models.CharField(max_length=20, choices=TestMetric.choices)
    n = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0.0)
    sum_squares = models.FloatField(default=0.0)
    # Per randomisation unit (see ``ABTestUnit``): with x_u the unit's sum of
    # the metric and y_u its count, ``sum`` = Σx_u and ``n`` = Σy_u; these add
    # Σx_u², Σy_u², Σx_u·y_u for the delta method, and for CUPED the unit's
    # mean m_u = x_u / y_u against its pre-period covariate c_u.
    units = models.BigIntegerField(default=0)
    unit_sum_squares = models.FloatField(default=0.0)
    unit_count_squares = models.FloatField(default=0.0)
    unit_sum_product = models.FloatField(default=0.0)
    unit_mean_sum = models.FloatField(default=0.0)
    unit_mean_sum_squares = models.FloatField(default=0.0)
    covariate_units = models.BigIntegerField(default=0)
    covariate_sum = models.FloatField(default=0.0)
    covariate_sum_squares = models.FloatField(default=0.0)
    covariate_sum_product = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["arm", "metric"]
        verbose_name = "A/B test arm statistic"
        constraints = [models.UniqueConstraint(fields=["arm", "metric"], name="ab_test_arm_metric_unique")]

    def __str__(self):
        return f"{self.arm} {self.metric}: n={self.n}"


class ABTestUnit(models.Model):
    """Running aggregates of one randomisation unit (a sample, a submitting
    lab) in one test: its requests, errors, latency, answers and the feedback
    on them, so that results are analysed per unit without rescanning the log.
    ``unit_key`` is ``u:<unit_id>``, or ``r:<log id>`` for a request that came
    without a unit (its own unit). The ``pre_*`` fields hold the unit's metric
    before the test started (CUPED's covariate), null when it had no traffic."""

    ab_test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="units")
    arm_index = models.PositiveSmallIntegerField()
    unit_key = models.CharField(max_length=220)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    answered = models.BigIntegerField(default=0)
    latency_sum = models.FloatField(default=0.0)
    instances = models.BigIntegerField(default=0)
    positives = models.BigIntegerField(default=0)
    scored = models.BigIntegerField(default=0)
    confidence_sum = models.FloatField(default=0.0)
    reviews = models.BigIntegerField(default=0)
    labelled = models.BigIntegerField(default=0)
    correct = models.BigIntegerField(default=0)
    graded = models.BigIntegerField(default=0)
    abs_error_sum = models.FloatField(default=0.0)
    pre_error_rate = models.FloatField(null=True, blank=True)
    pre_latency_ms = models.FloatField(null=True, blank=True)
    pre_accuracy = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["ab_test", "arm_index", "unit_key"]
        verbose_name = "A/B test unit"
        constraints = [models.UniqueConstraint(fields=["ab_test", "unit_key"], name="ab_test_unit_unique")]

    def __str__(self):
        return f"{self.ab_test_id}/{self.arm_index} {self.unit_key}"
