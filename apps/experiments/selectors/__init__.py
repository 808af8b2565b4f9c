"""Reads of the experiments app, split by subdomain and re-exported here."""

from apps.experiments.selectors.lineage import run_lineage, run_registered_versions
from apps.experiments.selectors.run_search import SearchError, SearchPage, run_search, run_search_queryset
from apps.experiments.selectors.tracking import (
    HISTORY_EXACT_LIMIT,
    artifact_get,
    artifact_list,
    attach_details,
    experiment_get,
    experiment_get_by_name,
    experiment_list,
    metric_history,
    metric_key_run_counts,
    metric_keys,
    metric_keys_with_history,
    overview_card,
    run_children,
    run_get,
    run_list,
    run_list_by_ids,
    visible_experiment_ids,
    with_summary,
)
from apps.experiments.selectors.training_jobs import training_job_get, training_job_list

__all__ = [
    "HISTORY_EXACT_LIMIT",
    "SearchError",
    "SearchPage",
    "artifact_get",
    "artifact_list",
    "attach_details",
    "experiment_get",
    "experiment_get_by_name",
    "experiment_list",
    "metric_history",
    "metric_key_run_counts",
    "metric_keys",
    "metric_keys_with_history",
    "overview_card",
    "run_children",
    "run_get",
    "run_lineage",
    "run_list",
    "run_list_by_ids",
    "run_registered_versions",
    "run_search",
    "run_search_queryset",
    "training_job_get",
    "training_job_list",
    "visible_experiment_ids",
    "with_summary",
]
