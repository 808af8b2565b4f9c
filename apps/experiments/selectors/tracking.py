"""Reads of experiment tracking: experiments, runs with their params, latest
metrics and tags, artifacts and metric histories. Everything is scoped to
what the user may view (runs through their experiment)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm, require_perm
from apps.experiments.choices import TERMINAL_RUN_STATUSES, RunStatus
from apps.experiments.downsample import downsample
from apps.experiments.models import Artifact, Experiment, LatestMetric, Metric, Param, Run, RunTag, TrainingJob

# Histories up to this size are read point by point (two numeric columns) and
# downsampled exactly; longer ones are first reduced in SQL to the minimum and
# maximum of each of ``4 * max_points`` step buckets, so the database sends a
# few thousand rows instead of millions.
HISTORY_EXACT_LIMIT = 200_000
HISTORY_MAX_POINTS = 20_000
HISTORY_CACHE_SECONDS = 24 * 3600


# --- Experiments --------------------------------------------------------------------

def experiment_list(*, user, perm: str | None = None) -> QuerySet:
    """Experiments the user may view (or do ``perm`` on, e.g.
    ``experiments.change_experiment`` for those they may train in)."""
    qs = Experiment.objects.select_related("owner").annotate(run_count=Count("runs"))
    return filter_visible(user, qs, perm)


def experiment_get(*, user, pk) -> Experiment:
    try:
        experiment = Experiment.objects.select_related("owner").annotate(run_count=Count("runs")).get(pk=pk)
    except (Experiment.DoesNotExist, ValueError, TypeError):
        raise NotFound("Experiment not found.")
    require_perm(user, "experiments.view_experiment", experiment)
    return experiment


def experiment_get_by_name(*, user, name: str) -> Experiment:
    experiment = Experiment.objects.select_related("owner").filter(name=name).first()
    if experiment is None:
        raise NotFound(f"No experiment named {name!r}.")
    require_perm(user, "experiments.view_experiment", experiment)
    return experiment


def visible_experiment_ids(*, user, ids=None) -> list[int]:
    """Ids of the experiments the user may view, among ``ids`` if given."""
    qs = Experiment.objects.all()
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return list(filter_visible(user, qs).values_list("pk", flat=True))


# --- Runs ---------------------------------------------------------------------------

def run_list(*, user, experiment_id=None) -> QuerySet:
    qs = with_summary(Run.objects.select_related("user")).order_by("-start_time", "-id")
    if experiment_id is not None:
        qs = qs.filter(experiment_id=experiment_id)
    return filter_visible(user, qs, via="experiment")


def run_get(*, user, pk, perm: str = "experiments.view_experiment") -> Run:
    """One run with its details, or 404 when the user may not see it."""
    try:
        run = with_summary(Run.objects.select_related("experiment", "user", "dataset_version")).get(pk=pk)
    except (Run.DoesNotExist, ValueError, TypeError):
        raise NotFound("Run not found.")
    if not has_perm(user, "experiments.view_experiment", run.experiment):
        raise NotFound("Run not found.")
    if perm != "experiments.view_experiment":
        require_perm(user, perm, run.experiment)
    attach_details([run])
    return run


def run_list_by_ids(*, user, ids: list[int]) -> list[Run]:
    """The runs of ``ids`` the user may see, in the order of ``ids``, with
    their summary and details (unknown and hidden ids are left out)."""
    qs = with_summary(Run.objects.filter(pk__in=ids).select_related("user", "experiment"))
    runs = list(filter_visible(user, qs, via="experiment"))
    order = {pk: index for index, pk in enumerate(ids)}
    runs.sort(key=lambda run: order[run.pk])
    return attach_details(runs)


def with_summary(qs: QuerySet) -> QuerySet:
    """Annotate runs with ``artifact_count`` and ``training_job_id``. They
    are correlated subqueries, which PostgreSQL evaluates only for the rows
    that survive the sort and limit of a page."""
    artifacts = (Artifact.objects.filter(run_id=OuterRef("pk")).order_by().values("run_id")
                 .annotate(n=Count("id")).values("n")[:1])
    job = TrainingJob.objects.filter(run_id=OuterRef("pk")).values("pk")[:1]
    return qs.annotate(artifact_count=Coalesce(Subquery(artifacts), 0), training_job_id=Subquery(job))


def attach_details(runs: list[Run]) -> list[Run]:
    """Give each run ``param_map``, ``metric_map`` (latest values) and
    ``tag_map``, and ``artifact_count`` and ``training_job_id`` unless
    ``with_summary`` annotated them, in one query for any number of runs."""
    ids = [run.pk for run in runs]
    maps = {"p": defaultdict(dict), "m": defaultdict(dict), "t": defaultdict(dict)}
    summarise = any(not hasattr(run, "artifact_count") for run in runs)
    counts, jobs = {}, {}
    if ids:
        sql, params = _details_sql(ids, summarise=summarise)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for kind, run_id, key, text, number, whole in cursor.fetchall():
                if kind == "a":
                    counts[run_id] = whole
                elif kind == "j":
                    jobs[run_id] = whole
                else:
                    maps[kind][run_id][key] = number if kind == "m" else text
    for run in runs:
        run.param_map = dict(sorted(maps["p"][run.pk].items()))
        run.metric_map = dict(sorted(maps["m"][run.pk].items()))
        run.tag_map = dict(sorted(maps["t"][run.pk].items()))
        if not hasattr(run, "artifact_count"):
            run.artifact_count = counts.get(run.pk, 0)
            run.training_job_id = jobs.get(run.pk)
    return runs


def _details_sql(ids: list[int], *, summarise: bool) -> tuple[str, list]:
    """One ``UNION ALL`` of (kind, run, key, text, number, whole) rows:
    params (p), latest metrics (m), tags (t) and, with ``summarise``,
    artifact counts (a) and training jobs (j) of the runs ``ids``. Written
    as SQL because the ORM's union of five querysets costs more Python than
    the database takes to answer, and on PostgreSQL the ids travel as one
    array parameter. Only model table and column names are interpolated."""
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        match, match_params = "= ANY(%s)", [list(ids)]
    else:
        match, match_params = f"IN ({', '.join(['%s'] * len(ids))})", list(ids)
    no_text, no_number, no_whole = "CAST(NULL AS TEXT)", "CAST(NULL AS DOUBLE PRECISION)", "CAST(NULL AS BIGINT)"
    parts = [
        f"SELECT 'p', run_id, {quote('key')}, value, {no_number}, {no_whole} FROM {quote(Param._meta.db_table)} "
        f"WHERE run_id {match}",
        f"SELECT 'm', run_id, {quote('key')}, {no_text}, value, {no_whole} FROM {quote(LatestMetric._meta.db_table)} "
        f"WHERE run_id {match}",
        f"SELECT 't', run_id, {quote('key')}, value, {no_number}, {no_whole} FROM {quote(RunTag._meta.db_table)} "
        f"WHERE run_id {match}",
    ]
    if summarise:
        parts += [
            f"SELECT 'a', run_id, {no_text}, {no_text}, {no_number}, COUNT(*) FROM {quote(Artifact._meta.db_table)} "
            f"WHERE run_id {match} GROUP BY run_id",
            f"SELECT 'j', run_id, {no_text}, {no_text}, {no_number}, id FROM {quote(TrainingJob._meta.db_table)} "
            f"WHERE run_id {match}",
        ]
    return " UNION ALL ".join(parts), match_params * len(parts)


def run_children(*, run: Run) -> list[Run]:
    return attach_details(list(with_summary(run.children.select_related("user")).order_by("id")))


# --- Artifacts ----------------------------------------------------------------------

def artifact_list(*, run: Run) -> QuerySet:
    return Artifact.objects.filter(run=run).order_by("path")


def artifact_get(*, run: Run, path: str) -> Artifact:
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        raise NotFound(f"Run {run.pk} has no artifact at {path!r}.", details={"path": path})
    return artifact


# --- Metric history -----------------------------------------------------------------

def metric_keys(*, run: Run) -> list[str]:
    return list(LatestMetric.objects.filter(run=run).order_by("key").values_list("key", flat=True))


def metric_keys_with_history(*, runs) -> list[str]:
    """The metric keys, sorted, that ``runs`` logged beyond step 0 (the ones
    worth a history chart). ``runs`` were read through a selector."""
    return sorted(set(LatestMetric.objects.filter(run__in=runs, step__gt=0).values_list("key", flat=True)))


def metric_key_run_counts(*, runs, keys: list[str]) -> dict[str, int]:
    """How many of ``runs`` logged each of ``keys`` (``runs`` were read
    through a selector): the compare page picks the curve most runs have."""
    return dict(LatestMetric.objects.filter(run__in=runs, key__in=keys).values_list("key")
                .annotate(count=Count("run_id", distinct=True)).order_by())


def metric_history(*, run: Run, key: str, max_points: int | None = None) -> dict:
    """The history of one metric, oldest step first, as
    ``{"key", "points": [{"step", "value", "timestamp"}], "total", "downsampled"}``.

    With ``max_points`` below the number of points, the series is reduced with
    LTTB (first, last and global extremes kept). Reads stay cheap for long
    histories: numeric columns only, and above ``HISTORY_EXACT_LIMIT`` points
    a min/max-per-bucket aggregation in SQL first."""
    if max_points is not None:
        max_points = max(3, min(int(max_points), HISTORY_MAX_POINTS))
    # An ended run accepts no more metrics, so its downsampled histories can
    # be kept: the first chart of a million points costs a scan, later ones
    # nothing.
    cache_key = f"metric-history:v1:{run.pk}:{max_points}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"
    cacheable = run.status in TERMINAL_RUN_STATUSES and max_points is not None
    if cacheable:
        cached = cache.get(cache_key)
        if cached is not None:
            return cached
    result = _metric_history(run=run, key=key, max_points=max_points)
    if cacheable and result["downsampled"]:
        cache.set(cache_key, result, timeout=HISTORY_CACHE_SECONDS)
    return result


def _metric_history(*, run: Run, key: str, max_points: int | None) -> dict:
    history = Metric.objects.filter(run_id=run.pk, key=key)
    ordered = history.order_by("step", "timestamp", "id")
    missing = NotFound(f"Run {run.pk} has no metric {key!r}.", details={"key": key})
    if max_points is None:
        points = [{"step": s, "value": v, "timestamp": t} for s, v, t in
                  ordered.values_list("step", "value", "timestamp").iterator(chunk_size=10_000)]
        if not points:
            raise missing
        return {"key": key, "points": points, "total": len(points), "downsampled": False, "method": "none"}
    # Both ends come from the (run, key, step) index; the bucket query then
    # counts the points on the way, so a long history is scanned once.
    bounds = history.aggregate(lo=Min("step"), hi=Max("step"))
    if bounds["lo"] is None:
        raise missing
    buckets = _buckets(history, lo=bounds["lo"], hi=bounds["hi"], count=4 * max_points)
    total = sum(row[-1] for row in buckets)
    if total <= max_points:
        points = [{"step": s, "value": v, "timestamp": t} for s, v, t in
                  ordered.values_list("step", "value", "timestamp")]
        return {"key": key, "points": points, "total": total, "downsampled": False, "method": "none"}
    if total <= HISTORY_EXACT_LIMIT:
        rows = list(ordered.values_list("step", "value", "id").iterator(chunk_size=10_000))
        data = np.array(rows, dtype=np.float64)
        # Several points may share a step; LTTB needs increasing x, so use
        # the position in the ordered history and report the real step.
        chosen = downsample(np.arange(len(data)), data[:, 1], max_points)
        ids = [int(data[i, 2]) for i in chosen]
        stamps = dict(Metric.objects.filter(pk__in=ids).values_list("pk", "timestamp"))
        points = [{"step": int(data[i, 0]), "value": float(data[i, 1]), "timestamp": stamps[int(data[i, 2])]}
                  for i in chosen]
        return {"key": key, "points": points, "total": total, "downsampled": True, "method": "lttb"}
    return _aggregated_history(history, buckets, key=key, total=total, max_points=max_points)


def _buckets(history: QuerySet, *, lo: int, hi: int, count: int) -> list[tuple]:
    """(smin, smax, vmin, vmax, tmax, n) per step bucket, ``count`` buckets
    of equal step width over [lo, hi], in step order."""
    width = max(1, -(-(hi - lo + 1) // count))  # ceiling division
    bucket = ExpressionWrapper((F("step") - Value(lo)) / Value(width), output_field=BigIntegerField())
    return list(history.annotate(bucket=bucket).values("bucket").order_by("bucket").annotate(
        vmin=Min("value"), vmax=Max("value"), smin=Min("step"), smax=Max("step"), tmax=Max("timestamp"),
        n=Count("id"),
    ).values_list("smin", "smax", "vmin", "vmax", "tmax", "n"))


def _aggregated_history(history: QuerySet, buckets: list[tuple], *, key: str, total: int, max_points: int) -> dict:
    """LTTB over the minimum and maximum of each step bucket (an M4-style
    reduction done in SQL). Both points of a bucket are placed at its middle
    step; a bucket is a quarter of a final point's width, so the shift does
    not show in a chart. The first and last points are exact. (A history
    logged at very few distinct steps gets one bucket per step.)"""
    first = history.order_by("step", "timestamp", "id").values_list("step", "value", "timestamp").first()
    last = history.order_by("-step", "-timestamp", "-id").values_list("step", "value", "timestamp").first()
    candidates = [first]
    for smin, smax, vmin, vmax, tmax, _ in buckets:
        middle = (smin + smax) // 2
        candidates.append((middle, vmin, tmax))
        if vmax != vmin:
            candidates.append((middle, vmax, tmax))
    candidates.append(last)
    values = np.array([c[1] for c in candidates], dtype=np.float64)
    chosen = downsample(np.arange(len(candidates)), values, max_points)
    points = [{"step": int(candidates[i][0]), "value": float(candidates[i][1]), "timestamp": candidates[i][2]}
              for i in chosen]
    return {"key": key, "points": points, "total": total, "downsampled": True, "method": "minmax+lttb"}


# --- Dashboard ------------------------------------------------------------------------

def overview_card(*, user) -> dict | None:
    """The experiments card on the overview page, or None for a user who
    may not see experiments."""
    if not has_perm(user, "experiments.view_experiment"):
        return None
    from django.urls import reverse

    experiments = filter_visible(user, Experiment.objects.all())
    runs = Run.objects.filter(experiment__in=experiments.values("pk"))
    jobs = TrainingJob.objects.filter(run__experiment__in=experiments.values("pk"), parent__isnull=True)
    by_status = dict(runs.values("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "title": "Experiments",
        "url": reverse("experiments:list"),
        "stats": [
            ("Experiments", experiments.count()),
            ("Runs", sum(by_status.values())),
            ("Running", by_status.get(RunStatus.RUNNING, 0) + by_status.get(RunStatus.QUEUED, 0)),
            ("Finished", by_status.get(RunStatus.FINISHED, 0)),
            ("Training jobs", jobs.count()),
        ],
    }


__all__ = [
    "HISTORY_EXACT_LIMIT",
    "artifact_get",
    "artifact_list",
    "attach_details",
    "experiment_get",
    "experiment_get_by_name",
    "experiment_list",
    "metric_history",
    "metric_keys",
    "metric_keys_with_history",
    "overview_card",
    "run_children",
    "run_get",
    "run_list",
    "run_list_by_ids",
    "visible_experiment_ids",
    "with_summary",
]
