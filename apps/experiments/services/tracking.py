"""Writes of experiment tracking: experiments, runs, params, metrics, tags and
artifacts.

Runs are children of experiments: reading one needs ``view_experiment`` on
its experiment, starting one needs ``change_experiment``. Writing to a run
(log batches, artifacts, finish, rename) is for its owner, or someone holding
``change_run`` on that run: a colleague who may change the experiment still
cannot write into another person's run. ``run_log_batch`` is the
hot path (the Python client and training jobs send every metric through it):
it validates in plain Python before touching the database, then writes the
whole batch in one transaction with a handful of statements.
"""

from __future__ import annotations

import math
import mimetypes
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.core import events
from apps.core.errors import Conflict, InvalidState, NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from apps.core.permissions import grant, grant_on_create, has_perm, require_perm
from apps.core.services import audit_record, snapshot
from apps.core.storage import delete_quietly, store_file
from apps.experiments.choices import TERMINAL_RUN_STATUSES, JobStatus, RunStatus
from apps.experiments.models import (
    PARAM_VALUE_MAX_LENGTH,
    TAG_VALUE_MAX_LENGTH,
    Artifact,
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunTag,
    TrainingJob,
)

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_EXPERIMENT_TAGS = 100
# MLflow's rule for metric, param and tag names, so that names move between the two.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-. :/]{1,250}$")
_INT64 = 2**63
_MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
RUN_FIELDS = ["name", "status", "status_reason", "experiment", "parent", "dataset_version", "start_time",
              "end_time"]


# --- Validation helpers -------------------------------------------------------------

def _invalid(item: str, message: str, **details) -> ValidationFailed:
    return ValidationFailed(f"{item}: {message}", details={"item": item, **details})


def parse_time(value, *, item: str = "timestamp") -> datetime:
    """A time given as milliseconds since the Unix epoch (a number) or an ISO
    8601 string (UTC when it carries no offset)."""
    if isinstance(value, bool):
        raise _invalid(item, "expected milliseconds since the epoch or an ISO 8601 time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise _invalid(item, "time must be finite")
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _invalid(item, "time out of range")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _invalid(item, f"{value[:40]!r} is not an ISO 8601 time")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise _invalid(item, "expected milliseconds since the epoch or an ISO 8601 time")


def _check_key(key, item: str) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise _invalid(item, "key must be 1-250 characters of letters, digits, '_', '-', '.', ' ', ':' or '/'",
                       field="key")
    return key


def _param_text(value, item: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        # What MLflow's client stores for a non-string param: str(value).
        text = str(value)
    else:
        raise _invalid(item, "value must be a string, number, boolean or null", field="value")
    if len(text) > PARAM_VALUE_MAX_LENGTH:
        raise _invalid(item, f"value is longer than {PARAM_VALUE_MAX_LENGTH} characters", field="value")
    return text


def _tag_text(value, item: str) -> str:
    if isinstance(value, (bool, int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise _invalid(item, "value must be a string", field="value")
    if len(value) > TAG_VALUE_MAX_LENGTH:
        raise _invalid(item, f"value is longer than {TAG_VALUE_MAX_LENGTH} characters", field="value")
    return value


def _check_tags_mapping(tags, *, what: str = "tags") -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationFailed(f"{what} must be an object of key: value", details={"item": what})
    if len(tags) > MAX_TAGS_PER_BATCH:
        raise ValidationFailed(f"At most {MAX_TAGS_PER_BATCH} {what}.", details={"item": what})
    return {_check_key(k, f"{what}.{k}"): _tag_text(v, f"{what}.{k}") for k, v in tags.items()}


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
            raise _invalid(item, "expected an object with key, value, step and timestamp")
        key = entry.get("key")
        if type(key) is not str or key not in good_keys:
            _check_key(key, item)
            good_keys.add(key)
        value = entry.get("value")
        value_type = type(value)
        if value_type is not float and value_type is not int:
            raise _invalid(item, "value must be a number", field="value")
        if value_type is float and not math.isfinite(value):
            # Refused rather than stored: NaN/inf cannot be sorted or charted
            # meaningfully, and JSON has no way to send them back.
            raise _invalid(item, "value must be finite (NaN and infinity are refused)", field="value",
                           reason="non_finite")
        if value_type is int and not -_INT64 <= value < _INT64:
            raise _invalid(item, "value out of range", field="value")
        step = entry.get("step", 0)
        if step is None:
            step = 0
        if type(step) is not int or not -_INT64 <= step < _INT64:
            raise _invalid(item, "step must be a whole number", field="step")
        stamp = entry.get("timestamp")
        if stamp is None:
            moment = now
        elif type(stamp) is int and 0 <= stamp < _MAX_EPOCH_MS:
            moment = datetime.fromtimestamp(stamp / 1000.0, tz=UTC)  # the common case, inlined
        else:
            moment = parse_time(stamp, item=f"{item}.timestamp")
        metric_rows.append((key, float(value), step, moment))

    param_rows: dict[str, str] = {}
    for index, entry in enumerate(params):
        item = f"params[{index}]"
        if type(entry) is not dict:
            raise _invalid(item, "expected an object with key and value")
        key = _check_key(entry.get("key"), item)
        if "value" not in entry:
            raise _invalid(item, "value is required", field="value")
        text = _param_text(entry.get("value"), item)
        if key in param_rows and param_rows[key] != text:
            raise _invalid(item, f"param {key!r} appears twice in the batch with different values", key=key)
        param_rows[key] = text

    tag_rows: dict[str, str] = {}
    for index, entry in enumerate(tags):
        item = f"tags[{index}]"
        if type(entry) is not dict:
            raise _invalid(item, "expected an object with key and value")
        key = _check_key(entry.get("key"), item)
        tag_rows[key] = _tag_text(entry.get("value", ""), item)  # the last value of a key wins
    return metric_rows, param_rows, tag_rows


# --- Experiments --------------------------------------------------------------------

def experiment_create(*, user, name: str, description: str = "", tags: Mapping | None = None) -> Experiment:
    """A new experiment owned by ``user``; names are unique (409 otherwise)."""
    require_perm(user, "experiments.add_experiment")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("An experiment needs a name of 1-200 characters.",
                               details={"fields": {"name": ["1-200 characters."]}})
    tag_map = _check_tags_mapping(tags)
    if Experiment.objects.filter(name=name).exists():
        raise Conflict(f"An experiment named {name!r} already exists.", code="duplicate_name",
                       details={"name": name})
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(name=name, description=description or "", owner=user,
                                                   tags=tag_map)
            grant_on_create(experiment, owner=user)
            audit_record(actor=user, action="experiment.created", target=experiment,
                         after=snapshot(experiment, ["name", "description", "tags", "owner"]))
    except IntegrityError:
        raise Conflict(f"An experiment named {name!r} already exists.", code="duplicate_name",
                       details={"name": name})
    return experiment


def experiment_update(*, user, experiment: Experiment, description: str | None = None,
                      tags: Mapping | None = None) -> Experiment:
    """Change an experiment's description or replace its tags."""
    require_perm(user, "experiments.change_experiment", experiment)
    tag_map = _check_tags_mapping(tags) if tags is not None else None
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        before = snapshot(experiment, ["description", "tags"])
        if description is not None:
            experiment.description = description
        if tag_map is not None:
            experiment.tags = tag_map
        experiment.save(update_fields=["description", "tags", "updated_at"])
        audit_record(actor=user, action="experiment.updated", target=experiment, before=before,
                     after=snapshot(experiment, ["description", "tags"]))
    return experiment


# --- Runs ---------------------------------------------------------------------------

def run_create(*, user, experiment: Experiment, name: str = "", parent: Run | None = None,
               dataset_version=None, source_version: str = "", note: str = "", tags: Mapping | None = None,
               start_time=None, status: str = RunStatus.RUNNING) -> Run:
    """Start a run in ``experiment`` (``running`` unless told ``queued``)."""
    require_perm(user, "experiments.change_experiment", experiment)
    if status not in (RunStatus.RUNNING, RunStatus.QUEUED):
        raise ValidationFailed("A new run is running or queued.", details={"fields": {"status": [status]}})
    if len(name or "") > 250:
        raise ValidationFailed("A run name has at most 250 characters.", details={"fields": {"name": ["Too long."]}})
    if len(source_version or "") > 200:
        raise ValidationFailed("source_version has at most 200 characters.",
                               details={"fields": {"source_version": ["Too long."]}})
    if parent is not None and parent.experiment_id != experiment.pk:
        raise ValidationFailed("A nested run must be in its parent's experiment.",
                               details={"fields": {"parent_run_id": ["Belongs to another experiment."]}})
    if dataset_version is not None and not has_perm(user, "datasets.view_dataset", dataset_version.dataset):
        raise NotFound("Dataset version not found.")
    tag_map = _check_tags_mapping(tags)
    moment = timezone.now() if start_time in (None, "") else parse_time(start_time, item="start_time")
    with transaction.atomic():
        run = Run.objects.create(
            experiment=experiment, name=name or "", user=user, parent=parent, dataset_version=dataset_version,
            source_version=source_version or "", note=note or "", start_time=moment, status=status,
        )
        if tag_map:
            RunTag.objects.bulk_create([RunTag(run=run, experiment_id=run.experiment_id, key=k, value=v)
                                        for k, v in tag_map.items()])
        grant(run, perms=["change_run"], user=user)
        audit_record(actor=user, action="run.created", target=run, after=snapshot(run, RUN_FIELDS))
    return run


def require_run_write(user, run: Run) -> None:
    """Refuse unless ``user`` owns ``run`` or holds ``change_run`` on it (404
    when they may not even see its experiment). The owner's case costs no
    object-permission lookup: log-batch is the hot path."""
    if has_perm(user, "experiments.change_run", run, owner_id=run.user_id):
        return
    require_perm(user, "experiments.view_experiment", run.experiment)
    raise PermissionDenied("Only the run's owner, or someone they gave change_run on it, may write to it.",
                           code="not_run_owner", details={"permission": "experiments.change_run", "run_id": run.pk})


def _lock_run_for_write(*, user, run_id: int) -> Run:
    """The run, row-locked for this transaction, after checking that ``user``
    may write to it (404 when they may not even see it)."""
    try:
        run = (Run.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=run_id))
    except (Run.DoesNotExist, ValueError, TypeError):
        raise NotFound("Run not found.")
    require_run_write(user, run)
    return run


def run_log_batch(*, user, run_id: int, metrics: Iterable = (), params: Iterable = (),
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
        run = _lock_run_for_write(user=user, run_id=run_id)
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


def run_finish(*, user, run: Run, status: str, end_time=None, reason: str = "") -> Run:
    """End a run as finished, failed or killed. Ending it again with the
    same status changes nothing; a different status is a 409."""
    if status not in TERMINAL_RUN_STATUSES:
        raise ValidationFailed("status must be finished, failed or killed.",
                               details={"fields": {"status": [str(status)]}})
    moment = timezone.now() if end_time in (None, "") else parse_time(end_time, item="end_time")
    with transaction.atomic():
        locked = _lock_run_for_write(user=user, run_id=run.pk)
        if locked.status in TERMINAL_RUN_STATUSES:
            if locked.status == status:
                return locked
            raise InvalidState(f"Run {locked.pk} already ended as {locked.status}.",
                               details={"status": locked.status})
        job_id = (TrainingJob.objects.filter(run_id=locked.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
                  .values_list("pk", flat=True).first())
        if job_id is not None:
            raise InvalidState(f"Run {locked.pk} belongs to training job {job_id}; cancel the job instead.",
                               details={"training_job_id": job_id})
        return run_end(run=locked, status=status, reason=reason, actor=user, end_time=moment)


def run_end(*, run: Run, status: str, reason: str = "", actor=None, end_time: datetime | None = None) -> Run:
    """Mark a locked, active run as ended and tell subscribers. Runs inside
    the caller's transaction (training jobs end their runs through this)."""
    before = snapshot(run, ["status", "status_reason", "end_time"])
    run.status = status
    run.status_reason = (reason or "")[:5000]
    run.end_time = end_time or timezone.now()
    run.end_time = max(run.end_time, run.start_time)
    run.save(update_fields=["status", "status_reason", "end_time"])
    audit_record(actor=actor, action=f"run.{status}", target=run, before=before,
                 after=snapshot(run, ["status", "status_reason", "end_time"]))
    events.publish("experiments.run.finished", {"run_id": run.pk, "status": status})
    return run


def run_update(*, user, run: Run, name: str | None = None, note: str | None = None) -> Run:
    """Rename a run or change its note."""
    with transaction.atomic():
        locked = _lock_run_for_write(user=user, run_id=run.pk)
        before = snapshot(locked, ["name", "note"])
        if name is not None:
            if len(name) > 250:
                raise ValidationFailed("A run name has at most 250 characters.")
            locked.name = name
        if note is not None:
            locked.note = note
        locked.save(update_fields=["name", "note"])
        audit_record(actor=user, action="run.updated", target=locked, before=before,
                     after=snapshot(locked, ["name", "note"]))
    return locked


# --- Artifacts ----------------------------------------------------------------------

def clean_artifact_path(path: str) -> str:
    """A relative POSIX path inside the run (``plots/roc_curve.json``)."""
    if not isinstance(path, str) or not path.strip():
        raise ValidationFailed("An artifact needs a path.", details={"fields": {"path": ["Required."]}})
    if "\\" in path or any(ord(c) < 32 for c in path):
        raise ValidationFailed("Artifact paths use '/' and no control characters.",
                               details={"fields": {"path": [path[:100]]}})
    if path.startswith("/"):
        raise ValidationFailed("Artifact paths are relative to the run.", details={"fields": {"path": [path[:100]]}})
    parts = path.split("/")
    if any(part in ("..", ".") for part in parts):
        raise ValidationFailed("Artifact paths may not contain '.' or '..' segments.",
                               details={"fields": {"path": [path[:100]]}})
    normal = posixpath.normpath(path)
    if len(normal) > 400:
        raise ValidationFailed("Artifact paths have at most 400 characters.")
    return normal


def artifact_log(*, user, run: Run, fileobj, path: str, content_type: str = "", check_access: bool = True
                 ) -> Artifact:
    """Store a file as an artifact of ``run`` under ``path``; paths are
    write-once (409 when the path exists). ``check_access=False`` is for the
    platform's own writers (training jobs) acting for the job's creator."""
    path = clean_artifact_path(path)
    if check_access:
        require_run_write(user, run)
    if Artifact.objects.filter(run_id=run.pk, path=path).exists():
        raise Conflict(f"Run {run.pk} already has an artifact at {path!r}; artifacts are write-once.",
                       code="artifact_exists", details={"path": path})
    content_type = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    upload_bytes = _file_size(fileobj)
    _check_artifact_quota(run_id=run.pk, upload_bytes=upload_bytes)
    stored = store_file(fileobj, f"runs/{run.pk}/{path}")
    try:
        with transaction.atomic():
            locked = Run.objects.select_for_update().get(pk=run.pk)
            if locked.status == RunStatus.KILLED:
                raise InvalidState(f"Run {run.pk} was killed; it accepts no more artifacts.")
            # Again under the run's lock: two uploads racing past the first
            # check must not both land.
            _check_artifact_quota(run_id=run.pk, upload_bytes=stored.size)
            artifact = Artifact.objects.create(run=locked, path=path, file=stored.name, size_bytes=stored.size,
                                               sha256=stored.sha256, content_type=content_type[:100])
    except IntegrityError:
        delete_quietly(stored.name)
        raise Conflict(f"Run {run.pk} already has an artifact at {path!r}; artifacts are write-once.",
                       code="artifact_exists", details={"path": path})
    except Exception:
        delete_quietly(stored.name)
        raise
    return artifact


def _file_size(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if size is None:
        position = fileobj.tell()
        size = fileobj.seek(0, 2)
        fileobj.seek(position)
    return int(size)


def _check_artifact_quota(*, run_id: int, upload_bytes: int) -> None:
    quota = settings.RUN_ARTIFACT_QUOTA_BYTES
    used = Artifact.objects.filter(run_id=run_id).aggregate(total=Sum("size_bytes"))["total"] or 0
    if used + upload_bytes > quota:
        raise PayloadTooLarge(
            f"Run {run_id} already stores {used} bytes of artifacts; {upload_bytes} more would pass "
            f"its quota of {quota} bytes.",
            code="artifact_quota_exceeded",
            details={"quota_bytes": quota, "used_bytes": used, "upload_bytes": upload_bytes},
        )


__all__ = [
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_TAGS_PER_BATCH",
    "BatchResult",
    "artifact_log",
    "clean_artifact_path",
    "experiment_create",
    "experiment_update",
    "parse_time",
    "require_run_write",
    "run_create",
    "run_end",
    "run_finish",
    "run_log_batch",
    "run_update",
]
