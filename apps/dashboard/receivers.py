"""The inbox: turns the platform's domain events into notifications for the
people who have to act on them.

Subscribed in ``DashboardConfig.ready()``: the dashboard sits on top of the
layering, so it may read every app to find the recipients, while the apps
below only publish (``apps.core.events``). Events are dispatched after the
change committed, and each handler runs on its own: a failure here is logged
by the dispatcher and never undoes or breaks the action that published it.

Who hears of what:

* promotion requested → everyone who may approve it, except the requester;
* promotion approved / rejected → the requester;
* training job finished / failed → the person who started it (a search's
  trials stay quiet; the search itself reports);
* deployment degraded / rolled back / paused / failed → the endpoint's owner.
"""

from __future__ import annotations

import logging

from django.urls import reverse

from apps.core import events
from apps.core.permissions import users_with_perm
from apps.core.services import notifications_send
from apps.registry.choices import RegistryEvent

logger = logging.getLogger(__name__)

TRAINING_EVENTS = ("experiments.training_job.finished", "experiments.training_job.failed")
DEPLOYMENT_EVENTS = ("serving.deployment.degraded", "serving.deployment.rolled_back",
                     "serving.deployment.paused", "serving.deployment.failed")


def on_promotion_requested(event: str, payload: dict) -> None:
    from apps.registry.models import PromotionRequest

    request = (PromotionRequest.objects.select_related("version__registered_model", "requested_by")
               .filter(pk=payload.get("request_id")).first())
    if request is None:
        return
    model = request.version.registered_model
    approvers = [user for user in users_with_perm("registry.approve_registeredmodel", model)
                 if user.pk != request.requested_by_id]
    gates = "gates passed" if request.gates_passed else "gates FAILED"
    notifications_send(
        recipients=approvers, verb=event, target=request, url=reverse("registry:approvals"),
        text=(f"{request.requested_by.get_username()} asks to promote {model.name} v{request.version.version} "
              f"to {request.get_target_stage_display()} ({gates}). Review it in the approval queue."),
    )


def on_promotion_decided(event: str, payload: dict) -> None:
    from apps.registry.models import PromotionRequest

    request = (PromotionRequest.objects.select_related("version__registered_model", "requested_by", "decided_by")
               .filter(pk=payload.get("request_id")).first())
    if request is None:
        return
    version = request.version
    decided = "approved" if event == RegistryEvent.PROMOTION_REQUEST_APPROVED else "rejected"
    who = request.decided_by.get_username() if request.decided_by else "an approver"
    text = (f"{who} {decided} your request to promote {version.registered_model.name} v{version.version} to "
            f"{request.get_target_stage_display()}.")
    if request.decision_comment:
        text += f" Comment: {request.decision_comment}"
    notifications_send(
        recipients=[request.requested_by], verb=event, target=request, text=text,
        url=reverse("registry:version", args=[version.registered_model.name, version.version]),
    )


def on_training_job_ended(event: str, payload: dict) -> None:
    from apps.experiments.models import TrainingJob

    if payload.get("parent_id"):
        return
    job = TrainingJob.objects.select_related("created_by", "run__experiment").filter(
        pk=payload.get("training_job_id")).first()
    if job is None:
        return
    if job.status == "failed":
        text = (f"Training job {job.pk} ({job.estimator} in {job.run.experiment.name}) failed: "
                f"{job.error or 'see the job page'}. Check the error, fix the data or settings and train again.")
    else:
        text = (f"Training job {job.pk} ({job.estimator} in {job.run.experiment.name}) finished. "
                f"Compare its run and register the model if it is good enough.")
    notifications_send(recipients=[job.created_by], verb=event, target=job, text=text,
                       url=reverse("experiments:training-job", args=[job.pk]))


def on_deployment_event(event: str, payload: dict) -> None:
    from apps.serving.models import Deployment

    deployment = (Deployment.objects.select_related("endpoint__owner", "model_version__registered_model")
                  .filter(pk=payload.get("deployment_id")).first())
    if deployment is None:
        return
    endpoint = deployment.endpoint
    what = event.rsplit(".", 1)[-1].replace("_", " ")
    text = f"Deployment {deployment.pk} of {deployment.model_version} on {endpoint.slug} {what}"
    message = payload.get("message") or deployment.status_reason
    text += f": {message}" if message else "."
    notifications_send(recipients=[endpoint.owner], verb=event, target=deployment, text=text,
                       url=reverse("serving:detail", args=[endpoint.slug]))


def subscribe_all() -> None:
    events.subscribe(RegistryEvent.PROMOTION_REQUEST_CREATED, on_promotion_requested)
    events.subscribe(RegistryEvent.PROMOTION_REQUEST_APPROVED, on_promotion_decided)
    events.subscribe(RegistryEvent.PROMOTION_REQUEST_REJECTED, on_promotion_decided)
    for name in TRAINING_EVENTS:
        events.subscribe(name, on_training_job_ended)
    for name in DEPLOYMENT_EVENTS:
        events.subscribe(name, on_deployment_event)
