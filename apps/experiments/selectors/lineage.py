"""A run's lineage: the dataset version it trained on, and what became of
its model — the registry versions registered from it and where they are
deployed. The registry and serving apps sit above this one, so their objects
come from the links they provide (``apps.core.lineage``)."""

from __future__ import annotations

from apps.core import lineage as lineage_links
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
    model_versions = lineage_links.link(Run, "model_versions")
    if model_versions is None:
        return lineage
    every = model_versions.of(run)
    versions, lineage["hidden"]["model_versions"] = model_versions.split(user, every)
    lineage["registered"] = bool(versions) or lineage["hidden"]["model_versions"] > 0
    items = {mv.pk: {**model_versions.describe(mv), "deployments": []} for mv in versions}
    lineage["model_versions"] = list(items.values())
    deployments = lineage_links.link(every.model, "deployments")
    if deployments is not None and lineage["registered"]:
        shown, _ = deployments.split(user, deployments.of(every.filter(pk__in=list(items))))
        for deployment in shown:
            item = deployments.describe(deployment)
            items[item["model_version_id"]]["deployments"].append(item)
        lineage["hidden"]["deployments"] = max(deployments.of(every).count() - len(shown), 0)
    return lineage




def run_registered_versions(*, runs: list[Run], user) -> dict[int, list[dict]]:
    """For a page of runs: the registry versions registered from each that
    ``user`` may see, as ``{run_id: [{"model", "version", "stage"}]}`` (one
    query, newest version first)."""
    model_versions = lineage_links.link(Run, "model_versions")
    if model_versions is None or not runs:
        return {}
    versions, _ = model_versions.split(user, model_versions.of(Run.objects.filter(pk__in=[run.pk for run in runs]))
                                       .order_by("-pk"), limit=500)
    registered: dict[int, list[dict]] = {}
    for mv in versions:
        registered.setdefault(mv.source_run_id, []).append(
            {"model": mv.registered_model.name, "version": mv.version, "stage": mv.stage})
    return registered


__all__ = ["run_lineage", "run_registered_versions"]
