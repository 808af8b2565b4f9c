"""The registry in the Django admin, where QA managers work: a pending-first
list of promotion requests with approve/reject actions (an intermediate
page asks for the comment and shows gate results and the metric comparison
with Production), and rollback as an action on registered models (webhook subscriptions and
their delivery log are in core's admin, apps.core.webhooks.admin). Every write goes through the same
services as the API, so four eyes, gates and audit hold here too."""

from apps.registry.admin.promotions import DecisionForm, PendingFirstStatusFilter, PromotionRequestAdmin
from apps.registry.admin.registered_models import (
    ModelVersionAdmin,
    RegisteredModelAdmin,
    RegisteredModelForm,
    RollbackForm,
    StageTransitionAdmin,
    StageTransitionInline,
)

__all__ = [
    "DecisionForm",
    "ModelVersionAdmin",
    "PendingFirstStatusFilter",
    "PromotionRequestAdmin",
    "RegisteredModelAdmin",
    "RegisteredModelForm",
    "RollbackForm",
    "StageTransitionAdmin",
    "StageTransitionInline",
]
