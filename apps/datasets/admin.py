from django.contrib import admin, messages

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.datasets import services
from apps.datasets.models import Dataset, DatasetVersion, Expectation


class ExpectationInline(ObjectPermissionAdminMixin, admin.TabularInline):
    model = Expectation
    permission_via = "dataset"
    extra = 0
    fields = ["kind", "column", "params", "severity", "created_by"]
    readonly_fields = ["kind", "column", "params", "severity", "created_by"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        # Edited on their own admin page (audited), added on the dataset page or the API.
        return False


@admin.register(Dataset)
class DatasetAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    list_display = ["name", "owner", "task_hint", "target_column", "created_at", "updated_at"]
    list_filter = ["task_hint"]
    search_fields = ["name", "description", "owner__username"]
    readonly_fields = ["owner", "created_at", "updated_at"]
    inlines = [ExpectationInline]

    def has_add_permission(self, request):
        # A dataset made here would miss its owner's object permissions; use
        # the API or the dataset pages, which grant them.
        return False

    def has_delete_permission(self, request, obj=None):
        # No audited delete exists for datasets; their versions are evidence.
        return False

    def save_model(self, request, obj, form, change):
        # Through the services, so that every change is checked and audited.
        changed = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in ("name", "description", "task_hint", "target_column")}
        try:
            if changed:
                services.dataset_update(dataset=obj, actor=request.user, **changed)
            if "feature_spec" in form.changed_data:
                services.dataset_feature_spec_set(dataset=obj, actor=request.user,
                                                  spec=form.cleaned_data["feature_spec"])
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Versions are immutable files: read-only here (re-validate from the
    version page or the API)."""

    permission_via = "dataset"

    list_display = ["__str__", "status", "original_filename", "file_format", "row_count", "column_count",
                    "quality_score", "created_by", "created_at"]
    list_filter = ["status", "file_format", "dataset"]
    search_fields = ["dataset__name", "original_filename", "sha256"]
    readonly_fields = ["dataset", "version", "parent", "file", "original_filename", "file_format", "encoding",
                       "delimiter", "sha256", "size_bytes", "row_count", "column_count", "status", "status_reason",
                       "progress", "progress_message", "schema", "quality_report", "quality_score",
                       "expectation_results", "created_by", "created_at", "validated_at"]
    list_select_related = ["dataset", "created_by"]


@admin.register(Expectation)
class ExpectationAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    permission_via = "dataset"
    list_display = ["__str__", "dataset", "kind", "column", "severity", "created_by", "updated_at"]
    list_filter = ["kind", "severity", "dataset"]
    search_fields = ["dataset__name", "column"]
    readonly_fields = ["dataset", "created_by", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in ("kind", "column", "params", "severity")}
        try:
            services.expectation_update(expectation=Expectation.objects.get(pk=obj.pk), actor=request.user, **changes)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def delete_model(self, request, obj):
        services.expectation_delete(expectation=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for expectation in queryset:
            services.expectation_delete(expectation=expectation, actor=request.user)
