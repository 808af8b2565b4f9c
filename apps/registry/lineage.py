"""The lineage this app provides to the apps below it (registered in
``RegistryConfig.ready()``, see ``apps.core.lineage``): the model versions
of a dataset version — registered from it, or from a run trained on it —
and the model versions registered from a run."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.core.lineage import LineageLink, LineageProvider
from apps.experiments.lineage import dataset_version_runs
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion


def _dataset_version_model_versions(dataset_versions: QuerySet) -> QuerySet[ModelVersion]:
    derived = (Q(dataset_version__in=dataset_versions.values("pk"))
               | Q(source_run__in=dataset_version_runs(dataset_versions).values("pk")))
    return ModelVersion.objects.filter(pk__in=ModelVersion.objects.filter(derived).values("pk"))


def _run_model_versions(runs: QuerySet) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(source_run__in=runs.values("pk"))


def stage_words(model_version: ModelVersion) -> str:
    """A model version's stage in words: "No stage" for a version outside every stage."""
    if not model_version.stage or model_version.stage == Stage.NONE:
        return "No stage"
    return str(model_version.get_stage_display())


def _describe_model_version(model_version: ModelVersion) -> dict:
    return {"id": model_version.pk, "model": model_version.registered_model.name,
            "version": model_version.version, "stage": model_version.stage,
            "stage_label": stage_words(model_version), "source_run_id": model_version.source_run_id}


def _model_versions_link(source: str, objects) -> LineageLink:
    return LineageLink(source=source, name="model_versions", objects=objects, permission_via="registered_model",
                       describe=_describe_model_version, select_related=("registered_model",))


PROVIDER = LineageProvider(app_label="registry", links=(
    _model_versions_link("datasets.DatasetVersion", _dataset_version_model_versions),
    _model_versions_link("experiments.Run", _run_model_versions),
))

__all__ = ["PROVIDER", "stage_words"]
