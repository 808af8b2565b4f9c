"""Startup checks of the core settings (``manage.py check`` and every
server start run them)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def model_trusted_types_are_exact_classes(app_configs=None, **kwargs):
    """``MODEL_TRUSTED_TYPES`` may only name exact estimator classes: a prefix
    such as ``sklearn.`` would trust every function under it, and skops calls
    what a model file names."""
    from apps.core.modelio import extra_type_problems

    return [
        Error(f"MODEL_TRUSTED_TYPES: {problem}.", id="core.E001",
              hint="Trust exact scikit-learn estimator classes only (module path as in "
                   "skops.io.get_untrusted_types); the platform's own classes need no entry.")
        for problem in extra_type_problems(getattr(settings, "MODEL_TRUSTED_TYPES", []))
    ]
