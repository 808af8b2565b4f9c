"""Writes of the experiments app, split by subdomain and re-exported here.

Tracking: ``experiments``, ``runs``, ``metrics`` (log batches), ``artifacts``
and the shared ``validation`` rules. Training: ``training_jobs`` (create,
cancel, end), ``training_execution`` (the worker side), ``hyperparameter_searches``
(fan-out and best child), ``training_reaper`` and ``launch``."""

from apps.experiments.services.artifacts import artifact_log, clean_artifact_path
from apps.experiments.services.experiments import (
    experiment_create,
    experiment_rename,
    experiment_tag_set,
    experiment_update,
)
from apps.experiments.services.hyperparameter_searches import (
    hyperparameter_search_finish,
    hyperparameter_search_start,
)
from apps.experiments.services.launch import training_job_create_in_new_experiment
from apps.experiments.services.metrics import BatchResult, run_log_batch
from apps.experiments.services.runs import (
    require_run_write,
    run_create,
    run_finish,
    run_tag_delete,
    run_update,
)
from apps.experiments.services.training_execution import training_job_execute
from apps.experiments.services.training_jobs import (
    TrainingCancelled,
    time_limits,
    training_job_cancel,
    training_job_create,
    training_job_fail,
)
from apps.experiments.services.training_reaper import training_jobs_reap
from apps.experiments.services.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    parse_time,
)

__all__ = [
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_TAGS_PER_BATCH",
    "BatchResult",
    "TrainingCancelled",
    "artifact_log",
    "clean_artifact_path",
    "experiment_create",
    "experiment_rename",
    "experiment_tag_set",
    "experiment_update",
    "hyperparameter_search_finish",
    "hyperparameter_search_start",
    "parse_time",
    "require_run_write",
    "run_create",
    "run_finish",
    "run_log_batch",
    "run_tag_delete",
    "run_update",
    "time_limits",
    "training_job_cancel",
    "training_job_create",
    "training_job_create_in_new_experiment",
    "training_job_execute",
    "training_job_fail",
    "training_jobs_reap",
]
