"""Helpers for lineage that reads upwards (dataset version → runs → model
versions → deployments) without an upward import: a lower app finds the
models a higher app points at it through ``_meta``, and splits what it finds
into what the user may see and how many they may not. Lineage pages name the
visible objects and only count the others ("1 run you cannot view"), so an
object's name never leaks through its neighbours."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from apps.core.permissions import filter_visible


def reverse_related(model: type[models.Model], accessor: str) -> type[models.Model] | None:
    """The model behind the reverse relation ``accessor`` on ``model`` (e.g.
    ``Run`` for ``DatasetVersion.runs``) when the app that defines it is
    installed, else None."""
    for relation in model._meta.related_objects:
        if relation.get_accessor_name() == accessor:
            return relation.related_model
    return None


def permission_path(model: type[models.Model]) -> str | None:
    """The relation of a child model to the top-level object that carries its
    permissions (a run's experiment, a version's registered model, a
    deployment's endpoint); None when the model carries its own."""
    for name in ("endpoint", "registered_model", "experiment"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.is_relation and not field.auto_created:
            return name
    return None


def split_visible(user, queryset: models.QuerySet, *, limit: int = 200) -> tuple[list, int]:
    """``(visible objects, number hidden)``: the part of ``queryset`` the user
    may view (checked through its parent, see ``permission_path``), at most
    ``limit`` of them, and how many others there are."""
    via = permission_path(queryset.model)
    visible = filter_visible(user, queryset, via=via)
    found = list(visible[:limit])
    total = queryset.count()
    shown = len(found) if len(found) < limit else visible.count()
    return found, max(total - shown, 0)


__all__ = ["permission_path", "reverse_related", "split_visible"]
