"""Objects a webhook subscription may be scoped to, named by the apps that own them.

An app registers a kind in its ``AppConfig.ready()``, e.g. the registry:
``subjects.register(key="registered_model", model=RegisteredModel, lookup="name")``.
The API then takes and shows ``"registered_model": "<name>"`` for a
subscription scoped to one registered model, without core importing the
registry. Any model instance may be a subject in services and in
``events.publish(..., subject=obj)``; a kind is only needed for the API."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible


@dataclass(frozen=True)
class SubjectKind:
    key: str
    model: type[models.Model]
    lookup: str
    help_text: str = ""


_kinds: dict[str, SubjectKind] = {}


def register(*, key: str, model: type[models.Model], lookup: str, help_text: str = "") -> None:
    _kinds[key] = SubjectKind(key=key, model=model, lookup=lookup, help_text=help_text)


def unregister(key: str) -> None:
    _kinds.pop(key, None)


def kinds() -> list[SubjectKind]:
    return list(_kinds.values())


def resolve(*, user, key: str, value) -> models.Model:
    """The object of kind ``key`` named ``value`` that ``user`` may see, or NotFound."""
    kind = _kinds[key]
    found = filter_visible(user, kind.model.objects.filter(**{kind.lookup: value})).first()
    if found is None:
        raise NotFound(f"No {kind.model._meta.verbose_name} named {value!r}.")
    return found


def describe(subscription) -> dict:
    """``{key: name-or-None}`` for every registered kind (the API fields)."""
    described = {kind.key: None for kind in _kinds.values()}
    if subscription.subject_type_id is None:
        return described
    subject = subscription.subject
    for kind in _kinds.values():
        if subject is not None and isinstance(subject, kind.model):
            described[kind.key] = getattr(subject, kind.lookup)
    return described


def subject_filter(subject: models.Model | None) -> dict:
    """ORM filter arguments naming ``subject`` (None: global subscriptions)."""
    if subject is None:
        return {"subject_type__isnull": True}
    return {"subject_type": ContentType.objects.get_for_model(subject), "subject_id": subject.pk}
