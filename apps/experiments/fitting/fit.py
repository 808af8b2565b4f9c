"""Training a scikit-learn pipeline on a dataset frame and evaluating it.

No Django in here: the worker's service
(``services/training_execution.py``) loads the data,
passes ``Hooks`` for progress and metric logging, and stores what
``train`` returns. The pipeline is the dataset's compiled feature spec
(``apps.datasets.features.build_preprocessor``) followed by the estimator,
so the registry and serving load one object that takes raw columns.

Metric keys (the registry's quality gates rely on them): classification
``{split}_accuracy``, ``_precision``, ``_recall``, ``_f1``, ``_roc_auc``,
``_log_loss``; regression ``{split}_rmse``, ``_mae``, ``_r2``, for split
``test`` and ``val``; ``cv_<metric>`` per fold (step = fold) with
``cv_<metric>_mean``/``_std``; ``training_duration_s`` (the final fit).
Per iteration of boosting (step = iteration): ``iteration_val_log_loss`` or
``iteration_val_rmse`` from staged predictions, and ``iteration_train_loss``
where the estimator records it.

Binary classification takes the second of the sorted classes as positive
(1 for 0/1, True for booleans); multi-class precision, recall, F1 and ROC
AUC are support-weighted averages (ROC AUC one-vs-rest).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apps.experiments import estimators as est
from apps.experiments.fitting.evaluation import evaluate, iteration_metrics, plots

MIN_ROWS = 20


class TrainingError(ValueError):
    """The data cannot be trained on as asked (too few rows, one class...)."""


@dataclass
class TrainingSpec:
    task: str
    estimator: str
    hyperparameters: dict
    target: str
    feature_spec: dict
    schema: dict
    test_size: float = 0.2
    validation_size: float = 0.1
    seed: int = 42
    stratify: bool = True
    cv_folds: int = 0


@dataclass
class Hooks:
    """``progress(fraction, message)`` may raise to stop training (a
    cancelled job); ``log_metrics(list of {"key", "value", "step"})`` sends
    metrics to the run as they are computed."""

    progress: Callable[[float, str], None] = lambda fraction, message: None
    log_metrics: Callable[[list[dict]], None] = lambda metrics: None


@dataclass
class TrainingOutcome:
    pipeline: object
    metrics: dict[str, float]
    artifacts: dict[str, bytes] = field(default_factory=dict)
    classes: list | None = None
    rows: dict[str, int] = field(default_factory=dict)


# --- Splitting ----------------------------------------------------------------------

def split_positions(y: pd.Series, *, task: str, test_size: float, validation_size: float, seed: int,
                    stratify: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions (into ``y``) of the train, validation and test splits,
    seeded; stratified by class for classification when asked and possible."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(y))
    labels = y.to_numpy()
    use_strata = stratify and task == est.CLASSIFICATION
    if use_strata:
        counts = pd.Series(labels).value_counts()
        smallest = int(counts.min())
        if smallest < 3:
            raise TrainingError(f"Class {counts.idxmin()!r} has only {smallest} row(s); stratified splitting needs "
                                "at least 3 per class (or set split.stratify to false).")
    train_val, test = train_test_split(positions, test_size=test_size, random_state=seed,
                                       stratify=labels if use_strata else None)
    if validation_size <= 0:
        return np.sort(train_val), np.array([], dtype=int), np.sort(test)
    relative = validation_size / (1.0 - test_size)
    train, val = train_test_split(train_val, test_size=relative, random_state=seed,
                                  stratify=labels[train_val] if use_strata else None)
    return np.sort(train), np.sort(val), np.sort(test)


# --- Helpers ------------------------------------------------------------------------

def json_safe(value):
    """Numpy scalars and arrays as plain Python, NaN as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_bytes(data) -> bytes:
    return json.dumps(json_safe(data), indent=None, separators=(",", ":")).encode()


def input_example(frame: pd.DataFrame, rows: int = 5) -> list[dict]:
    """A few input rows as JSON-safe records (missing values as null, times
    as ISO strings)."""
    return json.loads(frame.head(rows).to_json(orient="records", date_format="iso"))


def _labels(y: pd.Series, task: str) -> pd.Series:
    """Target values as the model should see them: floats for regression;
    for classification integers, booleans or strings (never floats that
    happen to hold 0.0/1.0 because the file had gaps)."""
    if task == est.REGRESSION:
        try:
            return y.astype("float64")
        except (TypeError, ValueError):
            raise TrainingError(f"The target {y.name!r} is not numeric; train a classifier instead.")
    if pd.api.types.is_bool_dtype(y.dtype):
        return y.astype(bool)
    if pd.api.types.is_integer_dtype(y.dtype):
        return y.astype("int64")
    if pd.api.types.is_float_dtype(y.dtype):
        values = y.to_numpy(dtype=float)
        if np.all(np.equal(np.mod(values, 1), 0)):
            return y.astype("int64")
        raise TrainingError(f"The target {y.name!r} holds fractional numbers; train a regression instead.")
    return y.astype(str).astype(object)


def _cross_validate(make_pipeline, X, y, *, task: str, folds: int, seed: int, stratify: bool,
                    hooks: Hooks, start: float, end: float) -> dict[str, float]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == est.CLASSIFICATION and stratify:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y)), y.to_numpy()))
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y))))
    per_fold: dict[str, list[float]] = {}
    for fold, (fit_idx, eval_idx) in enumerate(splits):
        hooks.progress(start + (end - start) * fold / folds, f"Cross-validation fold {fold + 1} of {folds}")
        pipeline = make_pipeline()
        pipeline.fit(X.iloc[fit_idx], y.iloc[fit_idx])
        scores = evaluate(pipeline, X.iloc[eval_idx], y.iloc[eval_idx], task=task, prefix="cv")
        hooks.log_metrics([{"key": k, "value": v, "step": fold} for k, v in scores.items()])
        for key, value in scores.items():
            per_fold.setdefault(key, []).append(value)
    summary = {}
    for key, values in per_fold.items():
        summary[f"{key}_mean"] = float(np.mean(values))
        summary[f"{key}_std"] = float(np.std(values))
    hooks.log_metrics([{"key": k, "value": v, "step": 0} for k, v in summary.items()])
    return summary


# --- Training -----------------------------------------------------------------------

def _split(frame: pd.DataFrame, spec: TrainingSpec) -> tuple[np.ndarray, pd.Series, tuple]:
    """(positions of the rows with a target in ``frame``, their labels, and
    the train/validation/test positions into those rows)."""
    if spec.target not in frame.columns:
        raise TrainingError(f"The dataset version has no column {spec.target!r}.")
    positions = np.flatnonzero(frame[spec.target].notna().to_numpy())
    y = _labels(frame.iloc[positions][spec.target], spec.task)
    if len(y) < MIN_ROWS:
        raise TrainingError(f"Only {len(y)} rows have a value for {spec.target!r}; at least {MIN_ROWS} are needed.")
    if spec.task == est.CLASSIFICATION:
        distinct = y.nunique()
        if distinct < 2:
            raise TrainingError(f"The target {spec.target!r} has a single class ({y.iloc[0]!r}); nothing to learn.")
        if distinct > 100:
            raise TrainingError(f"The target {spec.target!r} has {distinct} classes; is it really a label? "
                                "Train a regression instead.")
    splits = split_positions(y, task=spec.task, test_size=spec.test_size, validation_size=spec.validation_size,
                             seed=spec.seed, stratify=spec.stratify)
    return positions, y, splits


def holdout_positions(frame: pd.DataFrame, spec: TrainingSpec) -> np.ndarray:
    """Positions in ``frame`` of the test split :func:`train` holds out for
    ``spec``: the same rows, recomputed from the recorded split settings, so
    that the registry can re-score a model on them without trusting anything
    the run stored."""
    positions, _, (_, _, test_pos) = _split(frame, spec)
    return positions[test_pos]


def target_labels(values: pd.Series, task: str) -> pd.Series:
    """Target values as :func:`train` gives them to the model."""
    return _labels(values, task)


def train(frame: pd.DataFrame, spec: TrainingSpec, hooks: Hooks | None = None) -> TrainingOutcome:
    """Split, optionally cross-validate, fit, evaluate and package a model.

    ``frame`` is the dataset version's frame (row positions in it are what
    ``evaluation/test_indices.json`` records). Returns the fitted pipeline,
    the evaluation metrics (also sent through ``hooks.log_metrics``) and the
    artifacts to store, by path."""
    from sklearn.pipeline import Pipeline

    from apps.datasets.features import build_preprocessor, feature_columns, input_signature

    hooks = hooks or Hooks()
    hooks.progress(0.05, "Preparing data")
    columns = feature_columns(spec=spec.feature_spec, schema=spec.schema, target=spec.target)
    positions, y, (train_pos, val_pos, test_pos) = _split(frame, spec)
    X = frame.iloc[positions][columns]

    def make_pipeline():
        return Pipeline([
            ("preprocess", build_preprocessor(spec=spec.feature_spec, schema=spec.schema, target=spec.target)),
            ("model", est.build_estimator(spec.estimator, spec.task, spec.hyperparameters, seed=spec.seed)),
        ])

    X_train, y_train = X.iloc[train_pos], y.iloc[train_pos]
    X_val, y_val = X.iloc[val_pos], y.iloc[val_pos]
    X_test, y_test = X.iloc[test_pos], y.iloc[test_pos]
    metrics: dict[str, float] = {}
    if spec.cv_folds >= 2:
        metrics.update(_cross_validate(make_pipeline, X_train, y_train, task=spec.task, folds=spec.cv_folds,
                                       seed=spec.seed, stratify=spec.stratify, hooks=hooks,
                                       start=0.1, end=0.5))

    hooks.progress(0.55, f"Fitting {spec.estimator} on {len(train_pos)} rows")
    pipeline = make_pipeline()
    started = time.perf_counter()
    pipeline.fit(X_train, y_train)
    metrics["training_duration_s"] = time.perf_counter() - started
    classes = list(pipeline.classes_) if spec.task == est.CLASSIFICATION else None

    hooks.progress(0.75, "Evaluating")
    iterations = iteration_metrics(pipeline, X_val if len(val_pos) else X_test, y_val if len(val_pos) else y_test,
                                    task=spec.task, classes=classes)
    for start in range(0, len(iterations), 1000):
        hooks.log_metrics(iterations[start:start + 1000])
    metrics.update(evaluate(pipeline, X_test, y_test, task=spec.task, prefix="test"))
    if len(val_pos):
        metrics.update(evaluate(pipeline, X_val, y_val, task=spec.task, prefix="val"))
    hooks.log_metrics([{"key": k, "value": v, "step": 0} for k, v in metrics.items()
                       if not k.startswith("cv_")])

    hooks.progress(0.85, "Packaging the model")
    from apps.core.modelio import dumps

    signature = input_signature(spec=spec.feature_spec, schema=spec.schema, target=spec.target, task=spec.task)
    if classes is not None:
        signature["classes"] = json_safe(classes)
    artifacts = {
        "model/model.skops": dumps(pipeline),
        "model/signature.json": _json_bytes(signature),
        "model/input_example.json": _json_bytes(input_example(X_test if len(X_test) else X_train)),
        # Positions in the dataset version's frame, not in the rows kept.
        "evaluation/test_indices.json": _json_bytes([int(p) for p in positions[test_pos]]),
    }
    if spec.task == est.CLASSIFICATION:
        from sklearn.metrics import confusion_matrix

        predicted = np.asarray(classes)[np.argmax(pipeline.predict_proba(X_test), axis=1)]
        matrix = confusion_matrix(np.asarray(y_test), predicted,
                                  labels=np.asarray(classes))
        artifacts["evaluation/confusion_matrix.json"] = _json_bytes({"labels": classes, "matrix": matrix,
                                                                     "rows": "true", "columns": "predicted"})
    for path, figure in plots(pipeline, X_test, y_test, task=spec.task, classes=classes).items():
        artifacts[path] = json.dumps(figure, separators=(",", ":")).encode()
    return TrainingOutcome(pipeline=pipeline, metrics=metrics, artifacts=artifacts, classes=json_safe(classes),
                           rows={"train": len(train_pos), "validation": len(val_pos), "test": len(test_pos),
                                 "dropped_missing_target": int(len(frame) - len(positions))})


__all__ = [
    "Hooks",
    "TrainingError",
    "TrainingOutcome",
    "TrainingSpec",
    "holdout_positions",
    "input_example",
    "json_safe",
    "split_positions",
    "target_labels",
    "train",
]
