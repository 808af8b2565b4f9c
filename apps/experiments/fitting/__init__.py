"""Fitting a scikit-learn pipeline on a dataset frame and evaluating it, in
the worker (no Celery, no views): ``fit.py`` splits, cross-validates, fits
and packages; ``evaluation.py`` computes metrics and plots.

Metric keys (the registry's quality gates rely on them): classification
``{split}_accuracy``, ``_precision``, ``_recall``, ``_f1``, ``_roc_auc``,
``_log_loss``; regression ``{split}_rmse``, ``_mae``, ``_r2``, for split
``test`` and ``val``; ``cv_<metric>`` per fold (step = fold) with
``cv_<metric>_mean``/``_std``; ``training_duration_s`` (the final fit)."""

from apps.experiments.fitting.evaluation import classification_metrics, regression_metrics
from apps.experiments.fitting.fit import (
    Hooks,
    TrainingError,
    TrainingOutcome,
    TrainingSpec,
    holdout_positions,
    input_example,
    json_safe,
    split_positions,
    target_labels,
    train,
)

__all__ = [
    "Hooks",
    "TrainingError",
    "TrainingOutcome",
    "TrainingSpec",
    "classification_metrics",
    "holdout_positions",
    "input_example",
    "json_safe",
    "regression_metrics",
    "split_positions",
    "target_labels",
    "train",
]
