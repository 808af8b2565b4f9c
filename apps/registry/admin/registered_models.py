"""Registered models (settings, rollback, object permissions), their
versions and stage transitions."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from apps.core.admin import AdminOnlyObjectPermissionsMixin, ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.core.permissions import has_perm
from apps.registry import quality, selectors, services
from apps.registry.models import ModelVersion, RegisteredModel, StageTransition


class RegisteredModelForm(forms.ModelForm):
    class Meta:
        model = RegisteredModel
        fields = ["description", "tags", "quality_gates", "evaluation_dataset_version", "evaluation_target",
                  "champion_follows_production"]

    def clean_quality_gates(self):
        try:
            return quality.normalize_gates(self.cleaned_data["quality_gates"])
        except quality.GateConfigError as exc:
            raise forms.ValidationError(str(exc))


class RollbackForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))


@admin.register(RegisteredModel)
class RegisteredModelAdmin(AdminOnlyObjectPermissionsMixin, ObjectPermissionAdminMixin, GuardedModelAdmin):
    """Models with their object permissions (who may see, register, approve);
    only Admins open the object-permission pages."""

    form = RegisteredModelForm
    list_display = ["name", "task_type", "owner", "latest_version", "production", "updated_at"]
    search_fields = ["name", "description"]
    list_filter = ["task_type"]
    readonly_fields = ["name", "task_type", "owner", "latest_version", "created_at", "updated_at"]
    fields = ["name", "task_type", "owner", "description", "tags", "quality_gates", "evaluation_dataset_version",
              "evaluation_target", "champion_follows_production", "latest_version", "created_at", "updated_at"]
    raw_id_fields = ["evaluation_dataset_version"]
    actions = ["rollback_selected"]
    # Governance (approve rights) and the model's own settings (change
    # rights) are separate: each is editable only for those who hold it.
    governance_fields = ["quality_gates", "evaluation_dataset_version", "evaluation_target"]
    settings_fields = ["description", "tags", "champion_follows_production"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def has_add_permission(self, request):
        return False  # models are created through the API or the registry pages (grants, audit)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Approvers change the governance fields without holding change rights.
        return (super().has_change_permission(request, obj)
                or has_perm(request.user, "registry.approve_registeredmodel", obj))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if not has_perm(request.user, "registry.approve_registeredmodel", obj):
            readonly += self.governance_fields
        if not has_perm(request.user, "registry.change_registeredmodel", obj):
            readonly += self.settings_fields
        return readonly

    @admin.display(description="Production")
    def production(self, obj):
        version = selectors.production_version(registered_model=obj)
        return f"v{version.version}" if version else "—"

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            original = RegisteredModel.objects.get(pk=obj.pk)
            try:
                services.registered_model_update(registered_model=original, actor=request.user, **changes)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    def has_rollback_permission(self, request):
        return has_perm(request.user, "registry.rollback_registeredmodel")

    @admin.action(description="Roll back to the previous Production version…", permissions=["rollback"])
    def rollback_selected(self, request, queryset):
        form = RollbackForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for model in queryset:
                try:
                    restored = services.registered_model_rollback(registered_model=model, actor=request.user,
                                                                  reason=form.cleaned_data["reason"])
                except ApplicationError as exc:
                    self.message_user(request, f"{model.name}: {exc.message}", messages.ERROR)
                else:
                    self.message_user(request, f"{model.name}: v{restored.version} is in Production again.",
                                      messages.SUCCESS)
            return None
        items = [{"model": m, "current": selectors.production_version(registered_model=m),
                  "previous": services.previous_production_version(registered_model=m)} for m in queryset]
        return TemplateResponse(request, "admin/registry/registeredmodel/rollback.html", {
            **self.admin_site.each_context(request),
            "title": "Roll back registered models",
            "items": items,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })


class StageTransitionInline(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = StageTransition
    permission_via = "version__registered_model"
    fields = ["created_at", "from_stage", "to_stage", "kind", "actor", "reason", "promotion_request"]
    readonly_fields = fields
    extra = 0


@admin.register(ModelVersion)
class ModelVersionAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Versions are immutable records; they move only through approvals and rollback."""

    permission_via = "registered_model"

    list_display = ["__str__", "stage", "approval_status", "source_run", "created_by", "created_at"]
    list_filter = ["stage", "approval_status"]
    search_fields = ["registered_model__name", "description", "sha256"]
    readonly_fields = ["registered_model", "version", "description", "stage", "approval_status", "source_run",
                       "dataset_version", "artifact", "sha256", "size_bytes", "signature_json", "metrics_json",
                       "created_by", "created_at", "stage_changed_at"]
    fields = readonly_fields
    inlines = [StageTransitionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("registered_model", "created_by", "source_run")

    @admin.display(description="Signature")
    def signature_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.signature, indent=2))

    @admin.display(description="Metrics")
    def metrics_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.metrics, indent=2, sort_keys=True))


@admin.register(StageTransition)
class StageTransitionAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    permission_via = "version__registered_model"
    list_display = ["created_at", "version", "from_stage", "to_stage", "kind", "actor", "reason"]
    list_filter = ["kind", "to_stage"]
    search_fields = ["version__registered_model__name", "reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("version__registered_model", "actor")
