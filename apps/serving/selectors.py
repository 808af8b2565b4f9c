"""Reads of the serving app: visible endpoints and deployments, live
metrics from the prediction log, the dashboard card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Count, Prefetch, Q
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.permissions import filter_visible, has_perm, require_perm
from apps.serving.choices import ACTIVE_ROLLOUT_STATES, DeploymentStatus
from apps.serving.models import Deployment, Endpoint, Feedback, PredictionLog, RolloutEvent
from apps.serving.policy import WindowStats, summarize

LIVE_STATUSES = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)
MAX_WINDOW = timedelta(days=7)


# --- Endpoints and deployments ------------------------------------------------------

def _live_deployments_prefetch() -> Prefetch:
    return Prefetch(
        "deployments",
        queryset=Deployment.objects.filter(Q(status__in=LIVE_STATUSES) | Q(rollout_state__in=ACTIVE_ROLLOUT_STATES))
        .select_related("model_version__registered_model").order_by("-created_at", "-id"),
        to_attr="live_deployments",
    )


def endpoint_list(*, user, perm: str = "serving.view_endpoint"):
    """Endpoints the user holds ``perm`` on (by default: may see), with owner
    and live deployments in two extra queries whatever their number."""
    return (filter_visible(user, Endpoint.objects.all(), perm)
            .select_related("owner").prefetch_related(_live_deployments_prefetch()).order_by("slug"))


def endpoint_get(*, user, slug: str, perm: str = "serving.view_endpoint") -> Endpoint:
    """The endpoint ``slug``; 404 when it does not exist or the user may not
    see it, 403 when they see it but lack ``perm``."""
    from apps.core.errors import NotFound

    endpoint = Endpoint.objects.select_related("owner").filter(slug=slug).first()
    if endpoint is None:
        raise NotFound(f"No endpoint {slug!r}.")
    require_perm(user, perm, endpoint)
    return endpoint


def endpoint_live_deployments(*, endpoint: Endpoint) -> list[Deployment]:
    """The rows ``endpoint_list`` prefetches, for one endpoint read without them."""
    return list(Endpoint.objects.prefetch_related(_live_deployments_prefetch()).get(pk=endpoint.pk).live_deployments)


def deployment_list(*, user, endpoint: Endpoint | None = None):
    qs = filter_visible(user, Deployment.objects.all(), "serving.view_endpoint", via="endpoint")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    return qs.select_related("endpoint", "model_version__registered_model", "created_by").order_by(
        "-created_at", "-id")


def deployment_get(*, user, pk: int, perm: str = "serving.view_endpoint") -> Deployment:
    from apps.core.errors import NotFound

    deployment = (Deployment.objects.select_related("endpoint", "model_version__registered_model", "created_by")
                  .filter(pk=pk).first())
    if deployment is None:
        raise NotFound(f"No deployment {pk}.")
    require_perm(user, perm, deployment.endpoint)
    return deployment


def deployments_with_lineage(*, user, deployments: list[Deployment]) -> list[Deployment]:
    """Give each deployment a ``lineage``: its model version, the run and the
    dataset version behind it, each ``None`` when absent and marked
    ``visible`` only when ``user`` may view it (the endpoint page links those
    and only counts the others). Four queries, whatever the number."""
    from apps.datasets.models import Dataset
    from apps.experiments.models import Experiment
    from apps.registry.models import ModelVersion, RegisteredModel

    versions = {mv.pk: mv for mv in ModelVersion.objects.filter(pk__in={d.model_version_id for d in deployments})
                .select_related("registered_model", "source_run", "dataset_version__dataset")
                .only("id", "version", "registered_model__id", "registered_model__name", "source_run__id",
                      "source_run__name", "source_run__experiment_id", "dataset_version__id",
                      "dataset_version__version", "dataset_version__dataset__id", "dataset_version__dataset__name")}
    models = set(filter_visible(user, RegisteredModel.objects.filter(
        pk__in={mv.registered_model_id for mv in versions.values()})).values_list("pk", flat=True))
    experiments = set(filter_visible(user, Experiment.objects.filter(
        pk__in={mv.source_run.experiment_id for mv in versions.values() if mv.source_run_id}))
        .values_list("pk", flat=True))
    datasets = set(filter_visible(user, Dataset.objects.filter(
        pk__in={mv.dataset_version.dataset_id for mv in versions.values() if mv.dataset_version_id}))
        .values_list("pk", flat=True))
    for deployment in deployments:
        mv = versions[deployment.model_version_id]
        run, data = mv.source_run, mv.dataset_version
        deployment.lineage = {
            "model": {"name": mv.registered_model.name, "version": mv.version,
                      "visible": mv.registered_model_id in models},
            "run": None if run is None else {"id": run.pk, "name": str(run),
                                             "visible": run.experiment_id in experiments},
            "dataset_version": None if data is None else {
                "id": data.pk, "name": f"{data.dataset.name} v{data.version}", "visible": data.dataset_id in datasets},
        }
    return deployments


def deployment_timeline(*, deployment: Deployment):
    return RolloutEvent.objects.filter(deployment=deployment).select_related("actor").order_by("created_at", "id")


def endpoint_timeline(*, endpoint: Endpoint, limit: int = 200) -> list[RolloutEvent]:
    """The latest rollout events of all the endpoint's deployments, oldest first."""
    events = (RolloutEvent.objects.filter(deployment__endpoint=endpoint)
              .select_related("actor", "deployment__model_version__registered_model")
              .order_by("-created_at", "-id")[:limit])
    return list(reversed(events))


def traffic_split(*, endpoint: Endpoint) -> list[dict]:
    """The endpoint's live deployments and their current share of requests."""
    deployments = (Deployment.objects.filter(endpoint=endpoint, status__in=LIVE_STATUSES)
                   .select_related("model_version__registered_model").order_by("created_at", "id"))
    return [{"deployment_id": d.pk, "model": d.model_version.registered_model.name,
             "version": d.model_version.version, "traffic_weight": d.traffic_weight, "status": d.status,
             "rollout_state": d.rollout_state, "strategy": d.strategy} for d in deployments]



def deployment_for_manifests(*, user, endpoint_slug: str, model: str, version: int):
    """``(endpoint, model version, its newest deployment there that has not
    ended or None)`` for ``manage.py serving_manifests``; 404 for names that
    do not exist or that ``user`` may not see. ``user=None`` is an operator on
    the server (management commands only), who sees everything."""
    from apps.core.errors import NotFound
    from apps.registry.models import ModelVersion

    endpoint = endpoint_get(user=user, slug=endpoint_slug) if user is not None else \
        Endpoint.objects.filter(slug=endpoint_slug).first()
    if endpoint is None:
        raise NotFound(f"No endpoint {endpoint_slug!r}.")
    found = (ModelVersion.objects.select_related("registered_model")
             .filter(registered_model__name=model, version=version).first())
    if found is None or (user is not None and not has_perm(user, "registry.view_registeredmodel",
                                                           found.registered_model)):
        raise NotFound(f"No version {version} of model {model!r}.")
    ended = (DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED, DeploymentStatus.SUPERSEDED)
    existing = (Deployment.objects.select_related("endpoint", "model_version__registered_model")
                .filter(endpoint=endpoint, model_version=found).exclude(status__in=ended)
                .order_by("-created_at", "-id").first())
    return endpoint, found, existing

# --- Live metrics --------------------------------------------------------------------

def parse_window(value: str | None, *, default: timedelta = timedelta(minutes=15)) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` or plain seconds → a timedelta (max 7 days)."""
    if not value:
        return default
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = str(value).strip().lower()
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise ValidationFailed("window must look like 90s, 15m, 2h or 1d.", details={"fields": {"window": [text]}})
    if not 1 <= seconds <= MAX_WINDOW.total_seconds():
        raise ValidationFailed("window must be between 1 second and 7 days.",
                               details={"fields": {"window": [text]}})
    return timedelta(seconds=seconds)


def deployment_window_stats(*, deployment_id: int, start: datetime, end: datetime | None = None) -> WindowStats:
    """Requests, errors and latency percentiles of one deployment in [start, end)."""
    qs = PredictionLog.objects.filter(deployment_id=deployment_id, created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    rows = list(qs.values_list("latency_ms", "status_code", "n_instances"))
    if not rows:
        return summarize([], [], [])
    latencies, codes, instances = zip(*rows, strict=True)
    return summarize(latencies, codes, instances)


def _accuracy_by_deployment(*, endpoint: Endpoint, start: datetime) -> dict[int, dict]:
    rows = (Feedback.objects.filter(endpoint=endpoint, received_at__gte=start, deployment__isnull=False)
            .values("deployment_id")
            .annotate(n_feedback=Count("id"), n_correct=Count("id", filter=Q(correct=True)),
                      n_judged=Count("id", filter=Q(correct__isnull=False))))
    result = {}
    for row in rows:
        result[row["deployment_id"]] = {
            "feedback": row["n_feedback"],
            "accuracy": (row["n_correct"] / row["n_judged"]) if row["n_judged"] else None,
        }
    return result


def endpoint_metrics(*, endpoint: Endpoint, window: timedelta, now: datetime | None = None,
                     buckets: int = 30) -> dict:
    """Live numbers of an endpoint over ``window``: per deployment and in
    total, requests per second, p50/p95/p99 latency, error rate and (from
    joined feedback) live accuracy; plus a time series in ``buckets`` bins
    for the charts."""
    now = now or timezone.now()
    start = now - window
    rows = list(PredictionLog.objects.filter(endpoint=endpoint, created_at__gte=start, created_at__lt=now)
                .values_list("deployment_id", "created_at", "latency_ms", "status_code", "n_instances"))
    seconds = window.total_seconds()
    deployments = {d.pk: d for d in Deployment.objects.filter(
        Q(pk__in={r[0] for r in rows}) | Q(endpoint=endpoint, status__in=LIVE_STATUSES))
        .select_related("model_version__registered_model")}
    accuracy = _accuracy_by_deployment(endpoint=endpoint, start=start)
    per_deployment = []
    for pk, deployment in sorted(deployments.items()):
        mine = [r for r in rows if r[0] == pk]
        stats = summarize([r[2] for r in mine], [r[3] for r in mine], [r[4] for r in mine])
        per_deployment.append({
            "deployment_id": pk, "model": deployment.model_version.registered_model.name,
            "version": deployment.model_version.version, "traffic_weight": deployment.traffic_weight,
            "status": deployment.status, **stats.as_dict(), "rps": stats.requests / seconds,
            "accuracy": accuracy.get(pk, {}).get("accuracy"), "feedback": accuracy.get(pk, {}).get("feedback", 0),
        })
    total = summarize([r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows])
    judged = [a for a in accuracy.values() if a["accuracy"] is not None]
    overall_accuracy = None
    if judged:
        weight = sum(a["feedback"] for a in judged)
        overall_accuracy = sum(a["accuracy"] * a["feedback"] for a in judged) / weight
    return {
        "endpoint": endpoint.slug, "window_seconds": seconds, "from": start, "to": now,
        "total": {**total.as_dict(), "rps": total.requests / seconds, "accuracy": overall_accuracy},
        "deployments": per_deployment,
        "series": _series(rows, start=start, seconds=seconds, buckets=buckets),
    }


def _series(rows: list, *, start: datetime, seconds: float, buckets: int) -> dict:
    """Per time bin: requests/s, p50/p95/p99 latency and error rate (None where empty)."""
    width = seconds / buckets
    edges = [start + timedelta(seconds=width * (i + 0.5)) for i in range(buckets)]
    series = {"t": edges, "rps": [0.0] * buckets, "p50_ms": [None] * buckets, "p95_ms": [None] * buckets,
              "p99_ms": [None] * buckets, "error_rate": [None] * buckets}
    if not rows:
        return series
    offsets = np.array([(r[1] - start).total_seconds() for r in rows])
    bins = np.clip((offsets / width).astype(int), 0, buckets - 1)
    latency = np.array([r[2] for r in rows], dtype=np.float64)
    errors = np.array([r[3] >= 500 for r in rows])
    for b in np.unique(bins).tolist():
        mask = bins == b
        series["rps"][b] = float(mask.sum()) / width
        p50, p95, p99 = np.percentile(latency[mask], [50, 95, 99])
        series["p50_ms"][b], series["p95_ms"][b], series["p99_ms"][b] = float(p50), float(p95), float(p99)
        series["error_rate"][b] = float(errors[mask].mean())
    return series


# --- Prediction log viewer ------------------------------------------------------------

@dataclass(frozen=True)
class PredictionLogFilter:
    """What the prediction log viewer narrows an endpoint's log to. Each
    filter has an index that starts with the endpoint and ends with the time
    (``PredictionLog.Meta.indexes``), so a filtered page reads its 50 rows
    from an index, newest first, whatever the size of the log."""

    model_version_id: int | None = None
    status: str = ""  # "ok", "error" or "" for both
    unit_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


def endpoint_served_versions(*, endpoint: Endpoint) -> list:
    """The model versions ever deployed on ``endpoint`` (the viewer's version
    filter), newest first."""
    from apps.registry.models import ModelVersion

    return list(ModelVersion.objects.filter(deployments__endpoint=endpoint).distinct()
                .select_related("registered_model").only("id", "version", "registered_model__name")
                .order_by("registered_model__name", "-version"))


def prediction_log_list(*, endpoint: Endpoint, filters: PredictionLogFilter):
    """The endpoint's logged predictions matching ``filters``, newest first,
    with model version and joined feedback (one query each per page)."""
    qs = PredictionLog.objects.filter(endpoint=endpoint)
    if filters.model_version_id is not None:
        qs = qs.filter(model_version_id=filters.model_version_id)
    if filters.status == "error":
        qs = qs.filter(status_code__gte=500)
    elif filters.status == "ok":
        qs = qs.filter(status_code__lt=500)
    if filters.unit_id:
        qs = qs.filter(unit_id=filters.unit_id)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    feedback = Feedback.objects.order_by("index", "id").only(
        "id", "prediction_id", "index", "label", "predicted", "correct", "abs_error", "received_at")
    return (qs.select_related("model_version__registered_model")
            .prefetch_related(Prefetch("feedback", queryset=feedback, to_attr="feedback_list"))
            .order_by("-created_at", "-id"))


def prediction_log_page(*, endpoint: Endpoint, filters: PredictionLogFilter, before: int | None = None,
                        limit: int = 50) -> tuple[list[PredictionLog], int | None]:
    """One page of ``prediction_log_list`` and the id to pass as ``before``
    for the next (older) page, or None on the last page. Keyset paging: the
    page after row N starts strictly after N's (time, id), so a deep page
    costs what the first does and rows logged meanwhile shift nothing."""
    qs = prediction_log_list(endpoint=endpoint, filters=filters)
    if before is not None:
        anchor = PredictionLog.objects.filter(endpoint=endpoint, pk=before).values_list("created_at", flat=True).first()
        if anchor is None:
            raise ValidationFailed("That page of the prediction log does not exist.",
                                   details={"fields": {"before": [str(before)]}})
        qs = qs.filter(Q(created_at__lt=anchor) | Q(created_at=anchor, pk__lt=before))
    rows = list(qs[:limit + 1])
    return rows[:limit], (rows[limit - 1].pk if len(rows) > limit else None)


# --- Dashboard -------------------------------------------------------------------------

def overview_card(*, user) -> dict | None:
    """The serving card on the overview page."""
    if not user.has_perm("serving.view_endpoint") and not user.is_superuser:
        return None
    endpoints = filter_visible(user, Endpoint.objects.all(), "serving.view_endpoint")
    deployments = Deployment.objects.filter(endpoint__in=endpoints)
    since = timezone.now() - timedelta(hours=1)
    return {
        "title": "Serving",
        "url": reverse("serving:list"),
        "stats": [
            ("Endpoints", endpoints.count()),
            ("Live deployments", deployments.filter(status__in=LIVE_STATUSES).count()),
            ("Rollouts in progress", deployments.filter(rollout_state__in=ACTIVE_ROLLOUT_STATES).count()),
            ("Predictions (last hour)",
             PredictionLog.objects.filter(endpoint__in=endpoints, created_at__gte=since).count()),
        ],
    }


# --- Logged inputs (read by data drift checks) --------------------------------------

MAX_LOGGED_INSTANCES = 200_000


def endpoint_visible_slugs(*, user):
    """The slugs of the endpoints ``user`` may see, as a subquery."""
    return filter_visible(user, Endpoint.objects.all(), "serving.view_endpoint").values("slug")


def _window_logs(*, endpoint: Endpoint, since: datetime, until: datetime):
    return PredictionLog.objects.filter(endpoint=endpoint, created_at__gte=since, created_at__lt=until)


def prediction_log_window_versions(*, endpoint: Endpoint, since: datetime, until: datetime) -> list[tuple[int, int]]:
    """``(model_version_id, requests)`` for the versions that answered the
    endpoint's requests in ``[since, until)``, most requests first (ties:
    the newer version first). Empty when nothing was logged."""
    rows = (_window_logs(endpoint=endpoint, since=since, until=until).order_by()
            .values("model_version_id").annotate(requests=Count("id")))
    return sorted(((r["model_version_id"], r["requests"]) for r in rows), key=lambda r: (-r[1], -r[0]))


def prediction_log_inputs(*, endpoint: Endpoint, since: datetime, until: datetime,
                          limit: int = MAX_LOGGED_INSTANCES) -> list[dict]:
    """The instances the endpoint received in ``[since, until)``, oldest
    first, at most ``limit`` of them: every logged request counts, answered
    or not (an invalid request's inputs are a drift signal too), but only
    instances that are JSON objects. Streams the rows on the
    ``(endpoint, created_at)`` index so a large window costs no more memory
    than its ``limit`` instances."""
    instances: list[dict] = []
    rows = (_window_logs(endpoint=endpoint, since=since, until=until).order_by("created_at", "id")
            .values_list("inputs", flat=True))
    for inputs in rows.iterator(chunk_size=500):
        for instance in inputs if isinstance(inputs, list) else ():
            if isinstance(instance, dict):
                instances.append(instance)
                if len(instances) >= limit:
                    return instances
    return instances
