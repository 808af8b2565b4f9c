"""The one permissions helper. Every app checks access through these functions.

Access to an object needs two things:

* the **capability**, a model permission held through a role group
  (e.g. ``registry.approve_registeredmodel`` from the Approver role), and
* the **scope**, the same permission on that object (django-guardian),
  held by the user or one of their groups.

Superusers and the Admin role have every permission. Only top-level objects
carry object permissions (datasets, experiments, registered models,
endpoints), and runs carry ``change_run`` for their owner; the other children
(versions, deployments) are checked through their parent. When an object is
created its owner gets every object permission of its model; with
``OBJECT_SHARING = "lab"`` (the default) each role group also gets *reading*
(the ``view_*`` permissions it holds), plus the lab duties its role performs
on every object (``AppConfig.lab_duties``: Approvers approve, "try it" on
endpoints). Changing, deleting and deploying stay with the owner and the
people and groups they name, as MLflow's default READ permission does. An
owner may take an object private. See docs/permissions.md.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm, get_objects_for_user, get_users_with_perms, remove_perm

from apps.core.choices import Role
from apps.core.errors import NotFound, PermissionDenied


def is_admin(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=Role.ADMIN).exists()


def _split(perm: str, obj: models.Model | None) -> tuple[str, str]:
    if "." in perm:
        app_label, codename = perm.split(".", 1)
        return app_label, codename
    if obj is None:
        raise ValueError("A permission without an app label needs an object")
    return obj._meta.app_label, perm


def has_perm(user, perm: str, obj: models.Model | None = None, *, owner_id: int | None = None) -> bool:
    """True when ``user`` may do ``perm`` (``"app.codename"``), on ``obj`` if given.

    ``owner_id`` names the owner of ``obj`` for objects whose owner holds every
    right on them (runs): the owner then needs only the capability, which
    spares the object-permission lookup on hot paths such as log-batch."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if is_admin(user):
        return True
    app_label, codename = _split(perm, obj)
    if not user.has_perm(f"{app_label}.{codename}"):
        return False
    if obj is None:
        return True
    if owner_id is not None and owner_id == user.pk:
        return True
    return ObjectPermissionChecker(user).has_perm(codename, obj)


def require_perm(user, perm: str, obj: models.Model | None = None, *, hide: bool = True) -> None:
    """Raise unless allowed. A user who may not even view ``obj`` gets a 404
    (``hide``), so that ids of other people's objects reveal nothing."""
    if has_perm(user, perm, obj):
        return
    if obj is not None and hide:
        view_perm = f"{obj._meta.app_label}.view_{obj._meta.model_name}"
        if not has_perm(user, view_perm, obj):
            raise NotFound(f"{obj._meta.verbose_name.capitalize()} not found.")
    raise PermissionDenied("You do not have permission to perform this action.",
                           details={"permission": perm})


def filter_visible(user, queryset: models.QuerySet, perm: str | None = None, *, via: str | None = None):
    """The part of ``queryset`` the user may see (or do ``perm`` on).

    ``via`` names the relation to the object that carries permissions, e.g.
    ``filter_visible(user, Run.objects.all(), via="experiment")``."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    if is_admin(user):
        return queryset
    target_model = queryset.model
    if via:
        for part in via.split("__"):
            target_model = target_model._meta.get_field(part).related_model
    if perm is None:
        perm = f"{target_model._meta.app_label}.view_{target_model._meta.model_name}"
    if not user.has_perm(perm):
        return queryset.none()
    visible = get_objects_for_user(
        user, perm, klass=target_model.objects.all(), accept_global_perms=False, with_superuser=True
    )
    if via:
        return queryset.filter(**{f"{via}__in": visible.values("pk")})
    return queryset.filter(pk__in=visible.values("pk"))


def users_with_perm(perm: str, obj: models.Model) -> list:
    """The active users who may do ``perm`` on ``obj`` (the same answer as
    ``has_perm`` for each of them): holders of the object permission, through
    themselves or a group, plus superusers and Admins."""
    from django.contrib.auth import get_user_model

    _app_label, codename = _split(perm, obj)
    holders = get_users_with_perms(obj, with_superusers=True, with_group_users=True,
                                   only_with_perms_in=[codename])
    candidates = get_user_model().objects.filter(
        models.Q(pk__in=holders.values("pk")) | models.Q(is_superuser=True) | models.Q(groups__name=Role.ADMIN),
        is_active=True).distinct().order_by("pk")
    return [user for user in candidates if has_perm(user, perm, obj)]


def object_permission_codenames(model: type[models.Model]) -> list[str]:
    ct = ContentType.objects.get_for_model(model)
    return list(Permission.objects.filter(content_type=ct).exclude(codename__startswith="add_")
                .values_list("codename", flat=True))


def grant(obj: models.Model, *, perms: list[str], user=None, group: Group | None = None) -> None:
    for codename in perms:
        assign_perm(codename, user or group, obj)


def revoke(obj: models.Model, *, perms: list[str], user=None, group: Group | None = None) -> None:
    for codename in perms:
        remove_perm(codename, user or group, obj)


def lab_shared(app_label: str, codename: str) -> bool:
    """Whether lab sharing gives a role group ``codename`` on every new object
    (when the group holds it as a capability): reading, and the lab duties."""
    from apps.core.roles import lab_duties

    return codename.startswith("view_") or f"{app_label}.{codename}" in lab_duties()


def grant_on_create(obj: models.Model, *, owner) -> None:
    """Give a new top-level object its owner's rights and, when the lab shares
    by default (``OBJECT_SHARING``), the lab's reading and duties."""
    codenames = object_permission_codenames(type(obj))
    if owner is not None and getattr(owner, "is_authenticated", False):
        grant(obj, perms=codenames, user=owner)
    if settings.OBJECT_SHARING != "lab":
        return
    ct = ContentType.objects.get_for_model(type(obj))
    for group in Group.objects.filter(name__in=[r for r in Role.values if r != Role.ADMIN]):
        held = set(group.permissions.filter(content_type=ct).values_list("codename", flat=True))
        shared = [c for c in codenames if c in held and lab_shared(ct.app_label, c)]
        if shared:
            grant(obj, perms=shared, group=group)


def make_private(obj: models.Model) -> None:
    """Withdraw every group's rights on ``obj``; the owner's and individual
    users' rights stay."""
    codenames = object_permission_codenames(type(obj))
    for group in Group.objects.all():
        revoke(obj, perms=codenames, group=group)


__all__ = [
    "filter_visible",
    "grant",
    "grant_on_create",
    "has_perm",
    "is_admin",
    "lab_shared",
    "make_private",
    "require_perm",
    "revoke",
    "users_with_perm",
]
