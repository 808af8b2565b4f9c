"""Periodic work, defined in code. django-celery-beat's database scheduler
syncs these entries on start; an operator may pause one in the admin.

Each app adds its entries here rather than in the admin, so the schedule is
reviewed like any other code."""

from datetime import timedelta

BEAT_SCHEDULE = {
    "core-prune-task-results": {
        "task": "apps.core.tasks.prune_task_results",
        "schedule": timedelta(hours=6),
        "options": {"queue": "default"},
    },
    "experiments-reap-training-jobs": {
        "task": "apps.experiments.tasks.reap_training_jobs",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default"},
    },
}
