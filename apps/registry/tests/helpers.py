"""Helpers the registry's service tests share: register a version, request,
approve, read a target's audit actions, and the ``Published`` recorder of the
``published`` fixture (conftest)."""

from apps.core.models import AuditEvent
from apps.registry import services


class Published(list):
    """Domain events the registry published, in order; ``committing()`` runs
    the on-commit callbacks of the block, as a real commit would."""

    def __init__(self, capture):
        super().__init__()
        self.committing = lambda: capture(execute=True)

    def __call__(self, event, payload):
        if event.startswith("registry."):
            self.append((event, payload))


def register(registered, run, actor):
    return services.model_version_register(registered_model=registered, run=run, actor=actor)


def request(version, actor, stage="production"):
    return services.promotion_request_create(version=version, actor=actor, target_stage=stage,
                                             justification="better on the March data")


def approve(req, actor, **kwargs):
    return services.promotion_request_approve(promotion_request=req, actor=actor, comment=kwargs.pop("comment", "ok"),
                                              **kwargs)


def audit_actions(obj):
    return list(AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
                .order_by("id").values_list("action", flat=True))
