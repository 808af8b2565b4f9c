"""Stage moves, aliases and rollback.

Every move happens with the registered model's row locked, so moves of one
model are serialised: two approvals racing for Production run one after the
other, the second archiving the first's version. The partial unique
constraint ``one_production_version_per_model`` makes a second Production
version impossible even for code that forgets the lock.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core.errors import InvalidState, NotFound, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.registry.choices import RegistryEvent, Stage, TransitionKind
from apps.registry.models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from apps.registry.services._events import announce

CHAMPION = "champion"


def lock_model(registered_model: RegisteredModel) -> RegisteredModel:
    return RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)


def set_stage(*, model: RegisteredModel, version: ModelVersion, to_stage: str, kind: str, actor, reason: str = "",
              promotion_request: PromotionRequest | None = None) -> None:
    """Move one locked version; records the transition, audits, announces."""
    from_stage = version.stage
    version.stage = to_stage
    version.stage_changed_at = timezone.now()
    fields = ["stage", "stage_changed_at", "approval_status"]
    if to_stage == Stage.PRODUCTION and kind == TransitionKind.APPROVAL and version.rolled_back_at is not None:
        # A fresh approval is a new decision: rollback may pick this version again later.
        version.rolled_back_at = None
        version.rolled_back_by = None
        fields += ["rolled_back_at", "rolled_back_by"]
    version.save(update_fields=fields)
    transition = StageTransition.objects.create(version=version, from_stage=from_stage, to_stage=to_stage,
                                                kind=kind, promotion_request=promotion_request, actor=actor,
                                                reason=reason)
    audit_record(actor=actor, action="model_version.stage_changed", target=version,
                 before={"stage": from_stage}, after={"stage": to_stage}, message=f"{kind}: {reason}".strip(": "))
    # transition_id lets subscribers act once per move (a retried event is a
    # duplicate); actor_id lets serving act in the name of whoever moved it.
    announce(RegistryEvent.STAGE_CHANGED, registered_model=model, payload={
        "registered_model": model.name, "version_id": version.pk, "version": version.version,
        "from_stage": from_stage, "to_stage": to_stage, "kind": str(kind), "transition_id": transition.pk,
        "actor_id": getattr(actor, "pk", None),
    })


def move_to_stage(*, model: RegisteredModel, version: ModelVersion, to_stage: str, kind: str, actor,
                  reason: str = "", promotion_request: PromotionRequest | None = None) -> ModelVersion | None:
    """Move ``version`` (locked, of the locked ``model``); a new Production
    version first archives the current one. Returns the archived version."""
    archived = None
    if to_stage == Stage.PRODUCTION:
        archived = (ModelVersion.objects.select_for_update()
                    .filter(registered_model=model, stage=Stage.PRODUCTION).exclude(pk=version.pk).first())
        if archived is not None:
            set_stage(model=model, version=archived, to_stage=Stage.ARCHIVED, kind=TransitionKind.SUPERSEDED,
                      actor=actor, reason=f"superseded by v{version.version}")
    set_stage(model=model, version=version, to_stage=to_stage, kind=kind, actor=actor, reason=reason,
              promotion_request=promotion_request)
    if to_stage == Stage.PRODUCTION and model.champion_follows_production:
        move_alias(model=model, alias=CHAMPION, version=version, actor=actor)
    return archived


# --- Aliases -------------------------------------------------------------------------

def move_alias(*, model: RegisteredModel, alias: str, version: ModelVersion, actor) -> ModelAlias:
    """Point ``alias`` at ``version`` (the model row is locked by the caller)."""
    existing = ModelAlias.objects.select_for_update().filter(registered_model=model, alias=alias).first()
    if existing is not None and existing.version_id == version.pk:
        return existing
    previous = existing.version.version if existing is not None else None
    if existing is None:
        existing = ModelAlias.objects.create(registered_model=model, alias=alias, version=version)
    else:
        existing.version = version
        existing.save(update_fields=["version", "updated_at"])
    audit_record(actor=actor, action="model_alias.moved", target=existing,
                 before={"version": previous}, after={"version": version.version})
    announce(RegistryEvent.ALIAS_MOVED, registered_model=model, payload={
        "registered_model": model.name, "alias": alias, "version_id": version.pk, "version": version.version,
        "previous_version": previous,
    })
    return existing


def _clean_alias(alias: str) -> str:
    alias = (alias or "").strip()
    if not alias or slugify(alias) != alias or len(alias) > 50:
        raise ValidationFailed("An alias is a short slug such as champion or challenger.",
                               details={"fields": {"alias": ["Use lower-case letters, digits, - and _."]}})
    return alias


def model_alias_set(*, registered_model: RegisteredModel, alias: str, version_number: int, actor) -> ModelAlias:
    """Point ``alias`` at version ``version_number``, atomically moving it
    away from the version it named before."""
    require_perm(actor, "registry.change_registeredmodel", registered_model)
    alias = _clean_alias(alias)
    with transaction.atomic():
        model = lock_model(registered_model)
        version = ModelVersion.objects.filter(registered_model=model, version=version_number).first()
        if version is None:
            raise NotFound(f"{model.name} has no version {version_number}.")
        return move_alias(model=model, alias=alias, version=version, actor=actor)


def model_alias_delete(*, registered_model: RegisteredModel, alias: str, actor) -> None:
    require_perm(actor, "registry.change_registeredmodel", registered_model)
    with transaction.atomic():
        model = lock_model(registered_model)
        existing = ModelAlias.objects.select_for_update().filter(registered_model=model, alias=alias).first()
        if existing is None:
            raise NotFound(f"{model.name} has no alias {alias!r}.")
        previous = existing.version.version
        audit_record(actor=actor, action="model_alias.deleted", target=existing, before={"version": previous})
        existing.delete()
        announce(RegistryEvent.ALIAS_DELETED, registered_model=model, payload={
            "registered_model": model.name, "alias": alias, "previous_version": previous,
        })


# --- Rollback ------------------------------------------------------------------------

def previous_production_version(*, registered_model: RegisteredModel) -> ModelVersion | None:
    """The most recently archived version that was in Production before and
    was not itself rolled back: v3 → v2 → v1, never back to v3."""
    current = registered_model.versions.filter(stage=Stage.PRODUCTION).values_list("pk", flat=True).first()
    transition = (StageTransition.objects
                  .filter(version__registered_model=registered_model, from_stage=Stage.PRODUCTION,
                          to_stage=Stage.ARCHIVED, version__stage=Stage.ARCHIVED,
                          version__rolled_back_at__isnull=True)
                  .exclude(version_id=current).select_related("version").order_by("-created_at", "-id").first())
    return transition.version if transition is not None else None


def registered_model_rollback(*, registered_model: RegisteredModel, actor, reason: str) -> ModelVersion:
    """Put the previous Production version back and archive the current one,
    in one transaction; ``champion`` follows when configured. Returns the
    version now in Production."""
    require_perm(actor, "registry.rollback_registeredmodel", registered_model)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A rollback needs a reason.", details={"fields": {"reason": ["Required."]}})
    with transaction.atomic():
        model = lock_model(registered_model)
        current = ModelVersion.objects.select_for_update().filter(registered_model=model,
                                                                  stage=Stage.PRODUCTION).first()
        if current is None:
            raise InvalidState(f"{model.name} has no Production version to roll back from.")
        previous = previous_production_version(registered_model=model)
        if previous is None:
            raise InvalidState(f"{model.name} has no earlier Production version to roll back to.")
        previous = ModelVersion.objects.select_for_update().get(pk=previous.pk)
        current.rolled_back_at = timezone.now()
        current.rolled_back_by = actor
        current.save(update_fields=["rolled_back_at", "rolled_back_by"])
        audit_record(actor=actor, action="model_version.rolled_back", target=current,
                     before={"rolled_back_at": None},
                     after={"rolled_back_at": current.rolled_back_at.isoformat(), "replaced_by": previous.version},
                     message=reason)
        set_stage(model=model, version=current, to_stage=Stage.ARCHIVED, kind=TransitionKind.ROLLBACK, actor=actor,
                  reason=reason)
        set_stage(model=model, version=previous, to_stage=Stage.PRODUCTION, kind=TransitionKind.ROLLBACK,
                  actor=actor, reason=reason)
        if model.champion_follows_production:
            move_alias(model=model, alias=CHAMPION, version=previous, actor=actor)
        audit_record(actor=actor, action="registered_model.rolled_back", target=model,
                     before={"production_version": current.version}, after={"production_version": previous.version},
                     message=reason)
        announce(RegistryEvent.ROLLED_BACK, registered_model=model, payload={
            "registered_model": model.name, "from_version": current.version, "to_version": previous.version,
            "from_version_id": current.pk, "to_version_id": previous.pk, "reason": reason,
            "actor": actor.get_username(),
        })
    return previous
