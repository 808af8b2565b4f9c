from django import forms
from django.contrib import admin, messages

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.serving import services
from apps.serving.models import Deployment, Endpoint, Feedback, PredictionLog, RolloutEvent, TrafficSplit


class EndpointAdminForm(forms.ModelForm):
    """The same checks as the API, before anything is written: a form error,
    not a half-applied change."""

    class Meta:
        model = Endpoint
        fields = ["name", "description", "config", "follow_mode", "follow_strategy", "bake_minutes"]

    def clean_config(self):
        merged = {**(self.instance.config or {}), **(self.cleaned_data["config"] or {})}
        try:
            return services.clean_endpoint_config(merged)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message)


@admin.register(Endpoint)
class EndpointAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    """Endpoints are created through the API or the dashboard, which grant
    object permissions; the admin edits name, description and settings
    through the endpoint service (checked, audited, routing refreshed)."""

    form = EndpointAdminForm
    list_display = ["slug", "name", "environment", "follow_mode", "owner", "created_at"]
    list_filter = ["environment", "follow_mode"]
    search_fields = ["slug", "name", "description"]
    fields = ["slug", "name", "environment", "description", "config", "follow_mode", "follow_strategy",
              "bake_minutes", "owner", "created_at", "updated_at"]
    readonly_fields = ["slug", "environment", "owner", "created_at", "updated_at"]
    SERVICE_FIELDS = ("name", "description", "config", "follow_mode", "follow_strategy", "bake_minutes")

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service, so that the change is validated and audited
        # like one made in the API or on the endpoint page.
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in self.SERVICE_FIELDS}
        if changes:
            services.endpoint_update(endpoint=obj, actor=request.user, **changes)

    def delete_model(self, request, obj):
        try:
            services.endpoint_delete(endpoint=obj, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"{obj.slug}: {exc.message}", messages.ERROR)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            self.delete_model(request, endpoint)


class RolloutEventInline(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = RolloutEvent
    permission_via = "deployment__endpoint"
    fields = ["created_at", "kind", "traffic_weight", "message", "actor"]
    readonly_fields = fields
    extra = 0
    ordering = ["created_at", "id"]


@admin.register(Deployment)
class DeploymentAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    """Deployments with the rollout controls as actions. Everything else is
    read-only here: a rollout only moves through the serving services."""

    permission_via = "endpoint"

    list_display = ["id", "endpoint", "model_version", "strategy", "status", "rollout_state", "traffic_weight",
                    "serving_path", "created_by", "created_at"]
    list_filter = ["status", "rollout_state", "strategy", "serving_path", "endpoint__environment"]
    search_fields = ["endpoint__slug", "model_version__registered_model__name"]
    list_select_related = ["endpoint", "model_version__registered_model", "created_by"]
    inlines = [RolloutEventInline]
    actions = ["promote_selected", "pause_selected", "resume_selected", "rollback_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Deployment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # "Change" is the rollout actions on the list; the page itself saves nothing.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, verb: str, call) -> None:
        done, failed = 0, []
        for deployment in queryset.select_related("endpoint", "model_version__registered_model"):
            try:
                call(deployment)
                done += 1
            except ApplicationError as exc:
                failed.append(f"{deployment.pk}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} deployment(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Promote: give the new version all traffic", permissions=["change"])
    def promote_selected(self, request, queryset):
        self._each(request, queryset, "Promoted",
                   lambda d: services.deployment_promote(deployment=d, actor=request.user))

    @admin.action(description="Pause the rollout", permissions=["change"])
    def pause_selected(self, request, queryset):
        self._each(request, queryset, "Paused",
                   lambda d: services.deployment_pause(deployment=d, actor=request.user,
                                                       reason=f"Paused in the admin by {request.user}."))

    @admin.action(description="Resume the rollout", permissions=["change"])
    def resume_selected(self, request, queryset):
        self._each(request, queryset, "Resumed",
                   lambda d: services.deployment_resume(deployment=d, actor=request.user))

    @admin.action(description="Roll back (restore the previous traffic split)", permissions=["change"])
    def rollback_selected(self, request, queryset):
        self._each(request, queryset, "Rolled back",
                   lambda d: services.deployment_rollback(deployment=d, actor=request.user,
                                                          reason=f"Rolled back in the admin by {request.user}."))


@admin.register(PredictionLog)
class PredictionLogAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    permission_via = "endpoint"
    list_display = ["created_at", "request_id", "endpoint", "deployment", "n_instances", "status_code",
                    "latency_ms", "serving_path"]
    list_filter = ["status_code", "serving_path", "endpoint"]
    search_fields = ["request_id", "unit_id"]
    list_select_related = ["endpoint", "deployment__endpoint", "deployment__model_version__registered_model"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the log grows large; counting it on every page is slow

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in PredictionLog._meta.fields]


@admin.register(Feedback)
class FeedbackAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Ground truth as the lab sent it: a record, changed by nobody here."""

    permission_via = "endpoint"
    list_display = ["received_at", "request_id", "index", "endpoint", "label", "predicted", "correct", "joined_at"]
    list_filter = ["endpoint", "correct"]
    search_fields = ["request_id"]
    list_select_related = ["endpoint"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Feedback._meta.fields]


@admin.register(TrafficSplit)
class TrafficSplitAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Held and past splits (A/B tests' arms); started and ended by their holder, never here."""

    permission_via = "endpoint"
    list_display = ["id", "endpoint", "owner_label", "started_at", "ended_at", "kept_arm"]
    list_filter = [("ended_at", admin.EmptyFieldListFilter)]
    list_select_related = ["endpoint"]
    search_fields = ["owner_label", "endpoint__slug"]
