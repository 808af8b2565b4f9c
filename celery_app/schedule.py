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
    "experiments-training-jobs-reap": {
        "task": "apps.experiments.tasks.training_jobs_reap",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default"},
    },
    # Core (webhooks facility): deliveries owed a send whose task was lost;
    # the database, not the broker, is the record of what is owed.
    "core-webhook-delivery-sweep": {
        "task": "apps.core.tasks.webhook_delivery_sweep",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default", "expires": 55},
    },
    # Serving: a safety net for rollout ticks lost with a dead worker (each
    # transition sends its own tick; this only re-sends overdue ones).
    "serving-rollouts-resume-overdue": {
        "task": "apps.serving.tasks.rollouts_resume",
        "schedule": timedelta(seconds=15),
        "kwargs": {"due_only": True},
        "options": {"queue": "rollouts", "expires": 14},
    },
    "serving-deployments-check-health": {
        "task": "apps.serving.tasks.deployments_check_health",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "rollouts", "expires": 55},
    },
    "serving-feedback-join-pending": {
        "task": "apps.serving.tasks.feedback_join_pending",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default", "expires": 55},
    },
    # A/B tests: fold the newly logged predictions and feedback into each
    # running test's per-arm statistics.
    "abtests-stats-update": {
        "task": "apps.abtests.tasks.ab_tests_stats_update",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "monitoring", "expires": 55},
    },
    # Monitoring: fold the newly logged predictions and feedback into the
    # metric series (minute, hour, day) and prune old points. The log prune
    # below keeps rows this has not read yet (apps.serving.retention).
    "monitoring-metric-series-update": {
        "task": "apps.monitoring.tasks.metric_series_update",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "monitoring", "expires": 55},
    },
    # Monitoring: alert rules on each endpoint's live numbers (each rule is
    # evaluated when due; notifications are grouped per endpoint).
    "monitoring-alert-rules-evaluate": {
        "task": "apps.monitoring.tasks.alert_rules_evaluate",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "monitoring", "expires": 55},
    },
    "serving-prune-prediction-logs": {
        "task": "apps.serving.tasks.prediction_logs_prune",
        "schedule": timedelta(hours=24),
        "options": {"queue": "default"},
    },
}
