"""Alerting in the admin, scoped through the endpoint's rights. Rules and
silences are changed through the API (so changes are checked and audited);
here they are read, like alerts and their transitions."""

from django.contrib import admin

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.monitoring.alerts.models import Alert, AlertRule, AlertTransition, Silence


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdminMixin, ObjectPermissionAdminMixin, admin.ModelAdmin):
    permission_via = "endpoint"
    list_display = ["id", "endpoint", "name", "metric", "comparison", "warning_threshold", "critical_threshold",
                    "enabled"]
    list_filter = ["metric", "enabled"]
    readonly_fields = [f.name for f in AlertRule._meta.fields]


class AlertTransitionInline(ReadOnlyAdminMixin, ObjectPermissionAdminMixin, admin.TabularInline):
    model = AlertTransition
    permission_via = "alert__rule__endpoint"
    extra = 0
    readonly_fields = ["from_state", "to_state", "severity", "value", "silenced", "at"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, ObjectPermissionAdminMixin, admin.ModelAdmin):
    permission_via = "rule__endpoint"
    list_display = ["id", "rule", "state", "severity", "value", "active_since", "acked_by"]
    list_filter = ["state", "severity"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [AlertTransitionInline]


@admin.register(Silence)
class SilenceAdmin(ReadOnlyAdminMixin, ObjectPermissionAdminMixin, admin.ModelAdmin):
    permission_via = "endpoint"
    list_display = ["id", "endpoint", "rule", "starts_at", "ends_at", "reason", "created_by"]
    readonly_fields = [f.name for f in Silence._meta.fields]
