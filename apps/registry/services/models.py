"""Registered models: create and change their settings."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import grant_on_create, require_perm
from apps.core.services import audit_record, snapshot
from apps.registry import quality
from apps.registry.choices import ModelTaskType
from apps.registry.models import RegisteredModel

AUDIT_FIELDS = ["name", "description", "owner", "task_type", "tags", "quality_gates", "champion_follows_production"]


def clean_quality_gates(raw) -> dict:
    """The normalised gate setting, or a 400 naming what is wrong."""
    try:
        return quality.normalize_gates(raw)
    except quality.GateConfigError as exc:
        raise ValidationFailed(str(exc), details={"fields": {"quality_gates": [str(exc)]}})


def _clean_tags(tags) -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) for k in tags):
        raise ValidationFailed("tags must be an object of string keys.",
                               details={"fields": {"tags": ["Not an object."]}})
    return tags


def registered_model_create(
    *, actor, name: str, task_type: str, description: str = "", quality_gates: dict | None = None,
    tags: dict | None = None, champion_follows_production: bool = True,
) -> RegisteredModel:
    """A new registered model owned by ``actor``, shared as OBJECT_SHARING says."""
    require_perm(actor, "registry.add_registeredmodel")
    name = (name or "").strip()
    if not name or slugify(name) != name.lower() or name != name.lower():
        raise ValidationFailed("A model name is lower-case letters, digits and hyphens, e.g. sample-qc.",
                               details={"fields": {"name": ["Use a slug such as sample-qc."]}})
    if task_type not in ModelTaskType.values:
        raise ValidationFailed(f"task_type must be one of {', '.join(ModelTaskType.values)}.",
                               details={"fields": {"task_type": ["Invalid choice."]}})
    gates = clean_quality_gates(quality_gates)
    tags = _clean_tags(tags)
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, task_type=task_type, description=description or "", quality_gates=gates, tags=tags,
                champion_follows_production=champion_follows_production, owner=actor,
            )
            grant_on_create(model, owner=actor)
            audit_record(actor=actor, action="registered_model.created", target=model,
                         after=snapshot(model, AUDIT_FIELDS))
    except IntegrityError:
        raise Conflict(f"A registered model named {name!r} already exists.", code="duplicate_name")
    return model


def registered_model_update(*, registered_model: RegisteredModel, actor, **changes) -> RegisteredModel:
    """Change the description, tags, quality gates or whether ``champion``
    follows Production."""
    require_perm(actor, "registry.change_registeredmodel", registered_model)
    allowed = {"description", "tags", "quality_gates", "champion_follows_production"}
    if unknown := set(changes) - allowed:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of a registered model.")
    if "quality_gates" in changes:
        changes["quality_gates"] = clean_quality_gates(changes["quality_gates"])
    if "tags" in changes:
        changes["tags"] = _clean_tags(changes["tags"])
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
        before = snapshot(model, AUDIT_FIELDS)
        for field, value in changes.items():
            setattr(model, field, value if value is not None or field != "description" else "")
        model.save()
        after = snapshot(model, AUDIT_FIELDS)
        if before != after:
            audit_record(actor=actor, action="registered_model.updated", target=model, before=before, after=after)
    return model
