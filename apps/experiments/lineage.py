"""The lineage this app provides to the datasets app below it (registered in
``ExperimentsConfig.ready()``, see ``apps.core.lineage``): a dataset
version's runs — trained on it directly or through a training job — and its
training jobs."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.core.lineage import LineageLink, LineageProvider
from apps.experiments.models import Run, TrainingJob


def dataset_version_runs(dataset_versions: QuerySet) -> QuerySet[Run]:
    """Runs on any of ``dataset_versions``, directly or through their training job."""
    ids = dataset_versions.values("pk")
    trained_on = Q(dataset_version__in=ids) | Q(training_job__dataset_version__in=ids)
    return Run.objects.filter(pk__in=Run.objects.filter(trained_on).values("pk"))


def _describe_run(run: Run) -> dict:
    return {"id": run.pk, "name": str(run), "status": run.status,
            "experiment": run.experiment.name, "experiment_id": run.experiment_id}


def _describe_training_job(job: TrainingJob) -> dict:
    return {"id": job.pk, "status": job.status, "run_id": job.run_id}


PROVIDER = LineageProvider(app_label="experiments", links=(
    LineageLink(source="datasets.DatasetVersion", name="runs", objects=dataset_version_runs,
                permission_via="experiment", describe=_describe_run, select_related=("experiment",)),
    LineageLink(source="datasets.DatasetVersion", name="training_jobs",
                objects=lambda versions: TrainingJob.objects.filter(dataset_version__in=versions.values("pk")),
                permission_via="run__experiment", describe=_describe_training_job),
))

__all__ = ["PROVIDER", "dataset_version_runs"]
