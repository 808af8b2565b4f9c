"""Every registry change announces itself twice: as a domain event for the
apps above (serving follows stage changes) and as webhook deliveries."""

from __future__ import annotations

from apps.core import events
from apps.registry.models import RegisteredModel
from apps.registry.services.webhooks import webhooks_emit


def announce(event: str, *, registered_model: RegisteredModel, payload: dict) -> None:
    """Publish after commit and queue webhook deliveries in the current transaction."""
    events.publish(event, payload)
    webhooks_emit(event=event, registered_model=registered_model, payload=payload)
