"""The role matrix: which model permissions each role group holds.

Each app declares ``role_permissions = {"Role": ["app_label.codename", ...]}``
on its AppConfig; the Admin role holds every permission. The groups are made
by a data migration; their permissions are (re)applied after every migrate,
because a later app's permissions only exist once its migrations have run.
docs/permissions.md shows the resulting matrix.
"""

from __future__ import annotations

import functools

from django.apps import apps as django_apps

from apps.core.choices import Role

# Roles that inherit the permissions of other roles.
ROLE_INHERITS = {
    Role.VIEWER: [],
    Role.DATA_SCIENTIST: [Role.VIEWER],
    Role.ML_ENGINEER: [Role.VIEWER, Role.DATA_SCIENTIST],
    Role.APPROVER: [Role.VIEWER],
    Role.ADMIN: [],
}


def role_matrix() -> dict[str, set[str]]:
    """Role name → set of "app_label.codename", from every installed app."""
    declared: dict[str, set[str]] = {role: set() for role in Role.values}
    for config in django_apps.get_app_configs():
        for role, perms in getattr(config, "role_permissions", {}).items():
            declared.setdefault(role, set()).update(perms)
    matrix = {}
    for role in Role.values:
        perms = set(declared.get(role, set()))
        for parent in ROLE_INHERITS.get(role, []):
            perms |= declared.get(parent, set())
        matrix[role] = perms
    return matrix


@functools.cache
def lab_duties() -> frozenset[str]:
    """"app_label.codename" of the rights lab sharing gives a role group on
    every new object besides reading, from each app's ``lab_duties``: the
    work a role does on every object of the lab (Approvers approve any
    model, Data Scientists try any endpoint), never changing or deleting."""
    duties: set[str] = set()
    for config in django_apps.get_app_configs():
        duties.update(getattr(config, "lab_duties", ()))
    return frozenset(duties)


def sync_role_permissions(group_model=None, permission_model=None) -> None:
    Group = group_model or django_apps.get_model("auth", "Group")
    Permission = permission_model or django_apps.get_model("auth", "Permission")
    all_perms = {
        f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")
    }
    for role, wanted in role_matrix().items():
        group, _ = Group.objects.get_or_create(name=role)
        if role == Role.ADMIN:
            group.permissions.set(all_perms.values())
        else:
            group.permissions.set([all_perms[name] for name in sorted(wanted) if name in all_perms])


def sync_role_permissions_after_migrate(sender, using=None, **kwargs):
    # Only once per migrate run, after the last app has had its permissions made.
    with_models = [c for c in django_apps.get_app_configs() if c.models_module is not None]
    if sender.name != with_models[-1].name:
        return
    sync_role_permissions()
