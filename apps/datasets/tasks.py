from celery import shared_task


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
def dataset_version_validate(version_id: int) -> str:
    """Validate one dataset version (see services.dataset_version_validate):
    its status afterwards, or ``missing`` when it was deleted."""
    from apps.datasets import services

    version = services.dataset_version_validate(version_id=version_id)
    return "missing" if version is None else version.status
