"""Training on the ``training`` queue. Tasks take ids, re-read the job and
return early when it is no longer queued; the work is in the services
``training_execution``, ``hyperparameter_searches`` and ``training_reaper``.

Not ``acks_late``: a job's task is not safely repeatable once it started
(the run already holds metrics), so a task lost with its worker is not
redelivered; the reaper fails the job instead and the user retrains."""

from celery import Task, shared_task

from apps.experiments import services

SOFT_LIMIT, HARD_LIMIT = services.time_limits()


class TrainingTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Reached only when the service itself could not record the failure
        # (e.g. the database was unreachable): try once more from here.
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            services.training_job_fail(job_id=job_id, reason=f"The training task failed: {exc!r}")


@shared_task(bind=True, base=TrainingTask, queue="training", soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def training_job_run(self, job_id: int) -> str:
    job = services.training_job_execute(job_id=job_id, worker=self.request.hostname or "")
    return job.status if job is not None else "skipped"


@shared_task(bind=True, base=TrainingTask, queue="training", soft_time_limit=240, time_limit=300)
def hyperparameter_search_run(self, job_id: int) -> list[int]:
    return services.hyperparameter_search_start(job_id=job_id, worker=self.request.hostname or "")


@shared_task(queue="training", soft_time_limit=240, time_limit=300)
def hyperparameter_search_finish(job_id: int) -> str:
    return services.hyperparameter_search_finish(job_id=job_id).status


@shared_task(queue="default", soft_time_limit=240, time_limit=300)
def training_jobs_reap() -> list[int]:
    return services.training_jobs_reap()


__all__ = ["hyperparameter_search_finish", "hyperparameter_search_run", "training_job_run", "training_jobs_reap"]
