"""Writes of runs: start, finish, rename, delete a tag, and who may write
into a run.

Runs are children of experiments: reading one needs ``view_experiment`` on
its experiment, starting one needs ``change_experiment``. Writing to a run
(log batches, artifacts, finish, rename) is for its owner, or someone holding
``change_run`` on that run: a colleague who may change the experiment still
cannot write into another person's run."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import grant, has_perm, require_perm
from apps.core.services import audit_record, snapshot
from apps.experiments.choices import TERMINAL_RUN_STATUSES, JobStatus, RunStatus
from apps.experiments.models import Experiment, Run, RunTag, TrainingJob
from apps.experiments.services.validation import check_tags_mapping, parse_time

RUN_FIELDS = ["name", "status", "status_reason", "experiment", "parent", "dataset_version", "start_time",
              "end_time"]


def run_create(*, actor, experiment: Experiment, name: str = "", parent: Run | None = None,
               dataset_version=None, source_version: str = "", note: str = "", tags: Mapping | None = None,
               start_time=None, status: str = RunStatus.RUNNING) -> Run:
    """Start a run in ``experiment`` (``running`` unless told ``queued``)."""
    require_perm(actor, "experiments.change_experiment", experiment)
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
    if dataset_version is not None and not has_perm(actor, "datasets.view_dataset", dataset_version.dataset):
        raise NotFound("Dataset version not found.")
    tag_map = check_tags_mapping(tags)
    moment = timezone.now() if start_time in (None, "") else parse_time(start_time, item="start_time")
    with transaction.atomic():
        run = Run.objects.create(
            experiment=experiment, name=name or "", user=actor, parent=parent, dataset_version=dataset_version,
            source_version=source_version or "", note=note or "", start_time=moment, status=status,
        )
        if tag_map:
            RunTag.objects.bulk_create([RunTag(run=run, experiment_id=run.experiment_id, key=k, value=v)
                                        for k, v in tag_map.items()])
        grant(run, perms=["change_run"], user=actor)
        audit_record(actor=actor, action="run.created", target=run, after=snapshot(run, RUN_FIELDS))
    return run


def require_run_write(actor, run: Run) -> None:
    """Refuse unless ``actor`` owns ``run`` or holds ``change_run`` on it (404
    when they may not even see its experiment). The owner's case costs no
    object-permission lookup: log-batch is the hot path."""
    if has_perm(actor, "experiments.change_run", run, owner_id=run.user_id):
        return
    require_perm(actor, "experiments.view_experiment", run.experiment)
    raise PermissionDenied("Only the run's owner, or someone they gave change_run on it, may write to it.",
                           code="not_run_owner", details={"permission": "experiments.change_run", "run_id": run.pk})


def lock_run_for_write(*, actor, run_id: int) -> Run:
    """The run, row-locked for this transaction, after checking that ``actor``
    may write to it (404 when they may not even see it)."""
    try:
        run = (Run.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=run_id))
    except (Run.DoesNotExist, ValueError, TypeError):
        raise NotFound("Run not found.")
    require_run_write(actor, run)
    return run


def run_finish(*, actor, run: Run, status: str, end_time=None, reason: str = "",
               training_job: TrainingJob | None = None) -> Run:
    """End a run as finished, failed or killed, and tell subscribers. Ending
    it again with the same status changes nothing; a different status is a
    409. A run that belongs to an active training job is ended by its job
    only: the job's own services pass ``training_job=`` (inside their
    transaction, with ``actor`` None when the platform acts), which skips the
    write check and leaves a run that already ended as it is."""
    if status not in TERMINAL_RUN_STATUSES:
        raise ValidationFailed("status must be finished, failed or killed.",
                               details={"fields": {"status": [str(status)]}})
    moment = timezone.now() if end_time in (None, "") else parse_time(end_time, item="end_time")
    with transaction.atomic():
        if training_job is not None:
            if training_job.run_id != run.pk:
                raise ValueError(f"Run {run.pk} does not belong to training job {training_job.pk}.")
            locked = Run.objects.select_for_update().get(pk=run.pk)
            if locked.status in TERMINAL_RUN_STATUSES:
                return locked
            return _run_mark_ended(locked, status=status, reason=reason, actor=actor, end_time=moment)
        locked = lock_run_for_write(actor=actor, run_id=run.pk)
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
        return _run_mark_ended(locked, status=status, reason=reason, actor=actor, end_time=moment)


def _run_mark_ended(run: Run, *, status: str, reason: str, actor, end_time) -> Run:
    before = snapshot(run, ["status", "status_reason", "end_time"])
    run.status = status
    run.status_reason = (reason or "")[:5000]
    run.end_time = max(end_time, run.start_time)
    run.save(update_fields=["status", "status_reason", "end_time"])
    audit_record(actor=actor, action=f"run.{status}", target=run, before=before,
                 after=snapshot(run, ["status", "status_reason", "end_time"]))
    events.publish("experiments.run.finished", {"run_id": run.pk, "status": status})
    return run


def run_update(*, actor, run: Run, name: str | None = None, note: str | None = None) -> Run:
    """Rename a run or change its note."""
    with transaction.atomic():
        locked = lock_run_for_write(actor=actor, run_id=run.pk)
        before = snapshot(locked, ["name", "note"])
        if name is not None:
            if len(name) > 250:
                raise ValidationFailed("A run name has at most 250 characters.")
            locked.name = name
        if note is not None:
            locked.note = note
        locked.save(update_fields=["name", "note"])
        audit_record(actor=actor, action="run.updated", target=locked, before=before,
                     after=snapshot(locked, ["name", "note"]))
    return locked


def run_tag_delete(*, actor, run_id: int, key: str) -> None:
    """Remove one tag of a run (404 when the run has no such tag)."""
    with transaction.atomic():
        run = lock_run_for_write(actor=actor, run_id=run_id)
        tag = RunTag.objects.filter(run_id=run.pk, key=key).first()
        if tag is None:
            raise NotFound(f"Run {run.pk} has no tag {key!r}.", details={"key": key})
        tag.delete()
        audit_record(actor=actor, action="run.tag_deleted", target=run, before={"key": key, "value": tag.value})


__all__ = [
    "lock_run_for_write",
    "require_run_write",
    "run_create",
    "run_finish",
    "run_tag_delete",
    "run_update",
]
