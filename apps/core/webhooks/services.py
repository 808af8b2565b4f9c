"""The webhook services, in one place for callers (the rooms are
``subscriptions`` and ``delivery``)."""

from apps.core.webhooks.delivery import (
    DeliveryOutcome,
    backoff_seconds,
    webhook_delivery_attempt,
    webhook_delivery_sweep,
    webhook_send_test,
    webhooks_emit,
)
from apps.core.webhooks.subscriptions import (
    clean_events,
    clean_url,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_update,
)

__all__ = [
    "DeliveryOutcome",
    "backoff_seconds",
    "clean_events",
    "clean_url",
    "webhook_delivery_attempt",
    "webhook_delivery_sweep",
    "webhook_send_test",
    "webhook_subscription_create",
    "webhook_subscription_delete",
    "webhook_subscription_update",
    "webhooks_emit",
]
