from django.contrib import admin, messages

from apps.core.errors import ApplicationError
from apps.serving import services
from apps.serving.models import Deployment, Endpoint, Feedback, PredictionLog, RolloutEvent


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    """Endpoints are created through the API or the dashboard, which grant
    object permissions; the admin shows and edits their descriptions."""

    list_display = ["slug", "name", "environment", "follow_mode", "owner", "created_at"]
    list_filter = ["environment", "follow_mode"]
    search_fields = ["slug", "name", "description"]
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


class RolloutEventInline(admin.TabularInline):
    model = RolloutEvent
    fields = ["created_at", "kind", "traffic_weight", "message", "actor"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """Deployments with the rollout controls as actions. Everything else is
    read-only here: a rollout only moves through the serving services."""

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
class PredictionLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "request_id", "endpoint", "deployment", "n_instances", "status_code",
                    "latency_ms", "serving_path"]
    list_filter = ["status_code", "serving_path", "endpoint"]
    search_fields = ["request_id", "unit_id"]
    list_select_related = ["endpoint", "deployment__endpoint", "deployment__model_version__registered_model"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the log grows large; counting it on every page is slow

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in PredictionLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["received_at", "request_id", "index", "endpoint", "label", "predicted", "correct", "joined_at"]
    list_filter = ["endpoint", "correct"]
    search_fields = ["request_id"]
    list_select_related = ["endpoint"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Feedback._meta.fields]

    def has_add_permission(self, request):
        return False
