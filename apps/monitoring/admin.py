from django.contrib import admin

from apps.monitoring.models import DriftReport


@admin.register(DriftReport)
class DriftReportAdmin(admin.ModelAdmin):
    """Read-only: reports are created through the API or the page and computed by a worker."""

    list_display = ["id", "reference_version", "current_version", "status", "dataset_drift", "owner", "created_at"]
    list_filter = ["status", "dataset_drift"]
    readonly_fields = [f.name for f in DriftReport._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
