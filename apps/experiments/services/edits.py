"""Single-field edits that MLflow clients make one call at a time: rename an
experiment, set one of its tags, delete one tag of a run. Each checks access
through the permissions helper, locks its row and writes an audit event."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.experiments.models import Experiment, RunTag
from apps.experiments.services.tracking import (
    MAX_EXPERIMENT_TAGS,
    _check_key,
    _lock_run_for_write,
    _tag_text,
)


def experiment_rename(*, user, experiment: Experiment, name: str) -> Experiment:
    """Give an experiment a new, unused name."""
    require_perm(user, "experiments.change_experiment", experiment)
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
            audit_record(actor=user, action="experiment.renamed", target=locked, before=before,
                         after={"name": name})
    except IntegrityError:
        raise duplicate
    return locked


def experiment_tag_set(*, user, experiment: Experiment, key: str, value) -> Experiment:
    """Set one tag of an experiment, keeping the others."""
    require_perm(user, "experiments.change_experiment", experiment)
    key = _check_key(key, "key")
    text = _tag_text(value, "value")
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.tags.get(key) == text:
            return locked
        if key not in locked.tags and len(locked.tags) >= MAX_EXPERIMENT_TAGS:
            raise ValidationFailed(f"An experiment has at most {MAX_EXPERIMENT_TAGS} tags.")
        before = {"tags": dict(locked.tags)}
        locked.tags = {**locked.tags, key: text}
        locked.save(update_fields=["tags", "updated_at"])
        audit_record(actor=user, action="experiment.updated", target=locked, before=before,
                     after={"tags": locked.tags})
    return locked


def run_tag_delete(*, user, run_id: int, key: str) -> None:
    """Remove one tag of a run (404 when the run has no such tag)."""
    with transaction.atomic():
        run = _lock_run_for_write(user=user, run_id=run_id)
        tag = RunTag.objects.filter(run_id=run.pk, key=key).first()
        if tag is None:
            raise NotFound(f"Run {run.pk} has no tag {key!r}.", details={"key": key})
        tag.delete()
        audit_record(actor=user, action="run.tag_deleted", target=run, before={"key": key, "value": tag.value})


__all__ = ["experiment_rename", "experiment_tag_set", "run_tag_delete"]
