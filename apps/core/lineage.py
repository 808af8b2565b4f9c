"""Lineage across the layers (dataset version → runs → model versions →
deployments) without an upward import.

A lower app cannot import the apps built on it, yet its pages show what came
of its objects. So each higher app registers, in its ``AppConfig.ready()``, a
``LineageProvider``: the links it knows from an object of a lower app's model
to its own objects (experiments: a dataset version's runs and training jobs;
registry: the model versions of a dataset version or of a run; serving: a
model version's deployments). A lineage page asks for a link by the lower
model and the link's name and gets ``None`` while no installed app provides
it. Core names no app's fields: each link says how to query its objects, which
relation carries their permissions and how to describe one.

Lineage pages name the visible objects and only count the others ("1 run you
cannot view"), so an object's name never leaks through its neighbours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models

from apps.core.permissions import filter_visible


@dataclass(frozen=True)
class LineageLink:
    """From objects of ``source`` (``"app_label.ModelName"``) to the
    objects ``name`` of the providing app."""

    source: str
    name: str
    # The linked objects of any of the given source objects (all of them, unfiltered).
    objects: Callable[[models.QuerySet], models.QuerySet]
    # The relation from a linked object to the object carrying its permissions (None: its own).
    permission_via: str | None
    # One linked object as a dict for pages and the API.
    describe: Callable[[models.Model], dict]
    select_related: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ("-pk",)

    def of(self, sources: models.Model | models.QuerySet) -> models.QuerySet:
        """The linked objects of ``sources`` (an object or a queryset of them),
        ordered, with what ``describe`` reads selected."""
        if isinstance(sources, models.Model):
            sources = type(sources)._default_manager.filter(pk=sources.pk)
        return self.objects(sources).select_related(*self.select_related).order_by(*self.ordering)

    def visible(self, user, queryset: models.QuerySet) -> models.QuerySet:
        """The part of ``queryset`` (linked objects) that ``user`` may view."""
        return filter_visible(user, queryset, via=self.permission_via)

    def split(self, user, queryset: models.QuerySet, *, limit: int = 200) -> tuple[list, int]:
        """``(visible objects, number hidden)``: at most ``limit`` of the
        objects of ``queryset`` the user may view, and how many others there are."""
        visible = self.visible(user, queryset)
        found = list(visible[:limit])
        total = queryset.count()
        shown = len(found) if len(found) < limit else visible.count()
        return found, max(total - shown, 0)


@dataclass(frozen=True)
class LineageProvider:
    """What one app knows of lineage: its links from lower apps' objects."""

    app_label: str
    links: tuple[LineageLink, ...] = field(default_factory=tuple)


_links: dict[tuple[str, str], LineageLink] = {}


def _label(model: type[models.Model] | models.Model) -> str:
    return model._meta.label_lower


def register(provider: LineageProvider) -> None:
    """Called from the providing app's ``AppConfig.ready()``; registering the
    same link again (a test re-running ``ready``) replaces it."""
    for lineage_link in provider.links:
        _links[(lineage_link.source.lower(), lineage_link.name)] = lineage_link


def link(model: type[models.Model] | models.Model, name: str) -> LineageLink | None:
    """The link ``name`` from objects of ``model``, or None while no
    installed app provides it."""
    return _links.get((_label(model), name))


def links_from(model: type[models.Model] | models.Model) -> dict[str, LineageLink]:
    """Every registered link from objects of ``model``, by name."""
    label = _label(model)
    return {name: item for (source, name), item in _links.items() if source == label}


__all__ = ["LineageLink", "LineageProvider", "link", "links_from", "register"]
