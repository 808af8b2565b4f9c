"""Registered models: create and change their settings.

Quality gates and the holdout they are scored on (``evaluation_dataset_version``,
``evaluation_target``) are governance: changing them needs approve rights on
the model (the Approver or Admin role), not the right to change the model,
so that the people who request promotions cannot lower the bar their
requests are judged by. Every change is audited with before and after and
re-evaluates the model's pending promotion requests at once. A model's
creator may give its first gates: it has no version yet to be judged."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import grant_on_create, has_perm, require_perm
from apps.core.services import audit_record, snapshot
from apps.registry import quality
from apps.registry.choices import ModelTaskType, RequestStatus
from apps.registry.models import PromotionRequest, RegisteredModel

AUDIT_FIELDS = ["name", "description", "owner", "task_type", "tags", "quality_gates", "champion_follows_production",
                "evaluation_dataset_version", "evaluation_target"]
SETTINGS_FIELDS = {"description", "tags", "champion_follows_production"}
GOVERNANCE_FIELDS = ["quality_gates", "evaluation_dataset_version", "evaluation_target"]


def clean_quality_gates(raw) -> dict:
    """The normalised gate setting, or a 400 naming what is wrong."""
    try:
        return quality.normalize_gates(raw)
    except quality.GateConfigError as exc:
        raise ValidationFailed(str(exc), details={"fields": {"quality_gates": [str(exc)]}})


def _clean_tags(tags) -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) for k in tags):
        raise ValidationFailed("tags must be an object of string keys.",
                               details={"fields": {"tags": ["Not an object."]}})
    return tags


def registered_model_create(
    *, actor, name: str, task_type: str, description: str = "", quality_gates: dict | None = None,
    tags: dict | None = None, champion_follows_production: bool = True,
) -> RegisteredModel:
    """A new registered model owned by ``actor``, shared as OBJECT_SHARING says."""
    require_perm(actor, "registry.add_registeredmodel")
    name = (name or "").strip()
    if not name or slugify(name) != name.lower() or name != name.lower():
        raise ValidationFailed("A model name is lower-case letters, digits and hyphens, e.g. sample-qc.",
                               details={"fields": {"name": ["Use a slug such as sample-qc."]}})
    if task_type not in ModelTaskType.values:
        raise ValidationFailed(f"task_type must be one of {', '.join(ModelTaskType.values)}.",
                               details={"fields": {"task_type": ["Invalid choice."]}})
    gates = clean_quality_gates(quality_gates)
    tags = _clean_tags(tags)
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, task_type=task_type, description=description or "", quality_gates=gates, tags=tags,
                champion_follows_production=champion_follows_production, owner=actor,
            )
            grant_on_create(model, owner=actor)
            audit_record(actor=actor, action="registered_model.created", target=model,
                         after=snapshot(model, AUDIT_FIELDS))
    except IntegrityError:
        raise Conflict(f"A registered model named {name!r} already exists.", code="duplicate_name")
    return model


def require_govern(actor, registered_model: RegisteredModel) -> None:
    """Refuse unless ``actor`` may set ``registered_model``'s quality gates and
    holdout: approve rights on it (404 when they may not even see it)."""
    if has_perm(actor, "registry.approve_registeredmodel", registered_model):
        return
    require_perm(actor, "registry.view_registeredmodel", registered_model)
    raise PermissionDenied("Quality gates and the evaluation dataset are governance: only an Approver or an Admin "
                           "may change them.", code="governance_requires_approver",
                           details={"permission": "registry.approve_registeredmodel"})


def _clean_evaluation(actor, model: RegisteredModel, changes: dict) -> None:
    """Check the holdout setting in ``changes`` (in place): a valid dataset
    version the actor may see, and a target column it has."""
    if "evaluation_dataset_version" not in changes and "evaluation_target" not in changes:
        return
    dataset_version = changes.get("evaluation_dataset_version", model.evaluation_dataset_version)
    target = (changes.get("evaluation_target", model.evaluation_target) or "").strip()
    if dataset_version is None:
        changes["evaluation_target"] = ""
        return
    if not has_perm(actor, "datasets.view_dataset", dataset_version.dataset):
        raise NotFound("Dataset version not found.")
    if not dataset_version.is_valid:
        raise ValidationFailed(f"{dataset_version} is {dataset_version.status}; only a valid dataset version can be "
                               "the holdout.", details={"fields": {"evaluation_dataset_version": ["Not valid."]}})
    target = target or dataset_version.dataset.target_column
    columns = [c["name"] for c in (dataset_version.schema or {}).get("columns", [])]
    if not target or target not in columns:
        raise ValidationFailed(f"{dataset_version} has no target column {target!r}; name one of its columns.",
                               details={"fields": {"evaluation_target": ["Not a column of the dataset version."]}})
    changes["evaluation_target"] = target


def registered_model_update(*, registered_model: RegisteredModel, actor, **changes) -> RegisteredModel:
    """Change the description, tags or whether ``champion`` follows Production
    (change rights), or the quality gates and their holdout (approve rights:
    see the module docstring); both checked before anything is written."""
    if unknown := set(changes) - SETTINGS_FIELDS - set(GOVERNANCE_FIELDS):
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of a registered model.")
    governance = {k: changes.pop(k) for k in GOVERNANCE_FIELDS if k in changes}
    if changes or not governance:
        require_perm(actor, "registry.change_registeredmodel", registered_model)
    if governance:
        require_govern(actor, registered_model)
        if "quality_gates" in governance:
            governance["quality_gates"] = clean_quality_gates(governance["quality_gates"])
        _clean_evaluation(actor, registered_model, governance)
    if "tags" in changes:
        changes["tags"] = _clean_tags(changes["tags"])
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
        before = snapshot(model, AUDIT_FIELDS)
        for field, value in {**changes, **governance}.items():
            setattr(model, field, value if value is not None or field != "description" else "")
        model.save()
        after = snapshot(model, AUDIT_FIELDS)
        governed = [f for f in GOVERNANCE_FIELDS if before.get(f) != after.get(f)]
        if governed:
            audit_record(actor=actor, action="registered_model.quality_gates_changed", target=model,
                         before={f: before.get(f) for f in GOVERNANCE_FIELDS},
                         after={f: after.get(f) for f in GOVERNANCE_FIELDS})
        if before != after:
            audit_record(actor=actor, action="registered_model.updated", target=model, before=before, after=after)
    if governed:
        _reevaluate_pending(model, actor=actor, changed=governed)
    return model


def _reevaluate_pending(model: RegisteredModel, *, actor, changed: list[str]) -> None:
    """Judge every pending request of ``model`` again under its new gates, so
    that none keeps results computed under weaker ones."""
    from apps.registry.services.promotion_requests import promotion_request_reevaluate

    pending = (PromotionRequest.objects.filter(version__registered_model=model, status=RequestStatus.PENDING)
               .select_related("version__registered_model", "version__dataset_version").order_by("pk"))
    for promotion_request in pending:
        promotion_request_reevaluate(promotion_request=promotion_request, actor=actor,
                                     reason=f"The model's {', '.join(changed)} changed.")
