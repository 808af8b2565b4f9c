"""The Celery application shared by web, workers and beat."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_site.settings.local")

app = Celery("mlops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "training", "monitoring", "rollouts")]
app.autodiscover_tasks(lambda: __import__("django.conf").conf.settings.INSTALLED_APPS)

__all__ = ["app"]
