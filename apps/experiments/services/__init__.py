"""Writes of the experiments app, split by subdomain and re-exported here."""

from apps.experiments.services.tracking import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    BatchResult,
    artifact_log,
    clean_artifact_path,
    experiment_create,
    experiment_update,
    parse_time,
    run_create,
    run_end,
    run_finish,
    run_log_batch,
    run_update,
)

__all__ = [
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_TAGS_PER_BATCH",
    "BatchResult",
    "artifact_log",
    "clean_artifact_path",
    "experiment_create",
    "experiment_update",
    "parse_time",
    "run_create",
    "run_end",
    "run_finish",
    "run_log_batch",
    "run_update",
]
