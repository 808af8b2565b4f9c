"""The estimator allow-list (``catalogue.py``) and the search spaces of
hyperparameter searches (``hyperparameter_spaces.py``), re-exported here:
callers write ``from apps.experiments import estimators as est``."""

from apps.experiments.estimators.catalogue import (
    CLASSIFICATION,
    ESTIMATORS,
    LIBRARY_DEFAULT,
    REGRESSION,
    HyperparameterError,
    build_estimator,
    check_estimator,
    effective_hyperparameters,
    estimator_names,
    params_for,
    validate_hyperparameters,
)
from apps.experiments.estimators.hyperparameter_spaces import (
    check_search_metric,
    default_search_metric,
    evaluation_metrics,
    expand_space,
    higher_is_better,
    validate_space,
)

__all__ = [
    "CLASSIFICATION",
    "ESTIMATORS",
    "LIBRARY_DEFAULT",
    "REGRESSION",
    "HyperparameterError",
    "build_estimator",
    "check_estimator",
    "check_search_metric",
    "default_search_metric",
    "effective_hyperparameters",
    "estimator_names",
    "evaluation_metrics",
    "expand_space",
    "higher_is_better",
    "params_for",
    "validate_hyperparameters",
    "validate_space",
]
