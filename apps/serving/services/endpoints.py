"""Endpoints: create, change, delete."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from apps.core import events
from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import grant_on_create, require_perm
from apps.core.services import audit_record, snapshot
from apps.serving.choices import DeploymentStatus, Environment, FollowMode, Strategy
from apps.serving.models import Endpoint
from apps.serving.runtime import bump_routing_stamp

ENDPOINT_AUDIT_FIELDS = ["slug", "name", "environment", "description", "owner", "config", "follow_mode",
                         "follow_strategy", "bake_minutes"]
ENDPOINT_CONFIG_DEFAULTS = {"max_batch_size": 100, "log_inputs": True, "unit_field": ""}
MAX_BATCH_LIMIT = 10_000
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
# Words the endpoint pages use in their own URLs.
RESERVED_SLUGS = frozenset({"new", "deployments"})


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": {field: [message]}})


def clean_endpoint_config(raw) -> dict:
    """Endpoint settings with defaults: ``max_batch_size`` (instances per
    request, 1..10000), ``log_inputs`` (keep the instances in the log) and
    ``unit_field`` (the input field that names the assignment unit of a
    request without ``unit_id``, e.g. ``submitting_lab``; empty: none)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _invalid("config", "must be an object")
    unknown = sorted(set(raw) - set(ENDPOINT_CONFIG_DEFAULTS))
    if unknown:
        raise _invalid(f"config.{unknown[0]}", f"unknown setting (allowed: {', '.join(ENDPOINT_CONFIG_DEFAULTS)})")
    config = {**ENDPOINT_CONFIG_DEFAULTS, **raw}
    size = config["max_batch_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_LIMIT:
        raise _invalid("config.max_batch_size", f"must be a whole number from 1 to {MAX_BATCH_LIMIT}")
    if not isinstance(config["log_inputs"], bool):
        raise _invalid("config.log_inputs", "must be true or false")
    if not isinstance(config["unit_field"], str) or len(config["unit_field"]) > 200:
        raise _invalid("config.unit_field", "must be the name of an input field (at most 200 characters)")
    return config


def _clean_follow(changes: dict) -> dict:
    """How the endpoint follows the registry and how long its rollouts bake."""
    cleaned = {}
    if "follow_mode" in changes:
        if changes["follow_mode"] not in FollowMode.values:
            raise _invalid("follow_mode", f"must be one of {', '.join(FollowMode.values)}")
        cleaned["follow_mode"] = changes["follow_mode"]
    if "follow_strategy" in changes:
        if changes["follow_strategy"] not in Strategy.values:
            raise _invalid("follow_strategy", f"must be one of {', '.join(Strategy.values)}")
        cleaned["follow_strategy"] = changes["follow_strategy"]
    if "bake_minutes" in changes:
        value = changes["bake_minutes"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 7 * 24 * 60):
            raise _invalid("bake_minutes", "must be a whole number of minutes from 0 to 10080, or empty")
        cleaned["bake_minutes"] = value
    return cleaned


def _clean_fields(*, slug=None, name=None, environment=None, description=None) -> dict:
    cleaned = {}
    if slug is not None:
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise _invalid("slug", "use lower-case letters, digits and hyphens (e.g. sample-qc), at most 100")
        if slug in RESERVED_SLUGS:
            raise _invalid("slug", f"{slug!r} is reserved; choose another")
        cleaned["slug"] = slug
    if name is not None:
        name = str(name).strip()
        if not name or len(name) > 200:
            raise _invalid("name", "must be 1 to 200 characters")
        cleaned["name"] = name
    if environment is not None:
        if environment not in Environment.values:
            raise _invalid("environment", f"must be one of {', '.join(Environment.values)}")
        cleaned["environment"] = environment
    if description is not None:
        cleaned["description"] = str(description)
    return cleaned


def endpoint_create(*, actor, slug: str, name: str = "", environment: str = Environment.STAGING,
                    description: str = "", config: dict | None = None) -> Endpoint:
    """A new endpoint owned by ``actor``, who gets every right on it."""
    require_perm(actor, "serving.add_endpoint")
    fields = _clean_fields(slug=slug, name=name or slug, environment=environment, description=description)
    fields["config"] = clean_endpoint_config(config)
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(owner=actor, **fields)
            grant_on_create(endpoint, owner=actor)
            audit_record(actor=actor, action="endpoint.created", target=endpoint,
                         after=snapshot(endpoint, ENDPOINT_AUDIT_FIELDS))
            events.publish("serving.endpoint.created", {"endpoint_id": endpoint.pk, "slug": endpoint.slug},
                           subject=endpoint, webhooks=False)
            transaction.on_commit(bump_routing_stamp)
    except IntegrityError:
        raise Conflict(f"An endpoint with slug {slug!r} already exists.", details={"fields": {"slug": ["taken"]}})
    return endpoint


def endpoint_update(*, endpoint: Endpoint, actor, **changes) -> Endpoint:
    """Change name, description, config, environment, follow mode and
    strategy, or bake minutes. Moving an endpoint
    to production is refused while it serves a version that is not in
    Production."""
    require_perm(actor, "serving.change_endpoint", endpoint)
    unknown = set(changes) - {"name", "description", "config", "environment", "follow_mode", "follow_strategy",
                              "bake_minutes"}
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of an endpoint.")
    cleaned = _clean_fields(name=changes.get("name"), environment=changes.get("environment"),
                            description=changes.get("description"))
    cleaned.update(_clean_follow(changes))
    if "config" in changes:
        cleaned["config"] = clean_endpoint_config({**(endpoint.config or {}), **(changes["config"] or {})})
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = snapshot(endpoint, ENDPOINT_AUDIT_FIELDS)
        if cleaned.get("environment") == Environment.PRODUCTION and endpoint.environment != Environment.PRODUCTION:
            from apps.registry.choices import Stage

            offending = endpoint.deployments.filter(
                status__in=(DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)
            ).exclude(model_version__stage=Stage.PRODUCTION).select_related("model_version__registered_model")
            if offending:
                raise Conflict(
                    f"{endpoint.slug} serves {offending[0].model_version}, which is not in Production; "
                    "a production endpoint only serves Production versions.",
                    code="version_not_allowed")
        for key, value in cleaned.items():
            setattr(endpoint, key, value)
        endpoint.save()
        audit_record(actor=actor, action="endpoint.updated", target=endpoint, before=before,
                     after=snapshot(endpoint, ENDPOINT_AUDIT_FIELDS))
        transaction.on_commit(bump_routing_stamp)
    return endpoint


def endpoint_delete(*, endpoint: Endpoint, actor) -> None:
    """Delete an endpoint and its history. Refused while any deployment still
    serves or is rolling out: roll those back first."""
    require_perm(actor, "serving.delete_endpoint", endpoint)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        live = endpoint.deployments.filter(
            status__in=(DeploymentStatus.PENDING, DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY,
                        DeploymentStatus.DEGRADED))
        if live.exists():
            raise Conflict(f"{endpoint.slug} still has live deployments; roll them back before deleting it.",
                           code="endpoint_in_use")
        audit_record(actor=actor, action="endpoint.deleted", target=endpoint,
                     before=snapshot(endpoint, ENDPOINT_AUDIT_FIELDS))
        endpoint.delete()
        transaction.on_commit(bump_routing_stamp)
