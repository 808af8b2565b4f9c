"""Admin for experiments, runs and training jobs. Runs and jobs are records
of what happened: read-only here (runs change through the API, jobs through
their services); an admin may cancel active jobs."""

from django.contrib import admin, messages

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.experiments import services
from apps.experiments.choices import JobStatus
from apps.experiments.models import Artifact, Experiment, Param, Run, RunTag, TrainingJob


@admin.register(Experiment)
class ExperimentAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    list_display = ["name", "owner", "created_at", "updated_at"]
    search_fields = ["name", "description", "owner__username"]
    readonly_fields = ["name", "owner", "created_at", "updated_at"]
    fields = ["name", "description", "tags", "owner", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False  # created through the API or the pages, which grant object permissions

    def has_delete_permission(self, request, obj=None):
        return False  # no audited delete exists; runs are the record of what was tried

    def save_model(self, request, obj, form, change):
        # Through the service, so the change is permission-checked and audited.
        services.experiment_update(actor=request.user, experiment=obj, description=obj.description, tags=obj.tags)


class _RunRecordInline(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.TabularInline):
    permission_via = "run__experiment"
    extra = 0
    show_change_link = False


class ParamInline(_RunRecordInline):
    model = Param
    fields = readonly_fields = ["key", "value"]


class TagInline(_RunRecordInline):
    model = RunTag
    fields = readonly_fields = ["key", "value"]


class ArtifactInline(_RunRecordInline):
    model = Artifact
    fields = readonly_fields = ["path", "size_bytes", "content_type", "sha256", "created_at"]


@admin.register(Run)
class RunAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Runs change through the tracking API only."""

    permission_via = "experiment"
    list_display = ["id", "name", "experiment", "status", "user", "start_time", "end_time"]
    list_filter = ["status", "experiment"]
    search_fields = ["name", "experiment__name", "user__username", "source_version"]
    list_select_related = ["experiment", "user"]
    date_hierarchy = "start_time"
    inlines = [ParamInline, TagInline, ArtifactInline]


@admin.register(TrainingJob)
class TrainingJobAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    permission_via = "run__experiment"
    list_display = ["id", "estimator", "task", "status", "progress", "run", "parent", "worker", "created_by",
                    "created_at"]
    list_filter = ["status", "estimator", "task", "search_kind"]
    search_fields = ["estimator", "worker", "created_by__username", "run__name"]
    list_select_related = ["run", "created_by", "parent"]
    readonly_fields = [f.name for f in TrainingJob._meta.fields]
    actions = ["cancel_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # "Change" is the cancel action on the list; the page itself saves nothing.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected queued or running jobs", permissions=["change"])
    def cancel_selected(self, request, queryset):
        cancelled = 0
        for job in queryset.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).select_related("run"):
            try:
                services.training_job_cancel(actor=request.user, job=job)
                cancelled += 1
            except ApplicationError as exc:
                self.message_user(request, f"Job {job.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
