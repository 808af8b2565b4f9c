from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.serving.choices import (
    ACTIVE_ROLLOUT_STATES,
    DeploymentStatus,
    Environment,
    FollowMode,
    RolloutState,
    ServingPath,
    Strategy,
)


class Endpoint(models.Model):
    """A stable address the lab's software asks for predictions
    (``/api/v1/endpoints/<slug>/predict/``), behind which deployments of model
    versions come and go. A production endpoint only serves versions in
    Production. Carries object permissions, including who may predict and who
    may deploy."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    environment = models.CharField(max_length=20, choices=Environment.choices, default=Environment.STAGING)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="endpoints")
    # {"max_batch_size": 100, "log_inputs": true}; see apps.serving.services.ENDPOINT_CONFIG_DEFAULTS
    config = models.JSONField(default=dict, blank=True)
    # A production endpoint follows its model's Production version: a newly
    # approved version is rolled out with ``follow_strategy``, a registry
    # rollback moves it at once. "manual" endpoints are flagged stale instead.
    follow_mode = models.CharField(max_length=10, choices=FollowMode.choices, default=FollowMode.AUTO)
    follow_strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.CANARY)
    # Minutes a completed rollout is watched and rolled back on its own if it
    # breaks its thresholds; empty: the DEPLOYMENT_BAKE_MINUTES setting.
    bake_minutes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("predict_endpoint", "Can send prediction requests and feedback to an endpoint"),
            ("deploy_endpoint", "Can deploy model versions to an endpoint and steer its rollouts"),
            # Without it, a client labels only the predictions it made itself.
            ("send_feedback_endpoint", "Can send ground truth for anyone's predictions on an endpoint"),
        ]

    def __str__(self):
        return self.slug


class Deployment(models.Model):
    """One model version put behind an endpoint with a rollout strategy.

    ``traffic_weight`` is the percentage of the endpoint's requests it gets
    now; the weights of an endpoint's deployments add up to 100 whenever any
    has traffic. ``status`` says how the deployment is doing, ``rollout_state``
    where its rollout state machine is (a paused canary is still deploying).
    The state machine is persisted here so a restarted worker carries on:
    ``rollout_step`` indexes ``config["steps"]``, ``next_check_at`` is when
    the next tick is due, and ``rollout_seq`` grows with every transition so a
    tick scheduled for an older state ends without doing anything."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deployments")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="deployments")
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.IMMEDIATE)
    traffic_weight = models.FloatField(default=0.0)
    status = models.CharField(max_length=20, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING,
                              db_index=True)
    status_reason = models.TextField(blank=True)
    # {"steps": [10, 25, 50, 100], "step_seconds": 300, "min_requests": 50, "max_error_rate": 0.05,
    #  "max_p95_ms": 250, "rollback_window_s": 600, "replicas": 2,
    #  "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {...}}}
    config = models.JSONField(default=dict, blank=True)
    serving_path = models.CharField(max_length=10, choices=ServingPath.choices, blank=True)
    serving_path_reason = models.TextField(blank=True)
    # The ONNX file compiled and verified at deploy time (empty when scikit-learn serves).
    compiled_artifact = models.CharField(max_length=500, blank=True)
    compiled_sha256 = models.CharField(max_length=64, blank=True)
    # {"ok": bool, "checked_at", "load_ms", "smoke_latency_ms", "latency_budget_ms", "errors": [...]}
    health = models.JSONField(default=dict, blank=True)

    rollout_state = models.CharField(max_length=20, choices=RolloutState.choices, default=RolloutState.QUEUED,
                                     db_index=True)
    rollout_step = models.IntegerField(default=-1)
    step_started_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    rollout_seq = models.PositiveIntegerField(default=0)
    # Weights of the endpoint's other deployments before this rollout moved
    # traffic ({"<deployment id>": weight}), restored on rollback.
    rollout_baseline = models.JSONField(default=dict, blank=True)
    paused_reason = models.TextField(blank=True)
    # The registry stage move this deployment follows (one deployment per
    # endpoint and move, so a redelivered event starts nothing twice).
    registry_transition = models.ForeignKey("registry.StageTransition", null=True, blank=True,
                                            on_delete=models.PROTECT, related_name="deployments")
    # After the rollout completes, the deployment bakes until ``bake_until``:
    # the one it replaced (``previous_deployment``) stays ready and is
    # restored on its own if the thresholds break. ``baked_at`` ends it.
    previous_deployment = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                            related_name="+")
    bake_until = models.DateTimeField(null=True, blank=True, db_index=True)
    baked_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When it first received traffic.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When its rollout ended.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "status"], name="deployment_endpoint_status_idx")]
        constraints = [
            models.UniqueConstraint(fields=["endpoint"], condition=Q(rollout_state__in=ACTIVE_ROLLOUT_STATES),
                                    name="one_active_rollout_per_endpoint"),
            models.CheckConstraint(condition=Q(traffic_weight__gte=0) & Q(traffic_weight__lte=100),
                                   name="deployment_traffic_weight_percent"),
            models.UniqueConstraint(fields=["endpoint", "registry_transition"],
                                    condition=Q(registry_transition__isnull=False),
                                    name="one_follow_deployment_per_transition"),
        ]

    def __str__(self):
        return f"{self.endpoint.slug} ← {self.model_version} ({self.strategy})"

    @property
    def rollout_active(self) -> bool:
        return self.rollout_state in ACTIVE_ROLLOUT_STATES

    @property
    def baking(self) -> bool:
        return self.bake_until is not None and self.baked_at is None and self.rollout_state == RolloutState.COMPLETED


class RolloutEvent(models.Model):
    """One entry of a deployment's timeline: created, health checked, a step
    started or passed, paused, resumed, promoted, rolled back, superseded."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    message = models.TextField(blank=True)
    traffic_weight = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["deployment", "created_at"], name="rollout_event_timeline_idx")]

    def __str__(self):
        return f"{self.deployment_id}: {self.kind}"

    @property
    def label(self) -> str:
        return self.kind.replace("_", " ").capitalize()


class TrafficSplit(models.Model):
    """N live deployments of an endpoint held at fixed weights (an A/B test's
    arms), with a routing salt of their own so that consecutive splits assign
    units independently. While a split is held (``ended_at`` empty) the
    endpoint routes by it, and rollouts, rollbacks and promotions on the
    endpoint are refused; ending it gives all traffic back to one arm.
    ``owner_label`` names who holds it (e.g. "A/B test 12"), for the 409."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="splits")
    salt = models.CharField(max_length=64, unique=True)
    # [{"deployment_id": 3, "model_version_id": 7, "weight": 50.0}, ...]; arm 0 is the control.
    arms = models.JSONField(default=list)
    owner_label = models.CharField(max_length=200)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Who allowed versions outside Production as challengers on a production endpoint.
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    kept_arm = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint"], condition=Q(ended_at__isnull=True),
                                    name="one_held_split_per_endpoint"),
        ]

    def __str__(self):
        return f"{self.endpoint.slug} split {self.pk} ({self.owner_label})"

    @property
    def held(self) -> bool:
        return self.ended_at is None

    @property
    def weights(self) -> list[tuple[int, float]]:
        """(deployment id, weight) in arm order, as the router takes them."""
        return [(int(arm["deployment_id"]), float(arm["weight"])) for arm in self.arms]


class PredictionLog(models.Model):
    """One predict request as it was answered (or refused after routing): a
    row per request, with the instances and answers as lists in request
    order, so a 100-row batch costs one row. Feedback addresses an answer by
    ``(request_id, index)``. Written in bulk off the request thread by
    ``apps.serving.logbuffer``; ``created_at`` is when the request arrived."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="prediction_logs")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="prediction_logs")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                      related_name="prediction_logs")
    request_id = models.CharField(max_length=64)
    unit_id = models.CharField(max_length=200, blank=True)
    n_instances = models.PositiveIntegerField(default=1)
    inputs = models.JSONField(default=list, blank=True)
    predictions = models.JSONField(default=list, blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    latency_ms = models.FloatField()
    status_code = models.PositiveSmallIntegerField(default=200)
    error = models.TextField(blank=True)
    serving_path = models.CharField(max_length=10, choices=ServingPath.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Who asked: the user and, when one was used, the API key. Plain ids, no
    # foreign keys: the log is written in bulk and outlives users and keys.
    principal_user_id = models.BigIntegerField(null=True, blank=True)
    principal_api_key_id = models.BigIntegerField(null=True, blank=True)
    # The split (A/B test) that routed the request and the arm that answered;
    # a plain id like the principals: the log is written in bulk.
    split_id = models.BigIntegerField(null=True, blank=True)
    split_arm = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A split's rows without scanning the endpoint's whole log.
            models.Index(fields=["split_id", "created_at"], condition=models.Q(split_id__isnull=False),
                         name="prediction_split_time_idx"),
            models.Index(fields=["deployment", "created_at"], name="prediction_deployment_time_idx"),
            models.Index(fields=["endpoint", "created_at"], name="prediction_endpoint_time_idx"),
            models.Index(fields=["request_id"], name="prediction_request_id_idx"),
            # The prediction log viewer's filters, each newest first within an endpoint.
            models.Index(fields=["endpoint", "model_version", "created_at"], name="prediction_ep_version_idx"),
            models.Index(fields=["endpoint", "unit_id", "created_at"], name="prediction_ep_unit_idx"),
            models.Index(fields=["endpoint", "created_at"], condition=models.Q(status_code__gte=500),
                         name="prediction_ep_error_idx"),
        ]

    def __str__(self):
        return f"{self.request_id} ({self.n_instances} instance(s))"

    @property
    def is_error(self) -> bool:
        return self.status_code >= 500


class Feedback(models.Model):
    """Ground truth for one answer of a logged prediction, sent later by the
    lab (e.g. the real library-prep QC outcome). Joined to the prediction by
    ``(endpoint, request_id, index)`` when it arrives, or later when the
    prediction's log row lands after it; the join copies the predicted value
    so live accuracy is a plain aggregate."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="feedback")
    request_id = models.CharField(max_length=64)
    index = models.PositiveIntegerField(default=0)
    label = models.JSONField()
    prediction = models.ForeignKey(PredictionLog, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="feedback")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="feedback")
    predicted = models.JSONField(null=True, blank=True)
    correct = models.BooleanField(null=True, blank=True)
    abs_error = models.FloatField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    joined_at = models.DateTimeField(null=True, blank=True)
    # Who sent it, for joining it later to a prediction that was not logged
    # yet: only to that principal's own predictions, unless the sender held
    # send_feedback_endpoint.
    sender_user_id = models.BigIntegerField(null=True, blank=True)
    sender_api_key_id = models.BigIntegerField(null=True, blank=True)
    sender_labels_any = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "request_id", "index"], name="feedback_once_per_answer"),
        ]
        indexes = [
            models.Index(fields=["request_id"], name="feedback_request_id_idx"),
            models.Index(fields=["deployment", "received_at"], name="feedback_deployment_time_idx"),
            models.Index(fields=["endpoint", "joined_at"], name="feedback_endpoint_joined_idx"),
        ]

    def __str__(self):
        return f"{self.request_id}[{self.index}] = {self.label}"
