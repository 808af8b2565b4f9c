from celery import shared_task

from apps.datasets.choices import VersionStatus


@shared_task(
    queue="default",
    acks_late=True,               # idempotent: a redelivered message after a crash finishes the job
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),     # storage hiccups; content problems never raise
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=55 * 60,
    time_limit=60 * 60,
)
def validate_dataset_version(version_id: int) -> str:
    """Validate one dataset version (see services.dataset_version_validate)."""
    from apps.datasets import services
    from apps.datasets.models import DatasetVersion

    status = DatasetVersion.objects.filter(pk=version_id).values_list("status", flat=True).first()
    if status is None:
        return "missing"
    if status in (VersionStatus.VALID, VersionStatus.INVALID):
        return status
    return services.dataset_version_validate(version_id=version_id).status
