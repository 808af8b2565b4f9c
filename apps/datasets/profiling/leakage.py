"""Columns that give the target away on their own.

A column recorded after the outcome (the hours a sample took when a failed
QC added a re-extraction, a "reviewed_by_qc" flag) predicts the target in
the data and is useless, or misleading, when the model is used. On a sample
of rows, each feature is scored alone:

* binary target: single-column ROC AUC (numbers as scores; categories by
  the target rate of each category), flagged at ``AUC_THRESHOLD`` = 0.98
  (either direction);
* a categorical target with more classes: accuracy of a depth-2 decision
  tree on the column, flagged at ``ACCURACY_THRESHOLD`` = 0.99 when the
  majority class alone is below it;
* a numeric target: R² of the best straight line, flagged at ``R2_THRESHOLD`` = 0.98.

A flag is a warning in the quality report and a note in the feature-spec
editor; it never makes a version invalid (the column may be legitimate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AUC_THRESHOLD = 0.98
ACCURACY_THRESHOLD = 0.99
R2_THRESHOLD = 0.98
SAMPLE_ROWS = 20_000
MIN_ROWS = 50
MAX_LEVELS = 50


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return None
    auc = float(roc_auc_score(positive, score))
    return max(auc, 1.0 - auc)


def _as_score(values: pd.Series, kind: str, positive: np.ndarray) -> np.ndarray | None:
    if kind in ("integer", "float", "boolean"):
        return values.astype("float64").to_numpy()
    levels = values.astype(str)
    # Target rates of rare categories fit the sample, not the world.
    if levels.nunique() > MAX_LEVELS or levels.nunique() * 20 > len(levels):
        return None
    return levels.map(pd.Series(positive, index=levels.index).groupby(levels).mean()).to_numpy()


def find_leaks(frame: pd.DataFrame, *, schema: dict, target: str) -> list[dict]:
    """Columns of ``frame`` (typed as the schema says) that predict ``target`` alone."""
    if not target or target not in frame.columns:
        return []
    columns = {c["name"]: c for c in schema["columns"]}
    target_kind = columns[target]["type"]
    y_all = frame[target]
    distinct = y_all.dropna().nunique()
    if distinct < 2:
        return []
    flags = []
    for name, column in columns.items():
        if name == target or column["role"] != "feature" or column["type"] not in (
                "integer", "float", "boolean", "categorical"):
            continue
        present = frame[name].notna() & y_all.notna()
        if int(present.sum()) < MIN_ROWS:
            continue
        x, y = frame.loc[present, name], y_all[present]
        flag = _score(x, y, kind=column["type"], target_kind=target_kind, distinct=distinct)
        if flag is not None:
            metric, value, threshold = flag
            flags.append({"column": name, "metric": metric, "value": round(value, 4), "threshold": threshold,
                          "rows": int(present.sum()),
                          "message": f"{name!r} alone predicts {target!r} ({metric} {value:.3f} ≥ {threshold}): "
                                     "was it recorded after the outcome? Consider dropping it from the features."})
    return flags


def _score(x: pd.Series, y: pd.Series, *, kind: str, target_kind: str, distinct: int):
    if distinct == 2:
        labels = sorted(y.astype(str).unique())
        positive = (y.astype(str) == labels[-1]).to_numpy()
        score = _as_score(x, kind, positive)
        auc = _auc(score, positive) if score is not None else None
        if auc is not None and auc >= AUC_THRESHOLD:
            return "single-column ROC AUC", auc, AUC_THRESHOLD
        return None
    if target_kind in ("integer", "float") and distinct > MAX_LEVELS:
        if kind not in ("integer", "float", "boolean"):
            return None
        xs, ys = x.astype("float64").to_numpy(), y.astype("float64").to_numpy()
        if xs.std() == 0 or ys.std() == 0:
            return None
        r2 = float(np.corrcoef(xs, ys)[0, 1] ** 2)
        return ("single-column R²", r2, R2_THRESHOLD) if r2 >= R2_THRESHOLD else None
    if distinct > MAX_LEVELS:
        return None
    from sklearn.tree import DecisionTreeClassifier

    labels = y.astype(str).to_numpy()
    majority = pd.Series(labels).value_counts(normalize=True).iloc[0]
    if majority >= ACCURACY_THRESHOLD:
        return None
    if kind in ("integer", "float", "boolean"):
        features = x.astype("float64").to_numpy().reshape(-1, 1)
    else:
        features = pd.get_dummies(x.astype(str)).to_numpy(dtype=float)
    accuracy = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, labels).score(features, labels)
    return ("depth-2 tree accuracy", float(accuracy), ACCURACY_THRESHOLD) if accuracy >= ACCURACY_THRESHOLD else None
