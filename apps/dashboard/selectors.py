"""Reads that cut across apps for the home page. The dashboard sits on top of
the layering, so it may read from every app; it reads through each app's
selectors, which apply the permission helper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.apps import apps as django_apps
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from apps.core.selectors import audit_event_list

# How far back a failed training job still asks for attention.
FAILED_JOB_WINDOW = timedelta(days=7)
# At most this many items of one kind (the page links to the full list).
PER_KIND = 10


def overview_cards(*, user) -> list[dict]:
    """One card per installed app that exposes ``overview_card(user=...)`` in
    its selectors module."""
    cards = []
    for config in django_apps.get_app_configs():
        if not config.name.startswith("apps.") or config.name in ("apps.core", "apps.dashboard"):
            continue
        try:
            module = import_module(f"{config.name}.selectors")
        except ModuleNotFoundError:
            continue
        card_fn = getattr(module, "overview_card", None)
        if card_fn is not None:
            card = card_fn(user=user)
            if card:
                cards.append(card)
    return cards


# --- What needs attention ------------------------------------------------------------

@dataclass(frozen=True)
class AttentionItem:
    """One thing on the home page the signed-in user should look at."""

    kind: str  # approval, training_job, degraded, paused, invalid_upload
    title: str
    url: str
    next_step: str
    badge: str = ""


def _approvals(user) -> list[AttentionItem]:
    from apps.registry.selectors import approval_queue

    queue_url = reverse("registry:approvals")
    items = []
    for request in approval_queue(user=user)[:PER_KIND]:
        version = request.version
        gates = "gates passed" if request.gates_passed else "gates failed"
        items.append(AttentionItem(
            kind="approval", url=f"{queue_url}#request-{request.pk}", badge="pending",
            title=(f"{version.registered_model.name} v{version.version} → {request.get_target_stage_display()}, "
                   f"asked by {request.requested_by.get_username()} ({gates})"),
            next_step="Review the gates and the comparison with Production, then approve or reject.",
        ))
    return items


def _training_jobs(user) -> list[AttentionItem]:
    from apps.experiments.choices import JobStatus
    from apps.experiments.selectors import training_job_list

    since = timezone.now() - FAILED_JOB_WINDOW
    jobs = (training_job_list(user=user).filter(created_by=user, parent__isnull=True)
            .filter(Q(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
                    | Q(status=JobStatus.FAILED, finished_at__gte=since))
            .select_related("run__experiment")[:PER_KIND])
    items = []
    for job in jobs:
        where = f"training job {job.pk} ({job.estimator} in {job.run.experiment.name})"
        if job.status == JobStatus.FAILED:
            title = f"Your {where} failed" + (f": {job.error[:160]}" if job.error else "")
            step = "Read the error on the job page, fix the data or the settings, and train again."
        else:
            title = f"Your {where} is {job.get_status_display().lower()} ({round(job.progress * 100)} %)"
            step = "Nothing to do yet: the inbox tells you when it ends."
        items.append(AttentionItem(kind="training_job", title=title, badge=job.status, next_step=step,
                                   url=reverse("experiments:training-job", args=[job.pk])))
    return items


def _deployments(user) -> list[AttentionItem]:
    from apps.serving.choices import DeploymentStatus, RolloutState
    from apps.serving.selectors import deployment_list

    items = []
    visible = deployment_list(user=user)
    for deployment in visible.filter(status=DeploymentStatus.DEGRADED)[:PER_KIND]:
        reason = f": {deployment.status_reason}" if deployment.status_reason else ""
        items.append(AttentionItem(
            kind="degraded", badge="degraded", url=reverse("serving:detail", args=[deployment.endpoint.slug]),
            title=f"{deployment.endpoint.slug} serves {deployment.model_version} degraded{reason}",
            next_step="Look at the live metrics; roll back, or deploy a better version.",
        ))
    for deployment in visible.filter(rollout_state=RolloutState.PAUSED)[:PER_KIND]:
        reason = f": {deployment.paused_reason}" if deployment.paused_reason else ""
        items.append(AttentionItem(
            kind="paused", badge="paused", url=reverse("serving:detail", args=[deployment.endpoint.slug]),
            title=(f"The {deployment.get_strategy_display().lower()} rollout of {deployment.model_version} on "
                   f"{deployment.endpoint.slug} is paused at {deployment.traffic_weight:g} %{reason}"),
            next_step="Check its numbers, then resume the rollout or roll it back.",
        ))
    return items


def _invalid_uploads(user) -> list[AttentionItem]:
    """The user's invalid uploads that are still the latest version of their
    dataset (a newer upload means they dealt with it)."""
    from apps.datasets.choices import VersionStatus
    from apps.datasets.models import DatasetVersion
    from apps.datasets.selectors import dataset_version_list

    newer = DatasetVersion.objects.filter(dataset=OuterRef("dataset"), version__gt=OuterRef("version"))
    versions = (dataset_version_list(user=user).filter(created_by=user, status=VersionStatus.INVALID)
                .filter(~Exists(newer)).order_by("-created_at")[:PER_KIND])
    items = []
    for version in versions:
        reason = f": {version.status_reason[:160]}" if version.status_reason else ""
        items.append(AttentionItem(
            kind="invalid_upload", badge="invalid", url=reverse("datasets:version", args=[version.pk]),
            title=f"Your upload {version.dataset.name} v{version.version} ({version.original_filename}) is invalid"
                  f"{reason}",
            next_step="Read the validation report, fix the file and upload a new version.",
        ))
    return items


def attention_items(*, user) -> list[AttentionItem]:
    """What needs the user's attention now, most urgent kinds first."""
    return [*_approvals(user), *_deployments(user), *_training_jobs(user), *_invalid_uploads(user)]


# --- Recent activity -----------------------------------------------------------------

@dataclass(frozen=True)
class ActivityEntry:
    """An audit event with a link to its object and the object's state now."""

    event: object
    url: str = ""
    state: str = ""
    state_label: str = ""


def _stage_of(version) -> tuple[str, str]:
    return version.stage, "No stage" if version.stage == "none" else version.get_stage_display()


def _object_resolvers() -> dict:
    """object_type → (visible queryset for the user, url of an object, (state, label) of an object)."""
    from apps.datasets.selectors import dataset_list, dataset_version_list
    from apps.experiments.selectors import experiment_list, run_list, training_job_list
    from apps.registry.selectors import model_version_list, promotion_request_list, registered_model_list
    from apps.serving.selectors import deployment_list, endpoint_list

    def version_url(v):
        return reverse("registry:version", args=[v.registered_model.name, v.version])

    return {
        "registry.promotionrequest": (
            promotion_request_list, lambda r: version_url(r.version), lambda r: (r.status, r.get_status_display())),
        "registry.modelversion": (model_version_list, version_url, _stage_of),
        "registry.registeredmodel": (registered_model_list, lambda m: reverse("registry:detail", args=[m.name]), None),
        "serving.deployment": (
            deployment_list, lambda d: reverse("serving:detail", args=[d.endpoint.slug]),
            lambda d: (d.status, d.get_status_display())),
        "serving.endpoint": (endpoint_list, lambda e: reverse("serving:detail", args=[e.slug]), None),
        "experiments.trainingjob": (
            training_job_list, lambda j: reverse("experiments:training-job", args=[j.pk]),
            lambda j: (j.status, j.get_status_display())),
        "experiments.run": (
            run_list, lambda r: reverse("experiments:run", args=[r.pk]), lambda r: (r.status, r.get_status_display())),
        "experiments.experiment": (experiment_list, lambda e: reverse("experiments:detail", args=[e.pk]), None),
        "datasets.datasetversion": (
            dataset_version_list, lambda v: reverse("datasets:version", args=[v.pk]),
            lambda v: (v.status, v.get_status_display())),
        "datasets.dataset": (dataset_list, lambda d: reverse("datasets:detail", args=[d.pk]), None),
    }


def recent_activity(*, user, limit: int = 15) -> list[ActivityEntry]:
    """The latest audit events the user may see, each with a link to its
    object and the object's current state when the user may see the object.
    One query per object type, whatever the number of events."""
    events = list(audit_event_list(user=user)[:limit])
    resolvers = _object_resolvers()
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.object_type in resolvers and event.object_id.isdigit():
            wanted.setdefault(event.object_type, set()).add(int(event.object_id))
    found: dict[tuple[str, str], object] = {}
    for object_type, ids in wanted.items():
        selector = resolvers[object_type][0]
        for obj in selector(user=user).filter(pk__in=ids):
            found[(object_type, str(obj.pk))] = obj
    entries = []
    for event in events:
        obj = found.get((event.object_type, event.object_id))
        if obj is None:
            entries.append(ActivityEntry(event=event))
            continue
        _selector, url_of, state_of = resolvers[event.object_type]
        state, label = state_of(obj) if state_of else ("", "")
        entries.append(ActivityEntry(event=event, url=url_of(obj), state=state, state_label=label))
    return entries
