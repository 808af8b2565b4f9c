"""Reads of the model registry, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.urls import reverse

from apps.core import lineage
from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm
from apps.registry import quality
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import (
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
)

VIA_MODEL = "registered_model"
VIA_VERSION_MODEL = "version__registered_model"


def _production_number():
    return Subquery(ModelVersion.objects.filter(registered_model=OuterRef("pk"), stage=Stage.PRODUCTION)
                    .values("version")[:1])


def registered_model_list(*, user):
    """Visible models with their Production version number, pending request
    count and aliases, in a fixed number of queries."""
    pending = Count("versions__promotion_requests",
                    filter=Q(versions__promotion_requests__status=RequestStatus.PENDING), distinct=True)
    return (filter_visible(user, RegisteredModel.objects.all())
            .select_related("owner")
            .annotate(production_version=_production_number(), pending_requests=pending)
            .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.select_related("version")))
            .order_by("name"))


def registered_model_get(*, user, name: str, annotated: bool = True) -> RegisteredModel:
    """The model called ``name`` when the user may see it (404 otherwise);
    ``annotated`` adds what the model serializer shows (Production version,
    pending requests, aliases)."""
    if annotated:
        qs = registered_model_list(user=user)
    else:
        qs = filter_visible(user, RegisteredModel.objects.all())
    model = qs.filter(name=name).first()
    if model is None:
        raise NotFound(f"No registered model named {name!r}.")
    return model


def model_version_list(*, user, registered_model: RegisteredModel | None = None):
    qs = filter_visible(user, ModelVersion.objects.all(), "registry.view_registeredmodel", via=VIA_MODEL)
    if registered_model is not None:
        qs = qs.filter(registered_model=registered_model)
    # Run and dataset version stay ids here: joining them would drag their
    # large JSON columns (schemas, quality reports) into every row.
    return (qs.select_related("registered_model", "created_by", "rolled_back_by")
            .prefetch_related("aliases")
            .order_by("registered_model__name", "-version"))


def model_version_get(*, user, registered_model: RegisteredModel, version: int) -> ModelVersion:
    found = model_version_list(user=user, registered_model=registered_model).filter(version=version).first()
    if found is None:
        raise NotFound(f"{registered_model.name} has no version {version}.")
    return found


def model_alias_get(*, registered_model: RegisteredModel, alias: str) -> ModelAlias:
    """``alias`` of a model the caller already got through a selector (so visible)."""
    found = (ModelAlias.objects.filter(registered_model=registered_model, alias=alias)
             .select_related("version", "registered_model").first())
    if found is None:
        raise NotFound(f"{registered_model.name} has no alias {alias!r}.")
    return found


def promotion_request_list(*, user, status: str | None = None, registered_model: RegisteredModel | None = None,
                           version: ModelVersion | None = None):
    qs = filter_visible(user, PromotionRequest.objects.all(), "registry.view_registeredmodel", via=VIA_VERSION_MODEL)
    if status:
        qs = qs.filter(status=status)
    if registered_model is not None:
        qs = qs.filter(version__registered_model=registered_model)
    if version is not None:
        qs = qs.filter(version=version)
    return qs.select_related("version__registered_model", "requested_by", "decided_by").order_by("-created_at", "-id")


def promotion_request_get(*, user, pk: int) -> PromotionRequest:
    found = promotion_request_list(user=user).filter(pk=pk).first()
    if found is None:
        raise NotFound("Promotion request not found.")
    return found


def approval_queue(*, user):
    """Pending requests this user may decide: approve rights on the model,
    and not their own request (four eyes)."""
    qs = filter_visible(user, PromotionRequest.objects.filter(status=RequestStatus.PENDING),
                        "registry.approve_registeredmodel", via=VIA_VERSION_MODEL)
    return (qs.exclude(requested_by=user)
            .select_related("version__registered_model", "requested_by", "version__dataset_version")
            .order_by("created_at", "id"))


def stage_history(*, version: ModelVersion):
    return version.stage_transitions.select_related("actor", "promotion_request").order_by("created_at", "id")


def model_stage_history(*, registered_model: RegisteredModel, limit: int = 50):
    return (StageTransition.objects.filter(version__registered_model=registered_model)
            .select_related("actor", "version").order_by("-created_at", "-id")[:limit])


def production_version(*, registered_model: RegisteredModel) -> ModelVersion | None:
    return registered_model.versions.filter(stage=Stage.PRODUCTION).first()


def metric_comparison(*, candidate: ModelVersion, baseline: ModelVersion | None) -> list[dict]:
    """Side-by-side evaluation metrics of a candidate and (usually) the
    current Production version, with the change in the metric's direction."""
    keys = sorted(k for k in candidate.metrics if k.startswith("test_"))
    if baseline is not None:
        keys = sorted(set(keys) | {k for k in baseline.metrics if k.startswith("test_")})
    rows = []
    for key in keys:
        value = quality.lookup_metric(candidate.metrics, key)
        other = quality.lookup_metric(baseline.metrics, key) if baseline is not None else None
        delta = value - other if value is not None and other is not None else None
        name = quality.base_metric(key)
        better = None
        if delta is not None and name in quality.SCORABLE and abs(delta) > quality.EPSILON:
            better = (delta > 0) == (name in quality.HIGHER_IS_BETTER)
        rows.append({"metric": key, "candidate": value, "baseline": other, "delta": delta, "better": better})
    return rows


# --- Lineage ---------------------------------------------------------------------

# The keys of a deployment in the version lineage answer (the API's shape),
# from the description serving's lineage provider gives.
_DEPLOYMENT_KEYS = ("id", "name", "endpoint", "environment", "status", "strategy", "traffic_weight",
                    "rollout_state", "created_at")


def version_deployments(*, version: ModelVersion, user) -> tuple[list[dict], int]:
    """The deployments of ``version`` on endpoints ``user`` may view, and how
    many others there are. They come from the link the serving app provides
    (``apps.core.lineage``), so the registry never imports serving."""
    deployments = lineage.link(ModelVersion, "deployments")
    if deployments is None:
        return [], 0
    shown, hidden = deployments.split(user, deployments.of(version))
    return [{key: row[key] for key in _DEPLOYMENT_KEYS} for row in map(deployments.describe, shown)], hidden


def version_lineage(*, version: ModelVersion, user) -> dict:
    """dataset version → run → model version → deployments, as far as
    ``user`` may see: a run in an experiment or a dataset version of a
    dataset they may not view is left out and flagged in ``hidden``, and
    deployments on endpoints they may not view are only counted."""
    dataset_version = version.dataset_version
    run = version.source_run
    deployments, hidden_deployments = version_deployments(version=version, user=user)
    dataset_visible = dataset_version is not None and has_perm(user, "datasets.view_dataset",
                                                               dataset_version.dataset)
    run_visible = run is not None and has_perm(user, "experiments.view_experiment", run.experiment)
    return {
        "dataset_version": None if not dataset_visible else {
            "id": dataset_version.pk, "dataset": dataset_version.dataset.name, "version": dataset_version.version,
            "status": dataset_version.status, "sha256": dataset_version.sha256, "rows": dataset_version.row_count,
        },
        "run": None if not run_visible else {
            "id": run.pk, "name": str(run), "experiment": run.experiment.name, "status": run.status,
            "user": run.user.get_username(), "start_time": run.start_time, "end_time": run.end_time,
        },
        "model_version": {
            "id": version.pk, "registered_model": version.registered_model.name, "version": version.version,
            "stage": version.stage, "sha256": version.sha256, "created_at": version.created_at,
        },
        "deployments": deployments,
        "deployments_available": lineage.link(ModelVersion, "deployments") is not None,
        "hidden": {"dataset_version": dataset_version is not None and not dataset_visible,
                   "run": run is not None and not run_visible, "deployments": hidden_deployments},
    }


def version_runs(*, versions: list[ModelVersion], user) -> dict[int, dict]:
    """For the versions table of a model: each version's source run as
    ``{"id", "name", "visible"}`` by version id, in one query per table (the
    run's name only when its experiment is visible to ``user``)."""
    from apps.experiments.models import Experiment, Run

    run_ids = {v.source_run_id for v in versions if v.source_run_id}
    if not run_ids:
        return {}
    runs = {r.pk: r for r in Run.objects.filter(pk__in=run_ids).only("id", "name", "experiment_id")}
    visible = set(filter_visible(user, Experiment.objects.filter(pk__in={r.experiment_id for r in runs.values()}))
                  .values_list("pk", flat=True))
    return {v.pk: {"id": v.source_run_id, "name": str(runs[v.source_run_id]),
                   "visible": runs[v.source_run_id].experiment_id in visible}
            for v in versions if v.source_run_id in runs}


def gate_metrics(*, registered_model: RegisteredModel) -> list[str]:
    """The metrics the model's quality gates judge (thresholds first, then
    the no-regression metric), as the gates name them."""
    gates = registered_model.quality_gates or {}
    names = [rule.get("metric") for rule in gates.get("metrics") or [] if isinstance(rule, dict)]
    regression = gates.get("max_regression")
    if isinstance(regression, dict):
        names.append(regression.get("metric"))
    found: list[str] = []
    for name in names:
        if isinstance(name, str) and name and name not in found:
            found.append(name)
    return found


# --- Overview -----------------------------------------------------------------------

def overview_card(*, user) -> dict | None:
    """The dashboard's registry card: models, Production versions, and the
    approvals waiting for this user."""
    if not has_perm(user, "registry.view_registeredmodel"):
        return None
    models = filter_visible(user, RegisteredModel.objects.all())
    in_production = ModelVersion.objects.filter(registered_model__in=models.values("pk"), stage=Stage.PRODUCTION)
    pending = promotion_request_list(user=user, status=RequestStatus.PENDING)
    stats = [("Registered models", models.count()), ("In Production", in_production.count()),
             ("Pending requests", pending.count())]
    url = reverse("registry:list")
    if has_perm(user, "registry.approve_registeredmodel"):
        stats.append(("Waiting for you", approval_queue(user=user).count()))
        url = reverse("registry:approvals")
    return {"title": "Model registry", "url": url, "stats": stats}


# --- Register-from-run form ------------------------------------------------------------

FINISHED_RUNS_SHOWN = 200


def register_suggested_model_name(*, user, experiment) -> str:
    """The name the register form starts with: the registered model that
    versions of this experiment's runs already went to (the newest one the
    user may see), else the experiment's name as a slug."""
    from django.utils.text import slugify

    existing = (filter_visible(user, RegisteredModel.objects.filter(
        versions__source_run__experiment_id=experiment.pk)).order_by("-versions__created_at", "name")
        .values_list("name", flat=True).first())
    return existing or slugify(experiment.name)[:100]


def register_finished_runs(*, user, experiment_id: int) -> list:
    """The experiment's finished runs, newest first, to pick one to register."""
    from apps.experiments.choices import RunStatus
    from apps.experiments.models import Run

    runs = Run.objects.filter(experiment_id=experiment_id, status=RunStatus.FINISHED).order_by("-end_time", "-pk")
    return list(filter_visible(user, runs, via="experiment")[:FINISHED_RUNS_SHOWN])


# --- For the apps above (serving) ---------------------------------------------------

def promotion_requests_pending(*, versions) -> dict:
    """The pending promotion request of each of ``versions`` (read through a
    selector already), by version id, in one query."""
    requests = PromotionRequest.objects.filter(version__in=[v.pk for v in versions], status=RequestStatus.PENDING)
    return {r.version_id: r for r in requests}


def model_version_find(*, user, model: str | None = None, version: int | None = None,
                       model_version_id: int | None = None) -> ModelVersion | None:
    """The version with ``model_version_id``, or number ``version`` of the
    model called ``model``, if ``user`` may see its model; else ``None``."""
    qs = filter_visible(user, ModelVersion.objects.select_related("registered_model"),
                        "registry.view_registeredmodel", via=VIA_MODEL)
    if model_version_id is not None:
        return qs.filter(pk=model_version_id).first()
    return qs.filter(registered_model__name=model, version=version).first()


def stage_transition_get(*, pk: int, version_id: int) -> StageTransition | None:
    """The stage move ``pk`` of version ``version_id``, with its version,
    model and actor: for the platform's reactions to it (no user's view)."""
    return (StageTransition.objects.select_related("version__registered_model", "actor")
            .filter(pk=pk, version_id=version_id).first())


# --- Rows of lower apps that registry pages and the API take as input ---------------

def run_to_register(*, user, pk: int):
    """The run ``pk`` if the user may see its experiment (else None): the
    source of a model version registered from the page or the API."""
    from apps.experiments.models import Run

    runs = filter_visible(user, Run.objects.select_related("experiment", "dataset_version__dataset"),
                          "experiments.view_experiment", via="experiment")
    return runs.filter(pk=pk).first()


def dataset_version_to_use(*, user, pk: int):
    """The dataset version ``pk`` if the user may see its dataset (else
    None): a version's lineage or a model's evaluation holdout."""
    from apps.datasets.models import DatasetVersion

    versions = filter_visible(user, DatasetVersion.objects.select_related("dataset"), "datasets.view_dataset",
                              via="dataset")
    return versions.filter(pk=pk).first()
