"""Hyperparameter search spaces: validating a grid or random space against
an estimator's hyperparameters, expanding it into candidates, and the
metrics a search may rank candidates by.

No Django in here."""

from __future__ import annotations

import itertools
import math
import random

from apps.experiments.estimators.catalogue import CLASSIFICATION, HyperparameterError, params_for

MAX_CANDIDATES = 100
MAX_RANDOM_ITERATIONS = 100
DISTRIBUTIONS = ("uniform", "loguniform", "int_uniform", "int_loguniform")


def validate_space(estimator: str, task: str, kind: str, space: dict) -> dict:
    """A search space: hyperparameter → list of values (grid or random), or
    for random search ``{"distribution": "uniform"|"loguniform"|"int_uniform"|
    "int_loguniform", "low", "high"}``. Every value is checked like a
    hyperparameter."""
    if kind not in ("grid", "random"):
        raise HyperparameterError("search.kind", "must be 'grid' or 'random'")
    if not isinstance(space, dict) or not space:
        raise HyperparameterError("search.space", "must be a non-empty object of hyperparameter: values")
    allowed = params_for(estimator, task)
    clean = {}
    for name, entry in space.items():
        where = f"search.space.{name}"
        param = allowed.get(name)
        if param is None:
            raise HyperparameterError(where, f"{estimator} ({task}) has no hyperparameter {name!r}; "
                                             f"known: {', '.join(sorted(allowed))}")
        if isinstance(entry, list):
            if not entry:
                raise HyperparameterError(where, "needs at least one value")
            clean[name] = [param.check(f"{where}[{i}]", v) for i, v in enumerate(entry)]
        elif isinstance(entry, dict) and kind == "random":
            distribution = entry.get("distribution")
            if distribution not in DISTRIBUTIONS:
                raise HyperparameterError(f"{where}.distribution", f"must be one of {', '.join(DISTRIBUTIONS)}")
            if param.kind not in ("int", "float"):
                raise HyperparameterError(where, "a distribution needs a numeric hyperparameter")
            low = param.check(f"{where}.low", entry.get("low"))
            high = param.check(f"{where}.high", entry.get("high"))
            if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or low >= high:
                raise HyperparameterError(where, "needs numeric low < high")
            if distribution.endswith("loguniform") and low <= 0:
                raise HyperparameterError(f"{where}.low", "a log-uniform range must be positive")
            clean[name] = {"distribution": distribution, "low": low, "high": high}
        else:
            raise HyperparameterError(where, "must be a list of values" + (
                " or a distribution object" if kind == "random" else ""))
    if kind == "grid":
        size = math.prod(len(values) for values in clean.values())
        if size > MAX_CANDIDATES:
            raise HyperparameterError("search.space", f"the grid has {size} candidates; at most {MAX_CANDIDATES}")
    return clean


def expand_space(kind: str, space: dict, *, n_iter: int = 10, seed: int = 0) -> list[dict]:
    """Candidates of a validated space: the full grid in a stable order, or
    ``n_iter`` random draws (seeded, duplicates dropped)."""
    names = sorted(space)
    if kind == "grid":
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n] for n in names))]
    if not 1 <= n_iter <= MAX_RANDOM_ITERATIONS:
        raise HyperparameterError("search.n_iter", f"must be between 1 and {MAX_RANDOM_ITERATIONS}")
    rng = random.Random(seed)
    candidates, seen = [], set()
    for _ in range(n_iter * 20):
        if len(candidates) == n_iter:
            break
        candidate = {name: _draw(rng, space[name]) for name in names}
        key = tuple(repr(candidate[n]) for n in names)
        if key not in seen:
            seen.add(key)
            candidates.append(candidate)
    return candidates


def _draw(rng: random.Random, entry):
    if isinstance(entry, list):
        return entry[rng.randrange(len(entry))]
    low, high, distribution = entry["low"], entry["high"], entry["distribution"]
    if distribution == "uniform":
        return rng.uniform(low, high)
    if distribution == "loguniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if distribution == "int_uniform":
        return rng.randint(int(low), int(high))
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


# --- Metrics --------------------------------------------------------------------------

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def evaluation_metrics(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == CLASSIFICATION else REGRESSION_METRICS


def default_search_metric(task: str) -> str:
    return "val_roc_auc" if task == CLASSIFICATION else "val_rmse"


def check_search_metric(task: str, metric: str) -> str:
    names = [f"{split}_{m}" for split in ("val", "cv") for m in evaluation_metrics(task)]
    if metric not in names:
        raise HyperparameterError("search.metric", f"must be one of {', '.join(names)}")
    return metric


def higher_is_better(metric: str) -> bool:
    base = metric.split("_", 1)[1] if "_" in metric else metric
    base = base.removesuffix("_mean")
    return base not in LOWER_IS_BETTER


__all__ = [
    "DISTRIBUTIONS",
    "MAX_CANDIDATES",
    "MAX_RANDOM_ITERATIONS",
    "check_search_metric",
    "default_search_metric",
    "evaluation_metrics",
    "expand_space",
    "higher_is_better",
    "validate_space",
]
