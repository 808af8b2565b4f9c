"""Webhook subscriptions: who is told about which events.

A subscription names the events it wants in ``events``: exact names
(``registry.model_version.created``) or prefixes ending in ``.*``
(``registry.*``, ``deployment.*``); an empty list means every event. It may
be scoped to one object (its ``subject``, e.g. one registered model): it then
hears only of events published with that subject; unscoped ones hear of
every event that matches their names.

Targets are configured by administrators only (the Admin role holds the
webhook permissions): the platform sends requests from inside the lab
network, so who may point it at a URL matters. Only http and https URLs to
public addresses are accepted (see ``apps.core.webhooks.outbound``), checked
when the subscription is saved and again, on the resolved address, at each
send; redirects are never followed.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from apps.core.errors import ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.core.webhooks import outbound
from apps.core.webhooks.models import WebhookSubscription

EVENT_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
# What a subscription may name: an event, or a prefix of events ("serving.*").
EVENT_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$")
SUBSCRIPTION_AUDIT_FIELDS = ["name", "url", "subject_type", "subject_id", "events", "is_active"]


def allowed_hosts() -> list[str]:
    return list(getattr(settings, "WEBHOOK_ALLOWED_HOSTS", []) or [])


def clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url.isascii() or any(char.isspace() or not char.isprintable() for char in url):
        raise ValidationFailed("Write the webhook URL in ASCII: the host name in its xn-- form, other characters "
                               "percent-encoded.", details={"fields": {"url": ["Only ASCII URLs are allowed."]}})
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("A webhook URL must be an http:// or https:// URL with a host.",
                               details={"fields": {"url": ["Only http and https URLs are allowed."]}})
    if parts.username or parts.password:
        raise ValidationFailed("Put credentials in the signature secret, not in the webhook URL.",
                               details={"fields": {"url": ["Credentials in the URL are not allowed."]}})
    try:
        parts.port  # noqa: B018 (a bad port raises here, not at the first send)
        outbound.check_url(url, allowed_hosts=allowed_hosts())
    except ValueError:
        raise ValidationFailed("The webhook URL has an invalid port.",
                               details={"fields": {"url": ["Invalid port."]}}) from None
    except outbound.DestinationRefused as exc:
        raise ValidationFailed(f"Webhooks only go to public addresses: {exc}",
                               details={"fields": {"url": ["Not a public address."]}}) from None
    return url


def clean_events(events) -> list[str]:
    if events is None:
        return []
    if not isinstance(events, (list, tuple)) or not all(isinstance(e, str) for e in events):
        raise ValidationFailed("events must be a list of event names.")
    bad = [e for e in events if not (EVENT_NAME.match(e) or (e.endswith(".*") and EVENT_PATTERN.match(e)))]
    if bad:
        raise ValidationFailed(f"Not event names: {', '.join(bad)} (expected e.g. registry.model_version.created "
                               "or a prefix such as registry.*).", details={"fields": {"events": bad}})
    return sorted(set(events))


def _check_subject(actor, subject: models.Model | None) -> None:
    if subject is not None:
        meta = subject._meta
        require_perm(actor, f"{meta.app_label}.view_{meta.model_name}", subject)


def webhook_subscription_create(
    *, actor, name: str, url: str, subject: models.Model | None = None, events=None,
    secret: str = "", is_active: bool = True,
) -> WebhookSubscription:
    """Subscribe ``url`` to events of one object (or of all when ``subject``
    is None). Without a ``secret`` one is generated; the caller shows it once."""
    require_perm(actor, "core.add_webhooksubscription")
    _check_subject(actor, subject)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A webhook needs a name.", details={"fields": {"name": ["Required."]}})
    if secret and len(secret) < 16:
        raise ValidationFailed("A webhook secret must have at least 16 characters.",
                               details={"fields": {"secret": ["Too short."]}})
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            name=name[:100], url=clean_url(url), events=clean_events(events),
            subject_type=ContentType.objects.get_for_model(subject) if subject is not None else None,
            subject_id=subject.pk if subject is not None else None,
            secret=secret or secrets.token_urlsafe(32), is_active=is_active, created_by=actor,
        )
        audit_record(actor=actor, action="webhook.created", target=subscription,
                     after=snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS))
    return subscription


def webhook_subscription_update(*, subscription: WebhookSubscription, actor, **changes) -> WebhookSubscription:
    """Change name, url, events, is_active or secret of a subscription."""
    require_perm(actor, "core.change_webhooksubscription")
    allowed = {"name", "url", "events", "is_active", "secret"}
    if unknown := set(changes) - allowed:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of a webhook.")
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        before = snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS)
        if "name" in changes:
            if not (changes["name"] or "").strip():
                raise ValidationFailed("A webhook needs a name.")
            subscription.name = changes["name"].strip()[:100]
        if "url" in changes:
            subscription.url = clean_url(changes["url"])
        if "events" in changes:
            subscription.events = clean_events(changes["events"])
        if "is_active" in changes:
            subscription.is_active = bool(changes["is_active"])
        if changes.get("secret"):
            if len(changes["secret"]) < 16:
                raise ValidationFailed("A webhook secret must have at least 16 characters.")
            subscription.secret = changes["secret"]
        subscription.save()
        after = snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS)
        audit_record(actor=actor, action="webhook.updated", target=subscription, before=before, after=after,
                     message="secret rotated" if changes.get("secret") else "")
    return subscription


def webhook_subscription_delete(*, subscription: WebhookSubscription, actor) -> None:
    require_perm(actor, "core.delete_webhooksubscription")
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.deleted", target=subscription,
                     before=snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS))
        subscription.delete()
