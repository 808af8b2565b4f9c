from django.contrib import admin

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.monitoring import selectors
from apps.monitoring.models import DriftReport


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdminMixin, ObjectPermissionAdminMixin, admin.ModelAdmin):
    """Read-only: reports are created through the API or the page and computed by a worker.
    Staff see a report only when they may see both of its dataset versions, as in the API."""

    permission_via = "reference_version__dataset"
    list_display = ["id", "reference_version", "current_version", "status", "dataset_drift", "owner", "created_at"]
    list_filter = ["status", "dataset_drift"]
    readonly_fields = [f.name for f in DriftReport._meta.fields]

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        return queryset.filter(pk__in=selectors.drift_report_list(user=request.user).values("pk"))


# Alerting registers its own admins.
from apps.monitoring.alerts import admin as alerts_admin  # noqa: E402, F401
