"""Writes of the model registry, split by subdomain and re-exported here:
``from apps.registry import services; services.promotion_request_approve(...)``.

Other apps rely on the domain events listed in
``apps.registry.choices.RegistryEvent`` (published through
``apps.core.events``, which also delivers them to webhooks)."""

from apps.registry.services.gates import (
    NO_HOLDOUT,
    evaluation_rows,
    gates_fingerprint,
    platform_holdout,
    quality_gates_evaluate,
)
from apps.registry.services.promotion_requests import (
    promotion_request_approve,
    promotion_request_cancel,
    promotion_request_create,
    promotion_request_reevaluate,
    promotion_request_reject,
)
from apps.registry.services.registered_models import (
    clean_quality_gates,
    registered_model_create,
    registered_model_update,
)
from apps.registry.services.stages import (
    model_alias_delete,
    model_alias_set,
    previous_production_version,
    registered_model_rollback,
)
from apps.registry.services.versions import (
    model_version_load,
    model_version_read_bytes,
    model_version_register,
    model_version_update,
    model_version_upload,
)

__all__ = [
    "NO_HOLDOUT",
    "clean_quality_gates",
    "evaluation_rows",
    "gates_fingerprint",
    "model_alias_delete",
    "model_alias_set",
    "model_version_load",
    "model_version_read_bytes",
    "model_version_register",
    "model_version_update",
    "model_version_upload",
    "platform_holdout",
    "previous_production_version",
    "promotion_request_approve",
    "promotion_request_cancel",
    "promotion_request_create",
    "promotion_request_reevaluate",
    "promotion_request_reject",
    "quality_gates_evaluate",
    "registered_model_create",
    "registered_model_rollback",
    "registered_model_update",
]
