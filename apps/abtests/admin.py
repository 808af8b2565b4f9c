"""A/B tests in the admin: read-only records (tests are created and steered
through the API and pages), with the approval of production tests as an
action for Approvers. A test is visible to whoever may see its endpoint."""

from django.contrib import admin, messages

from apps.abtests import services
from apps.abtests.choices import TestStatus
from apps.abtests.models import ABTest, ABTestArm, ABTestArmStatistic, ABTestUnit
from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.core.permissions import has_perm


class ABTestArmInline(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = ABTestArm
    permission_via = "ab_test__endpoint"
    fields = ["index", "name", "model_version", "weight"]
    readonly_fields = fields
    extra = 0


@admin.register(ABTest)
class ABTestAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    permission_via = "endpoint"
    list_display = ["id", "name", "endpoint", "kind", "status", "primary_metric", "created_by", "approved_by",
                    "created_at"]
    list_filter = ["status", "kind", "endpoint"]
    search_fields = ["name", "endpoint__slug"]
    list_select_related = ["endpoint", "created_by", "approved_by"]
    readonly_fields = ["name", "endpoint", "kind", "status", "hypothesis", "primary_metric", "secondary_metrics",
                       "guardrail_metrics", "minimum_detectable_effect", "alpha", "power", "engine", "correction",
                       "created_by", "approved_by", "approved_at", "split_id", "started_at", "stopped_at",
                       "stop_reason", "concluded_at", "decision", "result_snapshot", "created_at"]
    exclude = ["stats_prediction_cursor", "stats_feedback_cursor"]
    inlines = [ABTestArmInline]
    actions = ["approve_selected"]

    def has_approve_permission(self, request):
        return has_perm(request.user, "registry.approve_registeredmodel")

    @admin.action(description="Approve and start selected tests", permissions=["approve"])
    def approve_selected(self, request, queryset):
        done = 0
        for test in queryset.filter(status=TestStatus.PENDING_APPROVAL):
            try:
                services.ab_test_approve(ab_test=test, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{test.label}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Approved and started {done} A/B test(s).", messages.SUCCESS)


@admin.register(ABTestArmStatistic)
class ABTestArmStatisticAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    permission_via = "arm__ab_test__endpoint"
    list_display = ["arm", "metric", "n", "sum", "sum_squares", "updated_at"]
    list_select_related = ["arm__ab_test"]


@admin.register(ABTestUnit)
class ABTestUnitAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    permission_via = "ab_test__endpoint"
    list_display = ["ab_test", "arm_index", "unit_key", "requests", "errors", "labelled", "correct"]
    list_select_related = ["ab_test"]
    search_fields = ["unit_key"]
