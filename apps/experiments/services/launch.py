"""Starting training from the browser in one step: a new experiment and its
first training job together, or neither."""

from __future__ import annotations

from django.db import transaction

from apps.experiments.models import TrainingJob
from apps.experiments.services.experiments import experiment_create
from apps.experiments.services.training_jobs import training_job_create


def training_job_create_in_new_experiment(*, actor, experiment_name: str, **arguments) -> TrainingJob:
    """Create the experiment ``experiment_name`` owned by ``actor`` and queue
    the training job in it. A refused job (bad target, invalid version, no
    right to train) leaves no empty experiment behind: both are written in
    one transaction, and the job is enqueued only after it commits."""
    with transaction.atomic():
        experiment = experiment_create(actor=actor, name=experiment_name)
        return training_job_create(actor=actor, experiment=experiment, **arguments)


__all__ = ["training_job_create_in_new_experiment"]
