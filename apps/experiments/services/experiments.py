"""Writes of experiments: create, update, rename, set one tag.

Each checks access through the permissions helper, locks its row where it
changes one, and writes an audit event."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import grant_on_create, require_perm
from apps.core.services import audit_record, snapshot
from apps.experiments.models import Experiment
from apps.experiments.services.validation import MAX_EXPERIMENT_TAGS, check_key, check_tags_mapping, tag_text


def experiment_create(*, actor, name: str, description: str = "", tags: Mapping | None = None) -> Experiment:
    """A new experiment owned by ``actor``; names are unique (409 otherwise)."""
    require_perm(actor, "experiments.add_experiment")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("An experiment needs a name of 1-200 characters.",
                               details={"fields": {"name": ["1-200 characters."]}})
    tag_map = check_tags_mapping(tags)
    if Experiment.objects.filter(name=name).exists():
        raise Conflict(f"An experiment named {name!r} already exists.", code="duplicate_name",
                       details={"name": name})
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(name=name, description=description or "", owner=actor,
                                                   tags=tag_map)
            grant_on_create(experiment, owner=actor)
            audit_record(actor=actor, action="experiment.created", target=experiment,
                         after=snapshot(experiment, ["name", "description", "tags", "owner"]))
    except IntegrityError:
        raise Conflict(f"An experiment named {name!r} already exists.", code="duplicate_name",
                       details={"name": name})
    return experiment


def experiment_update(*, actor, experiment: Experiment, description: str | None = None,
                      tags: Mapping | None = None) -> Experiment:
    """Change an experiment's description or replace its tags."""
    require_perm(actor, "experiments.change_experiment", experiment)
    tag_map = check_tags_mapping(tags) if tags is not None else None
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        before = snapshot(experiment, ["description", "tags"])
        if description is not None:
            experiment.description = description
        if tag_map is not None:
            experiment.tags = tag_map
        experiment.save(update_fields=["description", "tags", "updated_at"])
        audit_record(actor=actor, action="experiment.updated", target=experiment, before=before,
                     after=snapshot(experiment, ["description", "tags"]))
    return experiment


def experiment_rename(*, actor, experiment: Experiment, name: str) -> Experiment:
    """Give an experiment a new, unused name."""
    require_perm(actor, "experiments.change_experiment", experiment)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("An experiment needs a name of 1-200 characters.",
                               details={"fields": {"name": ["1-200 characters."]}})
    duplicate = Conflict(f"An experiment named {name!r} already exists.", code="duplicate_name",
                         details={"name": name})
    try:
        with transaction.atomic():
            locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
            if locked.name == name:
                return locked
            if Experiment.objects.filter(name=name).exclude(pk=locked.pk).exists():
                raise duplicate
            before = {"name": locked.name}
            locked.name = name
            locked.save(update_fields=["name", "updated_at"])
            audit_record(actor=actor, action="experiment.renamed", target=locked, before=before,
                         after={"name": name})
    except IntegrityError:
        raise duplicate
    return locked


def experiment_tag_set(*, actor, experiment: Experiment, key: str, value) -> Experiment:
    """Set one tag of an experiment, keeping the others."""
    require_perm(actor, "experiments.change_experiment", experiment)
    key = check_key(key, "key")
    text = tag_text(value, "value")
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.tags.get(key) == text:
            return locked
        if key not in locked.tags and len(locked.tags) >= MAX_EXPERIMENT_TAGS:
            raise ValidationFailed(f"An experiment has at most {MAX_EXPERIMENT_TAGS} tags.")
        before = {"tags": dict(locked.tags)}
        locked.tags = {**locked.tags, key: text}
        locked.save(update_fields=["tags", "updated_at"])
        audit_record(actor=actor, action="experiment.updated", target=locked, before=before,
                     after={"tags": locked.tags})
    return locked


__all__ = [
    "experiment_create",
    "experiment_rename",
    "experiment_tag_set",
    "experiment_update",
]
