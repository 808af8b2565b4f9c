"""Demo registry: the ``sample-qc`` model with v1 in Production (requested by
``scientist``, approved by ``qa``), v2 in Staging and a Production request
for v2 waiting in the approval queue.

The demo runs are trained by the worker after ``seed_demo`` returns, so
``seed`` only enqueues ``demo_models_seed``; that task waits (retrying) for
two finished runs of experiment ``sample-qc`` with a stored model, then calls
``seed_models``. Every step checks what exists, so seeding twice changes
nothing. When the model is ready it publishes ``registry.demo.ready`` so the
serving demo can deploy v2 as a canary."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.core import events
from apps.registry import services
from apps.registry.choices import DEMO_READY_EVENT, RequestStatus, Stage
from apps.registry.models import PromotionRequest, RegisteredModel

MODEL_NAME = "sample-qc"
EXPERIMENT_NAME = "sample-qc"
GATES = {
    "metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.75}],
    "max_regression": {"metric": "test_roc_auc", "margin": 0.05},
}
WAITING = "waiting for demo runs"
READY = "ready"


def seed(context: dict, *, password: str, stdout=None) -> None:
    from apps.registry.tasks import demo_models_seed

    demo_models_seed.delay()
    context["registry"] = {"model": MODEL_NAME}
    if stdout:
        stdout.write(f"  registry: model {MODEL_NAME} (v1 Production, v2 Staging, v2 → Production pending) "
                     "once the worker has trained the demo runs")


def demo_runs():
    """Finished runs of the demo experiment that stored a model, oldest first."""
    from apps.experiments.choices import RunStatus
    from apps.experiments.models import Run

    return list(Run.objects.filter(experiment__name=EXPERIMENT_NAME, status=RunStatus.FINISHED,
                                   artifacts__path="model/model.skops")
                .select_related("experiment").prefetch_related("latest_metrics").order_by("start_time", "id"))


def _score(run) -> float:
    return next((m.value for m in run.latest_metrics.all() if m.key == "test_roc_auc"), 0.0)


def _pending(version, stage):
    return PromotionRequest.objects.filter(version=version, target_stage=stage, status=RequestStatus.PENDING).first()


def _promote(version, *, stage: str, requester, approver, admin, justification: str, comment: str) -> None:
    request = _pending(version, stage) or services.promotion_request_create(
        version=version, actor=requester, target_stage=stage, justification=justification)
    override = ""
    if not request.gates_passed:
        # The demo must end in a known state even if a demo run scored low;
        # an Admin overriding with a reason is exactly what the platform allows.
        approver, override = admin or approver, "Demo data: approved despite failed gates to show the workflow."
    services.promotion_request_approve(promotion_request=request, actor=approver, comment=comment,
                                       override_reason=override)


def seed_models() -> str:
    """Bring the demo registry to its target state; returns ``WAITING``
    until two demo runs exist, then ``READY``."""
    from django.conf import settings

    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["scientist", "qa", settings.DEMO_ADMIN_USERNAME])}
    if "scientist" not in users or "qa" not in users:
        return "no demo users"
    scientist, qa = users["scientist"], users["qa"]
    admin = users.get(settings.DEMO_ADMIN_USERNAME)
    model = RegisteredModel.objects.filter(name=MODEL_NAME).first()
    if model is None or model.latest_version < 2:
        runs = demo_runs()
        if len(runs) < 2:
            return WAITING
        first = runs[0]
        second = max(runs[1:], key=_score)
        if model is None:
            model = services.registered_model_create(
                actor=scientist, name=MODEL_NAME, task_type="classification", quality_gates=GATES,
                description="Predicts whether a submitted sample passes library-prep QC (qc_pass).",
                tags={"demo": "true"})
        if model.latest_version < 1:
            services.model_version_register(registered_model=model, run=first, actor=scientist,
                                            description="First QC model, trained on the 2025 reference data.")
        if model.latest_version < 2:
            model.refresh_from_db()
            services.model_version_register(registered_model=model, run=second, actor=scientist,
                                            description="Best run of the sample-qc experiment.")
    v1 = model.versions.get(version=1)
    v2 = model.versions.get(version=2)
    if v1.stage == Stage.NONE:
        _promote(v1, stage=Stage.PRODUCTION, requester=scientist, approver=qa, admin=admin,
                 justification="First model for library-prep QC; gates passed on the reference test split.",
                 comment="Checked the gate results and the confusion matrix. Approved for production.")
    v2.refresh_from_db()
    if v2.stage == Stage.NONE:
        _promote(v2, stage=Stage.STAGING, requester=scientist, approver=qa, admin=admin,
                 justification="Candidate for a canary on the staging endpoint.",
                 comment="Fine for staging and a canary.")
    v2.refresh_from_db()
    if v2.stage == Stage.STAGING and not _pending(v2, Stage.PRODUCTION) and not PromotionRequest.objects.filter(
            version=v2, target_stage=Stage.PRODUCTION).exists():
        services.promotion_request_create(
            version=v2, actor=scientist, target_stage=Stage.PRODUCTION,
            justification="Better ROC AUC than v1 on the same test rows; canary on staging looks healthy.")
    with transaction.atomic():
        events.publish(DEMO_READY_EVENT, {"registered_model": MODEL_NAME})
    return READY
