from django.db import models


class Role(models.TextChoices):
    """The five roles, each a Django group made by a data migration."""

    VIEWER = "Viewer", "Viewer"
    DATA_SCIENTIST = "Data Scientist", "Data Scientist"
    ML_ENGINEER = "ML Engineer", "ML Engineer"
    APPROVER = "Approver", "Approver"
    ADMIN = "Admin", "Admin"


class DeliveryStatus(models.TextChoices):
    """Where one webhook delivery stands (apps.core.webhooks)."""

    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    # An attempt holds the delivery until ``next_attempt_at``; past it the
    # sender is presumed dead and the sweep sends again.
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# Sent by the "send test event" button to one subscription only.
WEBHOOK_TEST_EVENT = "webhook.test"
