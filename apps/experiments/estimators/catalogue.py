"""The estimator allow-list: which scikit-learn models a training job may
use, the hyperparameters each accepts (with types and ranges), and how
one is built. Search spaces of a hyperparameter search are in
``hyperparameter_spaces.py``.

No Django in here. Anything not declared is refused before a job is
queued, with the offending name: a typo in a hyperparameter must not
silently train the default model for half an hour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

CLASSIFICATION, REGRESSION = "classification", "regression"
# A hyperparameter left to scikit-learn's own default (not passed at all).
LIBRARY_DEFAULT = "library default"


class HyperparameterError(ValueError):
    """A hyperparameter (or search-space entry) that is not acceptable;
    ``name`` says which (``"max_depth"``, ``"space.max_depth[2]"``)."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True)
class Param:
    """One hyperparameter: ``kind`` is int, float, bool or choice;
    ``nullable`` allows null (e.g. ``max_depth`` = unlimited); ``choices``
    may be mixed with a number kind (``gamma``: "scale", "auto" or a float)."""

    kind: str
    default: object = LIBRARY_DEFAULT
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    nullable: bool = False
    log: bool = False  # sample on a log scale in random search
    help: str = ""

    def check(self, name: str, value):
        if value is None:
            if self.nullable:
                return None
            raise HyperparameterError(name, "may not be null")
        if self.choices and value in self.choices and not isinstance(value, bool):
            return value
        if self.kind == "choice":
            raise HyperparameterError(name, f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise HyperparameterError(name, f"must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            allowed = f" or one of {', '.join(map(repr, self.choices))}" if self.choices else ""
            raise HyperparameterError(name, f"must be a{'n integer' if self.kind == 'int' else ' number'}"
                                            f"{allowed}, got {value!r}")
        if self.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise HyperparameterError(name, f"must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise HyperparameterError(name, "must be finite")
        if self.low is not None and value < self.low:
            raise HyperparameterError(name, f"must be at least {self.low}, got {value}")
        if self.high is not None and value > self.high:
            raise HyperparameterError(name, f"must be at most {self.high}, got {value}")
        return value


@dataclass(frozen=True)
class Estimator:
    name: str
    label: str
    params: dict[str, Param]
    builders: dict[str, Callable[[dict, int], object]] = field(default_factory=dict)
    staged: bool = False  # has staged_predict(_proba): per-iteration metrics

    @property
    def tasks(self) -> list[str]:
        return sorted(self.builders)


def _logistic(params: dict, seed: int):
    from sklearn.linear_model import LogisticRegression

    params = dict(params)
    # lbfgs handles pure L2; an L1 share needs saga.
    solver = "saga" if params.get("l1_ratio", 0.0) > 0 else "lbfgs"
    return LogisticRegression(**params, solver=solver, random_state=seed)


def _ridge_classifier(params: dict, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import RidgeClassifier

    # RidgeClassifier has no predict_proba; calibration gives the
    # probabilities ROC AUC, log loss and serving need.
    return CalibratedClassifierCV(RidgeClassifier(**params), method="sigmoid", cv=3, ensemble=False)


def _ridge(params: dict, seed: int):
    from sklearn.linear_model import Ridge

    return Ridge(**params)


def _svc(params: dict, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # SVC(probability=True) is deprecated in scikit-learn 1.9; calibrating
    # the decision function is the recommended replacement.
    return CalibratedClassifierCV(SVC(**params, random_state=seed), method="sigmoid", cv=3, ensemble=False)


def _svr(params: dict, seed: int):
    from sklearn.svm import SVR

    return SVR(**params)


def _sk(module: str, name: str, seeded: bool = True):
    def build(params: dict, seed: int):
        import importlib

        cls = getattr(importlib.import_module(module), name)
        return cls(**params, random_state=seed) if seeded else cls(**params)

    return build


_CLASS_WEIGHT = Param("choice", choices=("balanced",), nullable=True, help="null (equal weights) or 'balanced'")

ESTIMATORS: dict[str, Estimator] = {
    "logistic_regression": Estimator(
        "logistic_regression", "Logistic regression",
        {
            "C": Param("float", low=1e-6, high=1e6, log=True, help="inverse regularisation strength"),
            "l1_ratio": Param("float", low=0.0, high=1.0, help="0 = L2 (lbfgs), >0 mixes in L1 (saga)"),
            # 100 iterations often stop lbfgs short on unscaled lab data.
            "max_iter": Param("int", 1000, low=10, high=100_000),
            "tol": Param("float", low=1e-10, high=1.0, log=True),
            "class_weight": _CLASS_WEIGHT,
        },
        {CLASSIFICATION: _logistic},
    ),
    "ridge": Estimator(
        "ridge", "Ridge",
        {"alpha": Param("float", low=0.0, high=1e6, help="L2 regularisation strength")},
        {REGRESSION: _ridge, CLASSIFICATION: _ridge_classifier},
    ),
    "random_forest": Estimator(
        "random_forest", "Random forest",
        {
            "n_estimators": Param("int", low=1, high=5000),
            "max_depth": Param("int", low=1, high=200, nullable=True, help="null = unlimited"),
            "min_samples_split": Param("int", low=2, high=10_000),
            "min_samples_leaf": Param("int", low=1, high=10_000),
            "max_features": Param("float", low=0.01, high=1.0, choices=("sqrt", "log2"), nullable=True),
            "bootstrap": Param("bool"),
            "class_weight": Param("choice", choices=("balanced", "balanced_subsample"), nullable=True),
        },
        {CLASSIFICATION: _sk("sklearn.ensemble", "RandomForestClassifier"),
         REGRESSION: _sk("sklearn.ensemble", "RandomForestRegressor")},
    ),
    "gradient_boosting": Estimator(
        "gradient_boosting", "Gradient boosting",
        {
            "n_estimators": Param("int", low=1, high=5000),
            "learning_rate": Param("float", low=1e-4, high=1.0, log=True),
            "max_depth": Param("int", low=1, high=50, nullable=True),
            "subsample": Param("float", low=0.05, high=1.0),
            "min_samples_leaf": Param("int", low=1, high=10_000),
            "max_features": Param("float", low=0.01, high=1.0, choices=("sqrt", "log2"), nullable=True),
        },
        {CLASSIFICATION: _sk("sklearn.ensemble", "GradientBoostingClassifier"),
         REGRESSION: _sk("sklearn.ensemble", "GradientBoostingRegressor")},
        staged=True,
    ),
    "hist_gradient_boosting": Estimator(
        "hist_gradient_boosting", "Histogram gradient boosting",
        {
            "max_iter": Param("int", low=1, high=5000),
            "learning_rate": Param("float", low=1e-4, high=1.0, log=True),
            "max_depth": Param("int", low=1, high=200, nullable=True),
            "max_leaf_nodes": Param("int", low=2, high=10_000, nullable=True),
            "min_samples_leaf": Param("int", low=1, high=10_000),
            "l2_regularization": Param("float", low=0.0, high=1e6),
            # scikit-learn switches early stopping on above 10,000 rows
            # ("auto"); off by default here so a model's size does not
            # depend on the dataset's.
            "early_stopping": Param("bool", False, help="stop when the internal validation score stalls"),
            "class_weight": _CLASS_WEIGHT,
        },
        {CLASSIFICATION: _sk("sklearn.ensemble", "HistGradientBoostingClassifier"),
         REGRESSION: _sk("sklearn.ensemble", "HistGradientBoostingRegressor")},
        staged=True,
    ),
    "svm": Estimator(
        "svm", "Support vector machine",
        {
            "C": Param("float", low=1e-6, high=1e6, log=True),
            "kernel": Param("choice", choices=("rbf", "linear", "poly", "sigmoid")),
            "gamma": Param("float", low=1e-9, high=1e3, choices=("scale", "auto"), log=True),
            "degree": Param("int", low=1, high=10),
            "epsilon": Param("float", low=0.0, high=1e3, help="regression only"),
            "class_weight": _CLASS_WEIGHT,
        },
        {CLASSIFICATION: _svc, REGRESSION: _svr},
    ),
}

# Hyperparameters that only exist for one task.
_TASK_ONLY = {
    ("random_forest", "class_weight"): CLASSIFICATION,
    ("hist_gradient_boosting", "class_weight"): CLASSIFICATION,
    ("svm", "class_weight"): CLASSIFICATION,
    ("svm", "epsilon"): REGRESSION,
}


def estimator_names(task: str | None = None) -> list[str]:
    return [name for name, spec in ESTIMATORS.items() if task is None or task in spec.builders]


def params_for(estimator: str, task: str) -> dict[str, Param]:
    spec = ESTIMATORS[estimator]
    return {name: param for name, param in spec.params.items()
            if _TASK_ONLY.get((estimator, name), task) == task}


def check_estimator(estimator: str, task: str) -> Estimator:
    spec = ESTIMATORS.get(estimator)
    if spec is None:
        raise HyperparameterError("estimator", f"unknown estimator {estimator!r}; choose one of "
                                               f"{', '.join(ESTIMATORS)}")
    if task not in spec.builders:
        raise HyperparameterError("estimator", f"{estimator} does not do {task}; it does {', '.join(spec.tasks)}")
    return spec


def validate_hyperparameters(estimator: str, task: str, values: dict, *, prefix: str = "") -> dict:
    """The given hyperparameters, checked and normalised (ints as ints,
    floats as floats). Unknown names and wrong types raise
    ``HyperparameterError`` naming the parameter."""
    check_estimator(estimator, task)
    if not isinstance(values, dict):
        raise HyperparameterError(prefix.rstrip(".") or "hyperparameters", "must be an object")
    allowed = params_for(estimator, task)
    clean = {}
    for name, value in values.items():
        param = allowed.get(name)
        if param is None:
            raise HyperparameterError(f"{prefix}{name}", f"{estimator} ({task}) has no hyperparameter {name!r}; "
                                                         f"known: {', '.join(sorted(allowed))}")
        clean[name] = param.check(f"{prefix}{name}", value)
    return clean


def effective_hyperparameters(estimator: str, task: str, values: dict) -> dict:
    """The given values over the platform's defaults; hyperparameters left
    at scikit-learn's own default are not listed (and not passed)."""
    defaults = {name: param.default for name, param in params_for(estimator, task).items()
                if param.default != LIBRARY_DEFAULT}
    return {**defaults, **values}


def build_estimator(estimator: str, task: str, values: dict, *, seed: int):
    """An unfitted scikit-learn estimator with ``values`` (already validated)."""
    spec = check_estimator(estimator, task)
    return spec.builders[task](effective_hyperparameters(estimator, task, values), seed)


__all__ = [
    "CLASSIFICATION",
    "ESTIMATORS",
    "LIBRARY_DEFAULT",
    "REGRESSION",
    "Estimator",
    "HyperparameterError",
    "Param",
    "build_estimator",
    "check_estimator",
    "effective_hyperparameters",
    "estimator_names",
    "params_for",
    "validate_hyperparameters",
]
