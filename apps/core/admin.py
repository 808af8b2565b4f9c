"""The core admin pages (users, API keys, the audit trail) and the two
mixins every admin page of the platform is built from:

* ``ObjectPermissionAdminMixin`` shows a staff user only what the API would
  show them. Approvers are staff, and the admin must not be a side door to a
  private experiment's runs or a private dataset's versions. Every path into
  an object goes through ``get_queryset`` (lists, change/delete/history
  pages, bulk actions, autocomplete, raw-id pop-ups) or through the
  ``has_*_permission(obj)`` checks, and both ask ``filter_visible``.
* ``ReadOnlyAdminMixin`` for records nobody edits in the admin.
"""

from __future__ import annotations

import functools

from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone

from apps.core import services
from apps.core.models import ApiKey, AuditEvent, User
from apps.core.permissions import filter_visible, is_admin


class ReadOnlyAdminMixin:
    """A record, not a form: nobody adds, changes or deletes it in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectPermissionAdminMixin:
    """Scope an admin (or an inline) to the objects the user may see.

    ``permission_via`` names the relation to the object that carries the
    object permissions (``"experiment"`` for runs,
    ``"version__registered_model"`` for promotion requests); ``None`` when
    the model carries them itself. Viewing needs the view permission on that
    object; changing needs its change permission, and deleting a top-level
    object its delete permission (a child is part of its parent, so deleting
    one changes the parent). Admins with nothing to scope by override
    ``visible_queryset``."""

    permission_via: str | None = None

    def permission_target(self):
        model = self.model
        for part in (self.permission_via or "").split("__"):
            if part:
                model = model._meta.get_field(part).related_model
        return model

    def scope_permission(self, action: str) -> str:
        target = self.permission_target()._meta
        if action == "delete" and self.permission_via:
            action = "change"
        return f"{target.app_label}.{action}_{target.model_name}"

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        return filter_visible(request.user, queryset, self.scope_permission(action), via=self.permission_via)

    def get_queryset(self, request):
        return self.visible_queryset(request, super().get_queryset(request))

    def _allowed_on(self, request, obj, action: str) -> bool:
        # Inlines are asked about their parent object, which its own admin checked.
        if obj is None or obj.pk is None or not isinstance(obj, self.model):
            return True
        return self.visible_queryset(request, self.model._default_manager.filter(pk=obj.pk),
                                     action=action).exists()

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._allowed_on(request, obj, "view")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allowed_on(request, obj, "change")

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allowed_on(request, obj, "delete")

    def get_action(self, action):
        found = super().get_action(action)
        if found is None:
            return None
        func, name, description = found

        # The selection comes from the visible list already; filtering it
        # again means an action works on the visible set even if a subclass
        # builds its list some other way.
        @functools.wraps(func)
        def on_visible(modeladmin, request, queryset):
            return func(modeladmin, request, modeladmin.visible_queryset(request, queryset))

        return on_visible, name, description

    def get_list_filter(self, request):
        # A filter on a relation lists every related object by name, private
        # ones included; offer only those the visible rows point to.
        return [(item, admin.RelatedOnlyFieldListFilter)
                if isinstance(item, str) and get_fields_from_path(self.model, item)[-1].is_relation else item
                for item in super().get_list_filter(request)]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A choice list of every dataset would name the private ones.
        related = self.admin_site._registry.get(db_field.remote_field.model)
        if "queryset" not in kwargs and isinstance(related, ObjectPermissionAdminMixin):
            kwargs["queryset"] = related.get_queryset(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AdminOnlyObjectPermissionsMixin:
    """guardian's object-permission pages let anyone who may change an object
    grant rights on it, to anyone, themselves included. Granting rights is
    the Admin role's job."""

    def _require_admin(self, request) -> None:
        if not is_admin(request.user):
            raise PermissionDenied

    def render_change_form(self, request, context, *args, **kwargs):
        response = super().render_change_form(request, context, *args, **kwargs)
        if not is_admin(request.user):
            # Django's own change form: guardian's links to pages that would only answer 403.
            opts = self.model._meta
            response.template_name = [f"admin/{opts.app_label}/{opts.model_name}/change_form.html",
                                      f"admin/{opts.app_label}/change_form.html", "admin/change_form.html"]
        return response

    def obj_perms_manage_view(self, request, object_pk):
        self._require_admin(request)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._require_admin(request)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._require_admin(request)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "roles", "is_active", "is_staff", "last_login"]
    list_filter = ["groups", "is_active", "is_staff", "is_superuser"]

    @admin.display(description="Roles")
    def roles(self, obj):
        return ", ".join(g.name for g in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(ApiKey)
class ApiKeyAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    """Keys are issued by their owners (API or dashboard) and only revoked here;
    the secret is never stored, so it cannot be shown. Staff see their own
    keys; Admins see everyone's."""

    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke_selected"]

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        return queryset if is_admin(request.user) else queryset.filter(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # "Change" is the revoke action on the list; the page itself saves nothing.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key, actor=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} API key(s) at {timezone.now():%H:%M:%S}.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: readable, searchable, never editable — not even by a
    superuser. Admins read all of it; other staff read their own actions and
    the events about objects they may view (through the admin page of the
    object's model), and nothing else about users, roles or objects that no
    longer exist, whose visibility cannot be checked any more."""

    list_display = ["created_at", "actor_username", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_username", "action", "object_id", "object_repr", "request_id", "message"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        if is_admin(request.user):
            return queryset
        about_visible = Q(actor=request.user)
        for model, model_admin in self.admin_site._registry.items():
            if model is AuditEvent or not isinstance(model_admin, ObjectPermissionAdminMixin):
                continue
            visible_ids = model_admin.get_queryset(request).annotate(
                audit_object_id=Cast("pk", CharField())).values("audit_object_id")
            about_visible |= Q(object_type=model._meta.label_lower, object_id__in=visible_ids)
        return queryset.filter(about_visible)


# The webhooks facility keeps its admin in its own package.
from apps.core.webhooks import admin as webhooks_admin  # noqa: E402, F401
