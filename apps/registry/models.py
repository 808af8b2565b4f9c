
from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models import Q

from apps.registry.choices import (
    ApprovalStatus,
    ModelTaskType,
    PromotionStage,
    RequestStatus,
    Stage,
    TransitionKind,
)


class RegisteredModel(models.Model):
    """A named model the lab relies on (e.g. ``sample-qc``), whose versions
    move through Staging and Production only with an approver's decision.
    Carries object permissions, including who may approve."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_models")
    task_type = models.CharField(max_length=20, choices=ModelTaskType.choices)
    tags = models.JSONField(default=dict, blank=True)
    # Quality gates evaluated when a promotion is requested, e.g.
    # {"metrics": [{"metric": "roc_auc", "op": ">=", "threshold": 0.85}],
    #  "max_regression": {"metric": "roc_auc", "margin": 0.02},
    #  "require_valid_signature": true, "require_valid_dataset": true}
    # Set only by Approvers and Admins (see services/registered_models.py), like the
    # holdout below: the requester never shapes the evidence that judges them.
    quality_gates = models.JSONField(default=dict, blank=True)
    # The platform's holdout for metric gates: every row of this dataset
    # version with a value in ``evaluation_target``. Empty: the test split the
    # platform made when one of its training jobs trained the candidate.
    evaluation_dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The holdout metric gates score candidates on (set by an Approver).")
    evaluation_target = models.CharField(max_length=200, blank=True,
                                         help_text="The label column of the evaluation dataset version.")
    champion_follows_production = models.BooleanField(default=True)
    latest_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Webhook subscriptions scoped to this model (apps.core.webhooks); they go with it.
    webhooks = GenericRelation("core.WebhookSubscription", content_type_field="subject_type",
                               object_id_field="subject_id")

    class Meta:
        ordering = ["name"]
        permissions = [
            ("approve_registeredmodel", "Can approve or reject promotions of a registered model"),
            ("rollback_registeredmodel", "Can roll a registered model back to its previous Production version"),
        ]

    def __str__(self):
        return self.name


class ModelVersion(models.Model):
    """Version N of a registered model: an immutable skops file with its
    SHA-256, input signature, input example, metrics and lineage to the run
    and dataset version it came from."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    source_run = models.ForeignKey("experiments.Run", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="model_versions")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="model_versions")
    artifact = models.CharField(max_length=500, help_text="Name of the skops file in artifact storage.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    # {"inputs": [{"name", "type", "nullable", "categories"?}], "target", "task", "classes"?}
    signature = models.JSONField(default=dict)
    input_example = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE, db_index=True)
    approval_status = models.CharField(max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.NONE)
    tags = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    # Set when a registry rollback took this version out of Production, so a
    # later rollback never picks it again; cleared when it is approved anew.
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")

    class Meta:
        ordering = ["registered_model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="model_version_number_unique"),
            models.UniqueConstraint(fields=["registered_model"], condition=Q(stage=Stage.PRODUCTION),
                                    name="one_production_version_per_model"),
        ]

    def __str__(self):
        return f"{self.registered_model.name} v{self.version}"


class ModelAlias(models.Model):
    """A movable name (``champion``, ``challenger``, …) for one version."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.SlugField(max_length=50)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"], name="model_alias_unique")]

    def __str__(self):
        return f"{self.registered_model.name}@{self.alias}"


class PromotionRequest(models.Model):
    """A request to move a version to Staging or Production: the quality-gate
    results (computed at request time, again whenever the model's gates
    change, and again at approval), and one approver's decision (never the
    requester's)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    target_stage = models.CharField(max_length=20, choices=PromotionStage.choices)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING,
                              db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField()
    # [{"gate": "metric_threshold", "metric": "roc_auc", "passed": true, "value": 0.91, ...}, ...]
    gate_results = models.JSONField(default=list)
    gates_passed = models.BooleanField(default=False)
    # What the results were computed under (gates, holdout, Production
    # version) and when: an approval refuses results that no longer match.
    gates_fingerprint = models.CharField(max_length=64, blank=True)
    gates_evaluated_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.version} → {self.target_stage} ({self.status})"


class StageTransition(models.Model):
    """One stage change of a version, kept forever: who moved it, from where
    to where, why, and through which request. Rollback finds "the previous
    Production version" here, and the version page shows it as history."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="stage_transitions")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    kind = models.CharField(max_length=20, choices=TransitionKind.choices)
    promotion_request = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="stage_transitions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.version}: {self.from_stage} → {self.to_stage}"
