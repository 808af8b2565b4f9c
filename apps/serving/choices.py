from django.db import models


class Environment(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class Strategy(models.TextChoices):
    IMMEDIATE = "immediate", "Immediate"
    BLUE_GREEN = "blue_green", "Blue-green"
    ROLLING = "rolling", "Rolling"
    CANARY = "canary", "Canary"


class FollowMode(models.TextChoices):
    """What a production endpoint does when another version of its model
    enters Production (approval or registry rollback)."""

    AUTO = "auto", "Follow the registry"
    MANUAL = "manual", "Manual (flag as stale)"


class DeploymentStatus(models.TextChoices):
    """How the deployment itself is doing (what the lab sees on the badge)."""

    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Deploying"
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"


class RolloutState(models.TextChoices):
    """Where the rollout state machine is; separate from the status so that a
    paused canary is still a deploying deployment."""

    QUEUED = "queued", "Queued (health check next)"
    PROGRESSING = "progressing", "Moving traffic"
    PAUSED = "paused", "Paused"
    OBSERVING = "observing", "Rollback window open"
    COMPLETED = "completed", "Completed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"


# Rollout states in which the state machine still has work to do; at most one
# deployment per endpoint may be in one of them.
ACTIVE_ROLLOUT_STATES = (RolloutState.QUEUED, RolloutState.PROGRESSING, RolloutState.PAUSED,
                         RolloutState.OBSERVING)


class ServingPath(models.TextChoices):
    ONNX = "onnx", "ONNX Runtime"
    SKLEARN = "sklearn", "scikit-learn"
