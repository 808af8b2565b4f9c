"""Quality-gate rules and the scoring behind them, with no Django in it.

A registered model's ``quality_gates`` setting is normalised by
:func:`normalize_gates`; the registry's services then feed these functions the
scores they computed on the platform's holdout. Metric gates never read the
metrics a run logged: those are what the client reported, shown next to the
platform's score for comparison only.

Scores follow scikit-learn's definitions (``sklearn.metrics``): accuracy,
precision/recall/F1 (binary for two classes, support-weighted average
otherwise), ROC AUC (of the positive class's probability for two classes,
one-vs-rest weighted otherwise), log loss, RMSE (square root of
``mean_squared_error``), MAE and R². The regression gate compares two models'
scores *on the same rows* and measures the degradation in the metric's own
direction (a higher RMSE is worse, a higher ROC AUC is better).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
SCORABLE = HIGHER_IS_BETTER | LOWER_IS_BETTER
CLASSIFICATION_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"})
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
GATE_KEYS = {"metrics", "max_regression", "require_valid_signature", "require_valid_dataset"}
# A margin this small is rounding, not a regression.
EPSILON = 1e-12


class GateConfigError(ValueError):
    """The quality-gate setting of a registered model is malformed."""


def base_metric(name: str) -> str:
    """``test_roc_auc`` → ``roc_auc``: evaluation metrics are logged with a
    ``test_`` prefix; gates may name them either way."""
    return name[5:] if name.startswith("test_") else name


def lookup_metric(metrics: Mapping[str, Any], name: str) -> float | None:
    """The value of ``name`` in a version's metrics, trying the ``test_`` form."""
    for key in (name, f"test_{base_metric(name)}"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GateConfigError(f"{where} must be a finite number.")
    return float(value)


def normalize_gates(raw: Mapping | None) -> dict:
    """Check a ``quality_gates`` setting and fill in defaults.

    ``{"metrics": [{"metric", "op", "threshold"}], "max_regression": {"metric", "margin"} | None,
    "require_valid_signature": bool, "require_valid_dataset": bool}``; both
    ``require_*`` default to true."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise GateConfigError("quality_gates must be an object.")
    unknown = set(raw) - GATE_KEYS
    if unknown:
        raise GateConfigError(f"Unknown quality-gate settings: {', '.join(sorted(unknown))}.")
    rules = raw.get("metrics") or []
    if not isinstance(rules, Sequence) or isinstance(rules, (str, bytes)):
        raise GateConfigError("quality_gates.metrics must be a list.")
    metrics = []
    for index, rule in enumerate(rules):
        where = f"quality_gates.metrics[{index}]"
        if not isinstance(rule, Mapping) or not isinstance(rule.get("metric"), str) or not rule["metric"]:
            raise GateConfigError(f"{where} needs a metric name.")
        if base_metric(rule["metric"]) not in SCORABLE:
            raise GateConfigError(
                f"{where}.metric must be one of {', '.join(sorted(SCORABLE))} (optionally test_...): metric "
                "gates are scored by the platform on its holdout, not read from what a run logged.")
        op = rule.get("op", ">=")
        if op not in OPERATORS:
            raise GateConfigError(f"{where}.op must be one of {', '.join(OPERATORS)}.")
        metrics.append({"metric": rule["metric"], "op": op,
                        "threshold": _number(rule.get("threshold"), f"{where}.threshold")})
    regression = raw.get("max_regression")
    if regression is not None:
        if not isinstance(regression, Mapping) or not isinstance(regression.get("metric"), str):
            raise GateConfigError("quality_gates.max_regression needs a metric name.")
        if base_metric(regression["metric"]) not in SCORABLE:
            raise GateConfigError(
                f"quality_gates.max_regression.metric must be one of {', '.join(sorted(SCORABLE))} "
                "(it is recomputed on the evaluation rows)."
            )
        margin = _number(regression.get("margin", 0.0), "quality_gates.max_regression.margin")
        if margin < 0:
            raise GateConfigError("quality_gates.max_regression.margin must not be negative.")
        regression = {"metric": regression["metric"], "margin": margin}
    flags = {}
    for key in ("require_valid_signature", "require_valid_dataset"):
        value = raw.get(key, True)
        if not isinstance(value, bool):
            raise GateConfigError(f"quality_gates.{key} must be true or false.")
        flags[key] = value
    return {"metrics": metrics, "max_regression": regression, **flags}


def metric_threshold_result(rule: Mapping, *, value: float, reported: float | None = None) -> dict:
    """One threshold gate: is the platform's score ``op threshold``?
    ``reported`` is what the client logged for the metric, kept for the
    approver to compare, never judged."""
    passed = OPERATORS[rule["op"]](value, rule["threshold"])
    return {"gate": "metric_threshold", "metric": rule["metric"], "op": rule["op"], "threshold": rule["threshold"],
            "value": value, "reported_value": reported, "passed": passed,
            "message": f"{rule['metric']} = {value:.4f} on the platform's holdout "
                       f"{'meets' if passed else 'misses'} {rule['op']} {rule['threshold']}"
                       + (f" (the client reported {reported:.4f})" if reported is not None else "")}


def regression_result(metric: str, *, candidate: float, production: float, margin: float) -> dict:
    """The regression gate: how much worse the candidate scores than the
    current Production version on the same rows, against the allowed margin."""
    name = base_metric(metric)
    degradation = production - candidate if name in HIGHER_IS_BETTER else candidate - production
    passed = degradation <= margin + EPSILON
    return {
        "gate": "max_regression", "metric": metric, "candidate": candidate, "production": production,
        "degradation": degradation, "margin": margin, "passed": passed,
        "message": (f"{metric}: candidate {candidate:.4f} vs Production {production:.4f} "
                    f"({'within' if passed else 'beyond'} the allowed margin of {margin})"),
    }


# --- Signatures -------------------------------------------------------------------

def signature_problems(signature: Any) -> list[str]:
    """What is wrong with a signature's structure (empty when it is usable):
    ``{"inputs": [{"name": str, "type": str, ...}, ...], ...}`` with unique names."""
    if not isinstance(signature, Mapping):
        return ["The signature is not a JSON object."]
    inputs = signature.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return ["The signature has no list of inputs."]
    problems = []
    seen = set()
    for index, column in enumerate(inputs):
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str) or not column["name"]:
            problems.append(f"inputs[{index}] has no name.")
            continue
        if not isinstance(column.get("type"), str) or not column["type"]:
            problems.append(f"inputs[{index}] ({column['name']}) has no type.")
        if column["name"] in seen:
            problems.append(f"Input {column['name']!r} appears twice.")
        seen.add(column["name"])
    return problems


def signature_input_names(signature: Mapping) -> list[str]:
    return [c["name"] for c in signature.get("inputs", []) if isinstance(c, Mapping) and "name" in c]


def column_mismatch(signature_names: Sequence[str], model_features: Sequence[str]) -> list[str]:
    """Differences between the signature's inputs and the columns the fitted
    model was trained on (``feature_names_in_``); empty when they agree."""
    declared, expected = set(signature_names), set(model_features)
    problems = []
    if missing := sorted(expected - declared):
        problems.append(f"The model needs columns the signature lacks: {', '.join(missing)}.")
    if extra := sorted(declared - expected):
        problems.append(f"The signature declares columns the model does not use: {', '.join(extra)}.")
    return problems


# --- Scoring ------------------------------------------------------------------------

def _positive_scores(proba: np.ndarray) -> np.ndarray:
    return proba[:, 1] if proba.ndim == 2 else proba


def score_predictions(metric: str, *, y_true, y_pred=None, proba=None, classes=None) -> float:
    """One evaluation metric from predictions (and class probabilities for
    ROC AUC and log loss). ``classes`` is the estimator's ``classes_`` order."""
    from sklearn import metrics as skm

    name = base_metric(metric)
    y_true = np.asarray(y_true)
    if name in ("roc_auc", "log_loss"):
        if proba is None or classes is None:
            raise ValueError(f"{name} needs predicted probabilities.")
        proba = np.asarray(proba, dtype=float)
        classes = list(classes)
        if name == "log_loss":
            return float(skm.log_loss(y_true, proba, labels=classes))
        if len(classes) == 2:
            return float(skm.roc_auc_score(y_true == classes[1], _positive_scores(proba)))
        return float(skm.roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="weighted"))
    if y_pred is None:
        raise ValueError(f"{name} needs predictions.")
    y_pred = np.asarray(y_pred)
    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name in ("precision", "recall", "f1"):
        labels = list(classes) if classes is not None else sorted(set(y_true.tolist()) | set(y_pred.tolist()))
        kwargs = {"zero_division": 0}
        if len(labels) == 2:
            kwargs.update(average="binary", pos_label=labels[1])
        else:
            kwargs.update(average="weighted", labels=labels)
        scorer = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]
        return float(scorer(y_true, y_pred, **kwargs))
    if name == "rmse":
        return float(math.sqrt(skm.mean_squared_error(y_true, y_pred)))
    if name == "mae":
        return float(skm.mean_absolute_error(y_true, y_pred))
    if name == "r2":
        return float(skm.r2_score(y_true, y_pred))
    raise ValueError(f"Unknown metric {metric!r}.")


def score_estimator(model, metric: str, X, y_true) -> float:
    """Score a fitted estimator (anything with ``predict``; ``predict_proba``
    for ROC AUC and log loss) on the rows ``X`` with labels ``y_true``."""
    name = base_metric(metric)
    if name in ("roc_auc", "log_loss"):
        if not hasattr(model, "predict_proba"):
            raise ValueError(f"The model has no predict_proba, so {name} cannot be computed.")
        return score_predictions(metric, y_true=y_true, proba=model.predict_proba(X), classes=model.classes_)
    return score_predictions(metric, y_true=y_true, y_pred=model.predict(X), classes=getattr(model, "classes_", None))
