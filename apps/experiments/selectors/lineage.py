"""A run's lineage: the dataset version it trained on, and what became of
its model — the registry versions registered from it and where they are
deployed. The registry and serving apps sit above this one, so their models
are reached through reverse relations (``apps.core.lineage``)."""

from __future__ import annotations

from apps.core.lineage import reverse_related, split_visible
from apps.core.permissions import has_perm
from apps.experiments.models import Run


def run_lineage(*, run: Run, user) -> dict:
    """``dataset_version`` (None when the user may not view its dataset, with
    ``dataset_version_hidden``), ``model_versions`` registered from the run
    (each with its visible ``deployments``), ``registered`` (whether any
    version was, visible or not) and ``hidden`` counts of the rest."""
    lineage = {"dataset_version": None, "dataset_version_hidden": False, "model_versions": [],
               "registered": False, "hidden": {"model_versions": 0, "deployments": 0}}
    if run.dataset_version_id:
        dataset_version = run.dataset_version
        if has_perm(user, "datasets.view_dataset", dataset_version.dataset):
            lineage["dataset_version"] = {"id": dataset_version.pk, "dataset": dataset_version.dataset.name,
                                          "version": dataset_version.version, "status": dataset_version.status}
        else:
            lineage["dataset_version_hidden"] = True
    ModelVersion = reverse_related(Run, "model_versions")
    if ModelVersion is None:
        return lineage
    every = ModelVersion.objects.filter(source_run=run)
    versions, lineage["hidden"]["model_versions"] = split_visible(
        user, every.select_related("registered_model").order_by("-pk"))
    lineage["registered"] = bool(versions) or lineage["hidden"]["model_versions"] > 0
    items = {mv.pk: {"id": mv.pk, "model": mv.registered_model.name, "version": mv.version, "stage": mv.stage,
                     "deployments": []} for mv in versions}
    lineage["model_versions"] = list(items.values())
    Deployment = reverse_related(ModelVersion, "deployments")
    if Deployment is not None and lineage["registered"]:
        all_deployments = Deployment.objects.filter(model_version__in=every.values("pk"))
        shown, _ = split_visible(user, all_deployments.filter(model_version_id__in=list(items))
                                 .select_related("endpoint").order_by("-pk"))
        for deployment in shown:
            items[deployment.model_version_id]["deployments"].append({
                "id": deployment.pk, "endpoint": deployment.endpoint.slug, "status": deployment.status,
                "traffic_weight": deployment.traffic_weight,
            })
        lineage["hidden"]["deployments"] = max(all_deployments.count() - len(shown), 0)
    return lineage


__all__ = ["run_lineage"]


def run_registered_versions(*, runs: list[Run], user) -> dict[int, list[dict]]:
    """For a page of runs: the registry versions registered from each that
    ``user`` may see, as ``{run_id: [{"model", "version", "stage"}]}`` (one
    query, newest version first)."""
    ModelVersion = reverse_related(Run, "model_versions")
    if ModelVersion is None or not runs:
        return {}
    versions, _ = split_visible(user, ModelVersion.objects.filter(source_run__in=[run.pk for run in runs])
                                .select_related("registered_model").order_by("-pk"), limit=500)
    registered: dict[int, list[dict]] = {}
    for mv in versions:
        registered.setdefault(mv.source_run_id, []).append(
            {"model": mv.registered_model.name, "version": mv.version, "stage": mv.stage})
    return registered
