"""Logging into a run: ``run_log_batch`` writes params (write-once), metrics
(append-only history plus each key's latest value) and tags.

This is the hot path (the Python client and training jobs send every metric
through it): it validates in plain Python before touching the database, then
writes the whole batch in one transaction with a handful of statements."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidState, ValidationFailed
from apps.experiments.choices import TERMINAL_RUN_STATUSES
from apps.experiments.models import LatestMetric, Metric, Param, RunTag
from apps.experiments.services.runs import lock_run_for_write
from apps.experiments.services.validation import (
    INT64,
    MAX_EPOCH_MS,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    check_key,
    invalid_item,
    param_text,
    parse_time,
    tag_text,
)


@dataclass(frozen=True)
class BatchResult:
    metrics: int
    params: int
    tags: int

    def as_dict(self) -> dict:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}


def _validate_batch(metrics, params, tags, *, now: datetime):
    """Check every item; return rows ready to write. The first bad item
    rejects the batch, named by its position (``metrics[17]``)."""
    for name, items, limit in (("metrics", metrics, MAX_METRICS_PER_BATCH),
                               ("params", params, MAX_PARAMS_PER_BATCH),
                               ("tags", tags, MAX_TAGS_PER_BATCH)):
        if not isinstance(items, (list, tuple)):
            raise ValidationFailed(f"{name} must be a list.", details={"item": name})
        if len(items) > limit:
            raise ValidationFailed(f"At most {limit} {name} per batch (got {len(items)}).",
                                   details={"item": name, "limit": limit, "count": len(items)})

    good_keys: set[str] = set()
    metric_rows = []
    for index, entry in enumerate(metrics):
        item = f"metrics[{index}]"
        if type(entry) is not dict:
            raise invalid_item(item, "expected an object with key, value, step and timestamp")
        key = entry.get("key")
        if type(key) is not str or key not in good_keys:
            check_key(key, item)
            good_keys.add(key)
        value = entry.get("value")
        value_type = type(value)
        if value_type is not float and value_type is not int:
            raise invalid_item(item, "value must be a number", field="value")
        if value_type is float and not math.isfinite(value):
            # Refused rather than stored: NaN/inf cannot be sorted or charted
            # meaningfully, and JSON has no way to send them back.
            raise invalid_item(item, "value must be finite (NaN and infinity are refused)", field="value",
                           reason="non_finite")
        if value_type is int and not -INT64 <= value < INT64:
            raise invalid_item(item, "value out of range", field="value")
        step = entry.get("step", 0)
        if step is None:
            step = 0
        if type(step) is not int or not -INT64 <= step < INT64:
            raise invalid_item(item, "step must be a whole number", field="step")
        stamp = entry.get("timestamp")
        if stamp is None:
            moment = now
        elif type(stamp) is int and 0 <= stamp < MAX_EPOCH_MS:
            moment = datetime.fromtimestamp(stamp / 1000.0, tz=UTC)  # the common case, inlined
        else:
            moment = parse_time(stamp, item=f"{item}.timestamp")
        metric_rows.append((key, float(value), step, moment))

    param_rows: dict[str, str] = {}
    for index, entry in enumerate(params):
        item = f"params[{index}]"
        if type(entry) is not dict:
            raise invalid_item(item, "expected an object with key and value")
        key = check_key(entry.get("key"), item)
        if "value" not in entry:
            raise invalid_item(item, "value is required", field="value")
        text = param_text(entry.get("value"), item)
        if key in param_rows and param_rows[key] != text:
            raise invalid_item(item, f"param {key!r} appears twice in the batch with different values", key=key)
        param_rows[key] = text

    tag_rows: dict[str, str] = {}
    for index, entry in enumerate(tags):
        item = f"tags[{index}]"
        if type(entry) is not dict:
            raise invalid_item(item, "expected an object with key and value")
        key = check_key(entry.get("key"), item)
        tag_rows[key] = tag_text(entry.get("value", ""), item)  # the last value of a key wins
    return metric_rows, param_rows, tag_rows


def run_log_batch(*, actor, run_id: int, metrics: Iterable = (), params: Iterable = (),
                  tags: Iterable = ()) -> BatchResult:
    """Log up to 1000 metrics, 100 params and 100 tags, all or nothing.

    Params are write-once: the same value again is accepted, another value is
    a 409 naming the key. Metrics append to the history and move the latest
    value of their key forward (highest step, then newest timestamp). Tags
    overwrite. Metrics and params need an active run; tags may be set on a
    finished run too."""
    metric_rows, param_rows, tag_rows = _validate_batch(list(metrics), list(params), list(tags),
                                                        now=timezone.now())
    with transaction.atomic():
        run = lock_run_for_write(actor=actor, run_id=run_id)
        if (metric_rows or param_rows) and run.status in TERMINAL_RUN_STATUSES:
            raise InvalidState(f"Run {run.pk} is {run.status}; it accepts no more metrics or params.",
                               details={"status": run.status})
        if param_rows:
            existing = dict(Param.objects.filter(run_id=run.pk, key__in=list(param_rows))
                            .values_list("key", "value"))
            for index, (key, text) in enumerate(param_rows.items()):
                if key in existing and existing[key] != text:
                    raise Conflict(
                        f"Param {key!r} is already {existing[key][:100]!r}; params are write-once.",
                        code="param_conflict",
                        details={"item": f"params[{index}]", "key": key, "existing": existing[key][:1000],
                                 "new": text[:1000]},
                    )
            new_params = [Param(run_id=run.pk, experiment_id=run.experiment_id, key=k, value=v)
                          for k, v in param_rows.items() if k not in existing]
            if new_params:
                Param.objects.bulk_create(new_params)
        if metric_rows:
            _write_metrics(run.pk, metric_rows, experiment_id=run.experiment_id)
        if tag_rows:
            RunTag.objects.bulk_create(
                [RunTag(run_id=run.pk, experiment_id=run.experiment_id, key=k, value=v) for k, v in tag_rows.items()],
                update_conflicts=True, unique_fields=["run", "key"], update_fields=["value"],
            )
    return BatchResult(metrics=len(metric_rows), params=len(param_rows), tags=len(tag_rows))


def _write_metrics(run_id: int, rows: list[tuple], *, experiment_id: int) -> None:
    """Append history rows and move each key's latest value: one insert for
    the history, one read, at most one insert and one update for the latest
    values. The caller holds the run's row lock, so no other batch of this
    run interleaves."""
    _append_history(run_id, rows)
    newest: dict[str, tuple] = {}
    for row in rows:
        current = newest.get(row[0])
        if current is None or (row[2], row[3]) >= (current[2], current[3]):
            newest[row[0]] = row
    existing = {lm.key: lm for lm in LatestMetric.objects.filter(run_id=run_id, key__in=list(newest))}
    to_create, to_update = [], []
    for key, (_, value, step, moment) in newest.items():
        latest = existing.get(key)
        if latest is None:
            to_create.append(LatestMetric(run_id=run_id, experiment_id=experiment_id, key=key, value=value, step=step,
                                          timestamp=moment))
        elif (step, moment) >= (latest.step, latest.timestamp) and (
                latest.value, latest.step, latest.timestamp) != (value, step, moment):
            latest.value, latest.step, latest.timestamp = value, step, moment
            to_update.append(latest)
    if to_create:
        LatestMetric.objects.bulk_create(to_create)
    if to_update:
        LatestMetric.objects.bulk_update(to_update, ["value", "step", "timestamp"])


def _append_history(run_id: int, rows: list[tuple]) -> None:
    """Insert metric history rows. On PostgreSQL through COPY: building a
    thousand model instances and an INSERT for them costs ten times more than
    storing them, and this is the call every training loop makes. The
    statement names only the model's own table and columns."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        Metric.objects.bulk_create(
            [Metric(run_id=run_id, key=key, value=value, step=step, timestamp=moment)
             for key, value, step, moment in rows],
            batch_size=MAX_METRICS_PER_BATCH,
        )
        return
    from psycopg import sql

    columns = [Metric._meta.get_field(name).column for name in ("run", "key", "value", "step", "timestamp")]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(Metric._meta.db_table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    # COPY's text format, written in one piece. Keys match KEY_RE (no tab,
    # newline or backslash), floats print as PostgreSQL reads them, and
    # times are ISO 8601 with their offset.
    data = "".join([f"{run_id}\t{key}\t{value!r}\t{step}\t{moment.isoformat()}\n"
                    for key, value, step, moment in rows])
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.write(data)


__all__ = [
    "BatchResult",
    "run_log_batch",
]
