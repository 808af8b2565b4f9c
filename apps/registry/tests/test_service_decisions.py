"""Registry services on the real database: four eyes and the decisions on
promotion requests (approve, reject, cancel), with the stage moves they make."""

import pytest

from apps.core.errors import Conflict, InvalidState, PermissionDenied, ValidationFailed
from apps.core.models import AuditEvent
from apps.registry import services
from apps.registry.choices import ApprovalStatus, RequestStatus, Stage
from apps.registry.models import ModelAlias, StageTransition
from apps.registry.tests import factories
from apps.registry.tests.helpers import approve, audit_actions, register, request

pytestmark = pytest.mark.django_db


# --- Four eyes and decisions ----------------------------------------------------------------

@pytest.mark.parametrize("requester", ["lead", "admin", "root"])
def test_nobody_approves_their_own_request(people, make_run, registered, requester):
    actor = getattr(people, requester)
    version = register(registered, make_run(), people.scientist)
    req = request(version, actor)
    with pytest.raises(PermissionDenied) as caught:
        approve(req, actor)
    assert caught.value.code == "four_eyes"
    with pytest.raises(PermissionDenied):
        services.promotion_request_reject(promotion_request=req, actor=actor, comment="no")
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING


def test_a_data_scientist_cannot_approve(people, make_run, registered):
    req = request(register(registered, make_run(), people.scientist), people.scientist)
    with pytest.raises(PermissionDenied):
        approve(req, people.engineer)


def test_approval_moves_archives_and_moves_champion_in_one_go(people, make_run, registered, published):
    v1 = register(registered, make_run(), people.scientist)
    v2 = register(registered, make_run(C=0.5), people.scientist)
    approve(request(v1, people.scientist), people.qa)
    published.clear()
    req = request(v2, people.engineer)
    with published.committing():
        decided = approve(req, people.qa, comment="validated on March samples")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert decided.status == RequestStatus.APPROVED and decided.decided_by == people.qa
    assert decided.decision_comment == "validated on March samples" and decided.override_reason == ""
    assert (v1.stage, v2.stage) == (Stage.ARCHIVED, Stage.PRODUCTION)
    assert v2.approval_status == ApprovalStatus.APPROVED
    assert ModelAlias.objects.get(registered_model=registered, alias="champion").version == v2
    assert [(t.from_stage, t.to_stage, t.kind) for t in StageTransition.objects.filter(version=v1)
            .order_by("id")] == [("none", "production", "approval"), ("production", "archived", "superseded")]
    assert "promotion_request.approved" in audit_actions(decided)
    assert audit_actions(v2)[-1] == "model_version.stage_changed"
    assert [e for e, _ in published] == [
        "registry.model_version.stage_changed", "registry.model_version.stage_changed", "registry.alias.moved",
        "registry.promotion_request.approved"]
    stage_changes = [p for e, p in published if e.endswith("stage_changed")]
    transitions = {t.version_id: t.pk for t in StageTransition.objects.filter(promotion_request__isnull=False)
                   .filter(version=v2) | StageTransition.objects.filter(version=v1, kind="superseded")}
    assert stage_changes == [
        {"registered_model": "sample-qc", "version_id": v1.pk, "version": 1, "from_stage": "production",
         "to_stage": "archived", "kind": "superseded", "transition_id": transitions[v1.pk],
         "actor_id": people.qa.pk},
        {"registered_model": "sample-qc", "version_id": v2.pk, "version": 2, "from_stage": "none",
         "to_stage": "production", "kind": "approval", "transition_id": transitions[v2.pk],
         "actor_id": people.qa.pk},
    ]
    with pytest.raises(InvalidState, match="already approved"):
        approve(req, people.qa2)


def test_champion_stays_put_when_not_following(people, make_run, registered):
    services.registered_model_update(registered_model=registered, actor=people.scientist,
                                     champion_follows_production=False)
    version = register(registered, make_run(), people.scientist)
    approve(request(version, people.scientist), people.qa)
    assert not ModelAlias.objects.exists()


def test_staging_does_not_touch_production(people, make_run, registered):
    v1 = register(registered, make_run(), people.scientist)
    approve(request(v1, people.scientist), people.qa)
    v2 = register(registered, make_run(C=0.5), people.scientist)
    approve(request(v2, people.scientist, stage="staging"), people.qa)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.stage, v2.stage) == (Stage.PRODUCTION, Stage.STAGING)


def test_failed_gates_block_approval_unless_an_admin_overrides(people, data, make_run, registered):
    version = register(registered, make_run(model=factories.poor_pipeline(data.frame)), people.scientist)
    req = request(version, people.scientist)
    assert not req.gates_passed
    with pytest.raises(Conflict) as caught:
        approve(req, people.qa)
    assert caught.value.code == "quality_gates_failed"
    assert caught.value.details["failed_gates"][0]["gate"] == "metric_threshold"
    with pytest.raises(PermissionDenied) as caught:
        approve(req, people.qa, override_reason="urgent")
    assert caught.value.code == "override_requires_admin"
    with pytest.raises(Conflict):
        approve(req, people.admin)  # an Admin still has to write a reason
    decided = approve(req, people.admin, override_reason="Validated by hand on 200 extra samples; see QA-142.")
    version.refresh_from_db()
    assert version.stage == Stage.PRODUCTION
    assert decided.override_reason == "Validated by hand on 200 extra samples; see QA-142."
    assert [a for a in audit_actions(decided) if a != "promotion_request.gates_reevaluated"] == [
        "promotion_request.created", "promotion_request.approved", "promotion_request.gates_overridden"]
    overridden = AuditEvent.objects.get(action="promotion_request.gates_overridden")
    assert overridden.actor == people.admin and overridden.after["failed_gates"] == ["metric_threshold"]


def test_reject_needs_a_comment_and_leaves_the_stage(people, make_run, registered):
    version = register(registered, make_run(), people.scientist)
    req = request(version, people.scientist)
    with pytest.raises(ValidationFailed):
        services.promotion_request_reject(promotion_request=req, actor=people.qa, comment="  ")
    decided = services.promotion_request_reject(promotion_request=req, actor=people.qa, comment="needs FFPE samples")
    version.refresh_from_db()
    assert decided.status == RequestStatus.REJECTED and decided.decision_comment == "needs FFPE samples"
    assert version.stage == Stage.NONE and version.approval_status == ApprovalStatus.REJECTED
    assert request(version, people.scientist).status == RequestStatus.PENDING  # may ask again


def test_requester_can_cancel(people, make_run, registered):
    version = register(registered, make_run(), people.scientist)
    req = request(version, people.scientist)
    with pytest.raises(PermissionDenied):
        services.promotion_request_cancel(promotion_request=req, actor=people.engineer)
    cancelled = services.promotion_request_cancel(promotion_request=req, actor=people.scientist)
    version.refresh_from_db()
    assert cancelled.status == RequestStatus.CANCELLED and version.approval_status == ApprovalStatus.NONE
