"""The registry in the Django admin, where QA managers work: a pending-first
list of promotion requests with approve/reject actions (an intermediate
page asks for the comment and shows gate results and the metric comparison
with Production), rollback as an action on registered models, and webhook
subscriptions with their delivery log. Every write goes through the same
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
from apps.registry.admin.webhooks import (
    WebhookAttemptInline,
    WebhookDeliveryAdmin,
    WebhookSubscriptionAdmin,
    WebhookSubscriptionForm,
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
    "WebhookAttemptInline",
    "WebhookDeliveryAdmin",
    "WebhookSubscriptionAdmin",
    "WebhookSubscriptionForm",
]
