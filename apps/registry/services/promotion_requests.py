"""Promotion requests (MLflow calls them transition requests) and the
four-eyes decision on them.

A request evaluates the quality gates at once and stores each result. An
approver — someone with ``registry.approve_registeredmodel`` on that model
who is not the requester, whatever their role — approves or rejects with a
comment. Approval evaluates the gates again first (the model's gates, its
holdout or its Production version may have changed since the request) and
refuses results computed under other settings than the current ones. Failed
gates block approval unless an Admin overrides them with a written reason,
which is stored and audited.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidState, PermissionDenied, ValidationFailed
from apps.core.permissions import is_admin, require_perm
from apps.core.services import audit_record
from apps.registry.choices import ApprovalStatus, RegistryEvent, RequestStatus, Stage, TransitionKind
from apps.registry.models import ModelVersion, PromotionRequest
from apps.registry.services._events import announce
from apps.registry.services.gates import gates_fingerprint, quality_gates_evaluate
from apps.registry.services.stages import lock_model, move_to_stage

PROMOTABLE_STAGES = (Stage.STAGING, Stage.PRODUCTION)
# Evaluations an approval may need when settings keep changing under it.
APPROVAL_ATTEMPTS = 3


def _payload(promotion_request: PromotionRequest, **extra) -> dict:
    version = promotion_request.version
    return {
        "registered_model": version.registered_model.name, "version_id": version.pk, "version": version.version,
        "request_id": promotion_request.pk, "target_stage": promotion_request.target_stage,
        "requested_by": promotion_request.requested_by.get_username(),
        "gates_passed": promotion_request.gates_passed, **extra,
    }


def promotion_request_create(*, version: ModelVersion, actor, target_stage: str, justification: str
                             ) -> PromotionRequest:
    """Ask for ``version`` to move to Staging or Production. The quality gates
    are evaluated now and stored with the request."""
    model = version.registered_model
    require_perm(actor, "registry.add_promotionrequest")
    require_perm(actor, "registry.change_registeredmodel", model)  # 404 when not even visible
    if target_stage not in PROMOTABLE_STAGES:
        raise ValidationFailed("stage must be staging or production.",
                               details={"fields": {"stage": ["Choose staging or production."]}})
    justification = (justification or "").strip()
    if not justification:
        raise ValidationFailed("A promotion request needs a justification.",
                               details={"fields": {"justification": ["Required."]}})
    if version.stage == target_stage:
        raise InvalidState(f"{version} is already in {target_stage}.")
    # Gates load models and read data: done before the transaction so that no
    # row stays locked while they run.
    evaluation = quality_gates_evaluate(version=version)
    results, passed = evaluation.results, evaluation.passed
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if locked.stage == target_stage:
            raise InvalidState(f"{locked} is already in {target_stage}.")
        if PromotionRequest.objects.filter(version=locked, status=RequestStatus.PENDING).exists():
            raise Conflict(f"{locked} already has a pending promotion request; decide or cancel it first.",
                           code="request_pending")
        promotion_request = PromotionRequest.objects.create(
            version=locked, target_stage=target_stage, requested_by=actor, justification=justification,
            gate_results=results, gates_passed=passed, gates_fingerprint=evaluation.fingerprint,
            gates_evaluated_at=timezone.now(),
        )
        locked.approval_status = ApprovalStatus.PENDING
        locked.save(update_fields=["approval_status"])
        audit_record(actor=actor, action="promotion_request.created", target=promotion_request, after={
            "version": locked.version, "target_stage": target_stage, "gates_passed": passed,
            "failed_gates": [r["gate"] for r in results if not r["passed"]],
        }, message=justification)
        announce(RegistryEvent.PROMOTION_REQUEST_CREATED, registered_model=model,
                 payload=_payload(promotion_request))
    return promotion_request


def _failed(results: list[dict]) -> list[str]:
    return [r["gate"] for r in results if not r.get("passed")]


def promotion_request_reevaluate(*, promotion_request: PromotionRequest, actor, reason: str) -> PromotionRequest:
    """Evaluate a pending request's gates again under the model's current
    settings and store the results, audited with before and after. Called
    when the gates or the holdout change and before every approval; the
    caller has checked the actor's rights. A request decided meanwhile is
    returned unchanged."""
    evaluation = quality_gates_evaluate(version=promotion_request.version)
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion_request.pk)
        if locked.status != RequestStatus.PENDING:
            return locked
        before = {"gates_passed": locked.gates_passed, "failed_gates": _failed(locked.gate_results),
                  "gates_fingerprint": locked.gates_fingerprint}
        locked.gate_results = evaluation.results
        locked.gates_passed = evaluation.passed
        locked.gates_fingerprint = evaluation.fingerprint
        locked.gates_evaluated_at = timezone.now()
        locked.save(update_fields=["gate_results", "gates_passed", "gates_fingerprint", "gates_evaluated_at"])
        audit_record(actor=actor, action="promotion_request.gates_reevaluated", target=locked, before=before,
                     after={"gates_passed": evaluation.passed, "failed_gates": _failed(evaluation.results),
                            "gates_fingerprint": evaluation.fingerprint}, message=reason)
    return locked


def _check_decider(actor, promotion_request: PromotionRequest) -> None:
    model = promotion_request.version.registered_model
    # The requester could see the model, so saying "four eyes" reveals nothing.
    if promotion_request.requested_by_id == actor.pk:
        raise PermissionDenied("You requested this promotion; a different approver must decide it (four eyes).",
                               code="four_eyes")
    require_perm(actor, "registry.approve_registeredmodel", model)  # 404 when not even visible


def _lock_pending(promotion_request: PromotionRequest, actor) -> tuple:
    model = lock_model(promotion_request.version.registered_model)
    locked = (PromotionRequest.objects.select_for_update().select_related("version", "requested_by")
              .get(pk=promotion_request.pk))
    if locked.status != RequestStatus.PENDING:
        raise InvalidState(f"This request is already {locked.status}.", details={"status": locked.status})
    # Checked again on the locked row: the requester cannot slip through a race.
    if locked.requested_by_id == actor.pk:
        raise PermissionDenied("You requested this promotion; a different approver must decide it (four eyes).",
                               code="four_eyes")
    version = ModelVersion.objects.select_for_update().get(pk=locked.version_id)
    locked.version = version
    version.registered_model = model
    return model, locked, version


def promotion_request_approve(*, promotion_request: PromotionRequest, actor, comment: str,
                              override_reason: str = "") -> PromotionRequest:
    """Approve: in one transaction the version moves, a previous Production
    version is archived, ``champion`` follows if configured, all audited."""
    _check_decider(actor, promotion_request)
    comment = (comment or "").strip()
    override_reason = (override_reason or "").strip()
    if not comment:
        raise ValidationFailed("An approval needs a comment.", details={"fields": {"comment": ["Required."]}})
    for _ in range(APPROVAL_ATTEMPTS):
        if promotion_request.status == RequestStatus.PENDING:
            promotion_request_reevaluate(promotion_request=promotion_request, actor=actor,
                                         reason="Evaluated again at approval.")
        try:
            return _approve_evaluated(promotion_request, actor=actor, comment=comment,
                                      override_reason=override_reason)
        except _StaleEvaluation:
            # The gates, the holdout or Production (another approval) changed
            # while we evaluated: judge again under the new settings.
            continue
    raise Conflict("The quality gates kept changing while this request was being evaluated; try again.",
                   code="stale_gate_evaluation")


class _StaleEvaluation(Exception):
    """The stored gate results no longer match the model's settings."""


def _approve_evaluated(promotion_request: PromotionRequest, *, actor, comment: str,
                       override_reason: str) -> PromotionRequest:
    with transaction.atomic():
        model, locked, version = _lock_pending(promotion_request, actor)
        if locked.gates_fingerprint != gates_fingerprint(model):
            raise _StaleEvaluation
        if not locked.gates_passed:
            failed = [r for r in locked.gate_results if not r.get("passed")]
            if not override_reason:
                raise Conflict("Quality gates failed; approval is blocked unless an Admin overrides them "
                               "with a written reason.", code="quality_gates_failed", details={"failed_gates": failed})
            if not is_admin(actor):
                raise PermissionDenied("Only an Admin can override failed quality gates.",
                                       code="override_requires_admin")
        else:
            override_reason = ""
        if version.stage == locked.target_stage:
            raise InvalidState(f"{version} is already in {locked.target_stage}.")
        locked.status = RequestStatus.APPROVED
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.decision_comment = comment
        locked.override_reason = override_reason
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_comment", "override_reason"])
        version.approval_status = ApprovalStatus.APPROVED
        audit_record(actor=actor, action="promotion_request.approved", target=locked,
                     before={"status": RequestStatus.PENDING},
                     after={"status": RequestStatus.APPROVED, "version": version.version,
                            "target_stage": locked.target_stage, "gates_passed": locked.gates_passed,
                            "override_reason": override_reason},
                     message=comment)
        if override_reason:
            audit_record(actor=actor, action="promotion_request.gates_overridden", target=locked,
                         after={"failed_gates": [r["gate"] for r in locked.gate_results if not r.get("passed")],
                                "override_reason": override_reason}, message=override_reason)
        move_to_stage(model=model, version=version, to_stage=locked.target_stage, kind=TransitionKind.APPROVAL,
                      actor=actor, reason=comment, promotion_request=locked)
        announce(RegistryEvent.PROMOTION_REQUEST_APPROVED, registered_model=model, payload=_payload(
            locked, decided_by=actor.get_username(), comment=comment, overridden=bool(override_reason)))
    return locked


def promotion_request_reject(*, promotion_request: PromotionRequest, actor, comment: str) -> PromotionRequest:
    _check_decider(actor, promotion_request)
    comment = (comment or "").strip()
    if not comment:
        raise ValidationFailed("A rejection needs a comment.", details={"fields": {"comment": ["Required."]}})
    with transaction.atomic():
        model, locked, version = _lock_pending(promotion_request, actor)
        locked.status = RequestStatus.REJECTED
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.decision_comment = comment
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_comment"])
        version.approval_status = ApprovalStatus.REJECTED
        version.save(update_fields=["approval_status"])
        audit_record(actor=actor, action="promotion_request.rejected", target=locked,
                     before={"status": RequestStatus.PENDING},
                     after={"status": RequestStatus.REJECTED, "version": version.version,
                            "target_stage": locked.target_stage}, message=comment)
        announce(RegistryEvent.PROMOTION_REQUEST_REJECTED, registered_model=model,
                 payload=_payload(locked, decided_by=actor.get_username(), comment=comment))
    return locked


def promotion_request_cancel(*, promotion_request: PromotionRequest, actor) -> PromotionRequest:
    """The requester (or an Admin) withdraws a pending request."""
    require_perm(actor, "registry.view_registeredmodel", promotion_request.version.registered_model)
    if promotion_request.requested_by_id != actor.pk and not is_admin(actor):
        raise PermissionDenied("Only the requester or an Admin can cancel a request.")
    with transaction.atomic():
        model = lock_model(promotion_request.version.registered_model)
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion_request.pk)
        if locked.status != RequestStatus.PENDING:
            raise InvalidState(f"This request is already {locked.status}.")
        locked.status = RequestStatus.CANCELLED
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        # The version's approval status goes back to its last decision, if any.
        last = (PromotionRequest.objects.filter(version_id=locked.version_id,
                                                status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED])
                .order_by("-decided_at").values_list("status", flat=True).first())
        ModelVersion.objects.filter(pk=locked.version_id).update(approval_status=last or ApprovalStatus.NONE)
        audit_record(actor=actor, action="promotion_request.cancelled", target=locked,
                     before={"status": RequestStatus.PENDING}, after={"status": RequestStatus.CANCELLED})
        announce(RegistryEvent.PROMOTION_REQUEST_CANCELLED, registered_model=model,
                 payload=_payload(locked, cancelled_by=actor.get_username()))
    return locked
