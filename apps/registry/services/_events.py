"""Every registry change announces itself as a domain event scoped to its
registered model: the apps above hear of it after commit (serving follows
stage changes), and the webhooks facility (apps.core.webhooks) delivers it
to the subscriptions of that model and to the global ones."""

from __future__ import annotations

from apps.core import events
from apps.registry.models import RegisteredModel


def announce(event: str, *, registered_model: RegisteredModel, payload: dict) -> None:
    """Publish in the current transaction (webhook deliveries are written with the change)."""
    events.publish(event, payload, subject=registered_model, envelope={"registered_model": registered_model.name})
