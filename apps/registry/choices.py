from django.db import models


class Stage(models.TextChoices):
    NONE = "none", "None"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class PromotionStage(models.TextChoices):
    """The stages a promotion request may ask for."""

    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class ApprovalStatus(models.TextChoices):
    NONE = "none", "Not requested"
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class ModelTaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"


class TransitionKind(models.TextChoices):
    APPROVAL = "approval", "Approved promotion"
    SUPERSEDED = "superseded", "Archived by a newer Production version"
    ROLLBACK = "rollback", "Rollback"


class RegistryEvent(models.TextChoices):
    """Domain events the registry publishes (apps.core.events), which the
    webhooks facility also delivers. Webhooks carry events of other apps too,
    so subscriptions are not limited to this list."""

    VERSION_CREATED = "registry.model_version.created", "Version created"
    PROMOTION_REQUEST_CREATED = "registry.promotion_request.created", "Promotion requested"
    PROMOTION_REQUEST_APPROVED = "registry.promotion_request.approved", "Promotion approved"
    PROMOTION_REQUEST_REJECTED = "registry.promotion_request.rejected", "Promotion rejected"
    PROMOTION_REQUEST_CANCELLED = "registry.promotion_request.cancelled", "Promotion request cancelled"
    STAGE_CHANGED = "registry.model_version.stage_changed", "Stage changed"
    ALIAS_MOVED = "registry.alias.moved", "Alias moved"
    ALIAS_DELETED = "registry.alias.deleted", "Alias deleted"
    ROLLED_BACK = "registry.model.rolled_back", "Model rolled back"


# Published once the demo models exist, so the serving demo can start; not a
# webhook event anyone subscribes to on purpose.
DEMO_READY_EVENT = "registry.demo.ready"
