"""Training on the ``training`` queue. Tasks take ids, re-read the job and
return early when it is no longer queued; the work is in
``apps.experiments.services.training``.

Not ``acks_late``: a job's task is not safely repeatable once it started
(the run already holds metrics), so a task lost with its worker is not
redelivered; the reaper fails the job instead and the user retrains."""

from celery import Task, shared_task

from apps.experiments.services import training

SOFT_LIMIT, HARD_LIMIT = training.time_limits()


class TrainingTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Reached only when the service itself could not record the failure
        # (e.g. the database was unreachable): try once more from here.
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            training.training_job_fail(job_id=job_id, reason=f"The training task failed: {exc!r}")


@shared_task(bind=True, base=TrainingTask, queue="training", soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def run_training_job(self, job_id: int) -> str:
    job = training.training_job_execute(job_id=job_id, worker=self.request.hostname or "")
    return job.status if job is not None else "skipped"


@shared_task(bind=True, base=TrainingTask, queue="training", soft_time_limit=240, time_limit=300)
def run_training_search(self, job_id: int) -> list[int]:
    return training.training_search_start(job_id=job_id, worker=self.request.hostname or "")


@shared_task(queue="training", soft_time_limit=240, time_limit=300)
def finish_training_search(job_id: int) -> str:
    return training.training_search_finish(job_id=job_id).status


@shared_task(queue="default", soft_time_limit=240, time_limit=300)
def reap_training_jobs() -> list[int]:
    return training.training_jobs_reap()


__all__ = ["finish_training_search", "reap_training_jobs", "run_training_job", "run_training_search"]
