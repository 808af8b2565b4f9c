"""Keeping the metric series up to date from the prediction log.

``metric_series_update`` reads the log rows past its watermark (by id) and
the feedback joined since its feedback watermark (by join time), through
serving's ``logfeed`` selectors, adds them to their minute, hour and day
points, moves both watermarks, and commits all of it in one transaction with
the watermark row locked: two workers never read the same row, and a run
that dies before its commit leaves nothing behind, so a retry reads the same
rows again and counts them once.

Each row goes to its minute, hour and day points in the same pass (rather
than hours being summed from minutes later): the three stay equal to the
sums below them, feedback that arrives days later still reaches the hour
and day of its prediction, and minute points can be pruned after 14 days
without touching the hours.

Rows whose transaction committed late: ids are handed out before commit, so
a writer can commit rows with lower ids after a reader passed them. The
update reads past a gap in the ids only once the row after the gap is older
than ``SETTLE_SECONDS``; feedback is read up to ``SETTLE_SECONDS`` ago.

Platform housekeeping (no actor, no audit event), like the log prune.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.monitoring.choices import Granularity
from apps.monitoring.models import MetricSeriesPoint, MetricSeriesWatermark
from apps.monitoring.series import buckets
from apps.serving import logfeed

WATERMARK = "metric_series"
BATCH_SIZE = 5000
MAX_BATCHES = 20
SETTLE_SECONDS = 60


def bucket_start(moment: datetime, granularity: str) -> datetime:
    """``moment`` truncated to its minute, hour or day (UTC)."""
    moment = moment.astimezone(UTC)
    if granularity == Granularity.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity == Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Delta:
    """What one batch adds to one point."""

    COUNTERS = ("requests", "successes", "invalid", "errors", "instances", "confidence_count", "judged", "correct",
                "scored")
    SUMS = ("latency_sum_ms", "prediction_sum", "confidence_sum", "abs_error_sum", "squared_error_sum")

    def __init__(self, endpoint_id: int):
        self.endpoint_id = endpoint_id
        self.values = dict.fromkeys(self.COUNTERS, 0) | dict.fromkeys(self.SUMS, 0.0)
        self.latency_counts: list[int] = []
        self.prediction_counts: list[int] = []
        self.class_counts: dict[str, int] = {}

    def add_request(self, status_code: int, latency_ms: float, predictions, probabilities) -> None:
        v = self.values
        v["requests"] += 1
        if status_code >= 500:
            v["errors"] += 1
            return
        if status_code >= 400:
            v["invalid"] += 1
            return
        v["successes"] += 1
        if not self.latency_counts:
            self.latency_counts = buckets.empty_counts(buckets.LATENCY_EDGES_MS)
        self.latency_counts[buckets.bucket_index(buckets.LATENCY_EDGES_MS, max(0.0, float(latency_ms)))] += 1
        v["latency_sum_ms"] += float(latency_ms)
        for index, predicted in enumerate(predictions if isinstance(predictions, list) else ()):
            v["instances"] += 1
            probs = probabilities[index] if isinstance(probabilities, list) and index < len(probabilities) else None
            if probabilities is None and _is_number(predicted):
                if not self.prediction_counts:
                    self.prediction_counts = buckets.empty_counts(buckets.PREDICTION_EDGES)
                self.prediction_counts[buckets.bucket_index(buckets.PREDICTION_EDGES, float(predicted))] += 1
                v["prediction_sum"] += float(predicted)
            else:
                key = str(predicted)
                self.class_counts[key] = self.class_counts.get(key, 0) + 1
            if isinstance(probs, dict) and probs:
                v["confidence_count"] += 1
                v["confidence_sum"] += max(float(p) for p in probs.values())

    def add_feedback(self, correct, abs_error) -> None:
        v = self.values
        if correct is not None:
            v["judged"] += 1
            v["correct"] += 1 if correct else 0
        if abs_error is not None:
            v["scored"] += 1
            v["abs_error_sum"] += float(abs_error)
            v["squared_error_sum"] += float(abs_error) ** 2

    def apply_to(self, point: MetricSeriesPoint) -> None:
        for name, value in self.values.items():
            setattr(point, name, getattr(point, name) + value)
        if self.latency_counts:
            point.latency_counts = buckets.merge_counts(list(point.latency_counts or []), self.latency_counts)
        if self.prediction_counts:
            point.prediction_counts = buckets.merge_counts(list(point.prediction_counts or []),
                                                           self.prediction_counts)
        if self.class_counts:
            merged = dict(point.class_counts or {})
            for key, count in self.class_counts.items():
                merged[key] = merged.get(key, 0) + count
            point.class_counts = merged


class _Batch:
    """Deltas keyed by ``(granularity, bucket_start, deployment_id)``."""

    def __init__(self):
        self.deltas: dict[tuple[str, datetime, int], _Delta] = {}

    def deltas_for(self, *, endpoint_id: int, deployment_id: int, moment: datetime):
        for granularity in Granularity.values:
            key = (granularity, bucket_start(moment, granularity), deployment_id)
            if key not in self.deltas:
                self.deltas[key] = _Delta(endpoint_id)
            yield self.deltas[key]

    def write(self) -> int:
        """Add every delta to its point (created when missing). The caller
        holds the watermark lock, so no other writer races the creates."""
        written = 0
        for granularity in Granularity.values:
            keys = {key: delta for key, delta in self.deltas.items() if key[0] == granularity}
            if not keys:
                continue
            existing = {(p.granularity, p.bucket_start, p.deployment_id): p
                        for p in MetricSeriesPoint.objects.select_for_update().filter(
                            granularity=granularity, deployment_id__in={k[2] for k in keys},
                            bucket_start__in={k[1] for k in keys})}
            created, updated = [], []
            for key, delta in keys.items():
                point = existing.get(key)
                if point is None:
                    point = MetricSeriesPoint(granularity=granularity, bucket_start=key[1], deployment_id=key[2],
                                              endpoint_id=delta.endpoint_id)
                    created.append(point)
                else:
                    updated.append(point)
                delta.apply_to(point)
            MetricSeriesPoint.objects.bulk_create(created)
            if updated:
                now = timezone.now()
                for point in updated:
                    point.updated_at = now
                MetricSeriesPoint.objects.bulk_update(
                    updated, [*_Delta.COUNTERS, *_Delta.SUMS, "latency_counts", "prediction_counts", "class_counts",
                              "updated_at"])
            written += len(created) + len(updated)
        return written


def _settled_rows(rows: list[tuple], *, after_id: int, settled_before: datetime) -> list[tuple]:
    """The rows up to the first gap in ids whose next row is not settled yet
    (a fresh watermark, 0, starts at the first row)."""
    taken, last = [], after_id or (rows[0][0] - 1 if rows else 0)
    for row in rows:
        pk, created_at = row[0], row[3]
        if pk != last + 1 and created_at > settled_before:
            break
        taken.append(row)
        last = pk
    return taken


def _watermark(*, lock: bool) -> MetricSeriesWatermark:
    MetricSeriesWatermark.objects.get_or_create(name=WATERMARK)
    rows = MetricSeriesWatermark.objects.filter(name=WATERMARK)
    return (rows.select_for_update() if lock else rows).get()


def metric_series_update_batch(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict:
    """Read one batch of log rows (and the feedback joined since the last
    run), add them to the series and move the watermarks, atomically."""
    now = now or timezone.now()
    settled_before = now - timedelta(seconds=SETTLE_SECONDS)
    with transaction.atomic():
        mark = _watermark(lock=True)
        rows = _settled_rows(logfeed.prediction_log_after(after_id=mark.prediction_id, limit=batch_size),
                             after_id=mark.prediction_id, settled_before=settled_before)
        batch = _Batch()
        for _pk, endpoint_id, deployment_id, created_at, status_code, latency, predictions, probabilities in rows:
            for delta in batch.deltas_for(endpoint_id=endpoint_id, deployment_id=deployment_id, moment=created_at):
                delta.add_request(status_code, latency, predictions, probabilities)
        feedback = []
        if mark.feedback_joined_until is None or mark.feedback_joined_until < settled_before:
            feedback = logfeed.feedback_joined_between(after=mark.feedback_joined_until, until=settled_before)
            for _pk, endpoint_id, deployment_id, predicted_at, correct, abs_error, _joined in feedback:
                for delta in batch.deltas_for(endpoint_id=endpoint_id, deployment_id=deployment_id,
                                              moment=predicted_at):
                    delta.add_feedback(correct, abs_error)
            mark.feedback_joined_until = settled_before
        points = batch.write()
        if rows:
            mark.prediction_id = rows[-1][0]
        mark.save(update_fields=["prediction_id", "feedback_joined_until", "updated_at"])
    return {"predictions": len(rows), "feedback": len(feedback), "points": points,
            "more": len(rows) == batch_size}


def _retention_days() -> dict[str, int | None]:
    return {Granularity.MINUTE: settings.MONITORING_RETENTION_MINUTE_DAYS,
            Granularity.HOUR: settings.MONITORING_RETENTION_HOUR_DAYS,
            Granularity.DAY: settings.MONITORING_RETENTION_DAY_DAYS}


def metric_series_prune(*, now: datetime | None = None) -> int:
    """Delete points older than their granularity's retention
    (``MONITORING_RETENTION_{MINUTE,HOUR,DAY}_DAYS``: 14, 400, None = forever)."""
    now = now or timezone.now()
    deleted = 0
    for granularity, days in _retention_days().items():
        if days:
            count, _ = MetricSeriesPoint.objects.filter(granularity=granularity,
                                                        bucket_start__lt=now - timedelta(days=days)).delete()
            deleted += count
    return deleted


def metric_series_update(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict:
    """The beat entry's work: batches until the log is read (at most
    ``MAX_BATCHES``, the next run continues), then the retention prune."""
    totals = {"predictions": 0, "feedback": 0, "points": 0}
    for _ in range(MAX_BATCHES):
        outcome = metric_series_update_batch(now=now, batch_size=batch_size)
        for key in totals:
            totals[key] += outcome[key]
        if not outcome["more"]:
            break
    totals["pruned"] = metric_series_prune(now=now)
    return totals


def metric_series_prune_limit() -> int:
    """The serving prune guard: log rows with an id below this were added to
    the series, and so was the feedback joined to them."""
    mark = MetricSeriesWatermark.objects.filter(name=WATERMARK).first()
    after_id = mark.prediction_id if mark else 0
    limit = logfeed.prediction_log_first_id_after(after_id=after_id) or after_id + 1
    waiting = logfeed.feedback_first_prediction_joined_after(after=mark.feedback_joined_until if mark else None)
    return min(limit, waiting) if waiting is not None else limit


__all__ = ["bucket_start", "metric_series_prune", "metric_series_prune_limit", "metric_series_update",
           "metric_series_update_batch"]
