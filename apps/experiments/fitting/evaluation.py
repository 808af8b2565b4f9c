"""Evaluating a fitted pipeline: the metrics of a split, per-iteration
metrics of boosting models, and the plots stored with a run.

No Django in here (plots are plotly figures as dicts). Metric keys are
listed in ``apps.experiments.fitting``."""

from __future__ import annotations

import math

import numpy as np

from apps.experiments import estimators as est

ITERATION_LOG_LIMIT = 2000  # iterations logged per staged estimator (evenly spaced beyond this)
MAX_RESIDUAL_POINTS = 2000  # markers in the residual plot (a fixed random sample beyond this)


def classification_metrics(y_true, proba: np.ndarray, classes: list, *, prefix: str) -> dict[str, float]:
    from sklearn import metrics as m

    classes_arr = np.asarray(classes)
    predicted = classes_arr[np.argmax(proba, axis=1)]
    y_true = np.asarray(y_true)
    out = {f"{prefix}_accuracy": m.accuracy_score(y_true, predicted)}
    if len(classes) == 2:
        positive = classes[1]
        kwargs = {"average": "binary", "pos_label": positive, "zero_division": 0}
        out[f"{prefix}_precision"] = m.precision_score(y_true, predicted, **kwargs)
        out[f"{prefix}_recall"] = m.recall_score(y_true, predicted, **kwargs)
        out[f"{prefix}_f1"] = m.f1_score(y_true, predicted, **kwargs)
        if len(set(y_true.tolist())) == 2:
            out[f"{prefix}_roc_auc"] = m.roc_auc_score(y_true == positive, proba[:, 1])
    else:
        kwargs = {"average": "weighted", "zero_division": 0}
        out[f"{prefix}_precision"] = m.precision_score(y_true, predicted, **kwargs)
        out[f"{prefix}_recall"] = m.recall_score(y_true, predicted, **kwargs)
        out[f"{prefix}_f1"] = m.f1_score(y_true, predicted, **kwargs)
        if len(set(y_true.tolist())) == len(classes):
            out[f"{prefix}_roc_auc"] = m.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted",
                                                       labels=classes_arr)
    out[f"{prefix}_log_loss"] = m.log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=classes_arr)
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


def regression_metrics(y_true, predicted, *, prefix: str) -> dict[str, float]:
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    out = {
        f"{prefix}_rmse": math.sqrt(m.mean_squared_error(y_true, predicted)),
        f"{prefix}_mae": m.mean_absolute_error(y_true, predicted),
    }
    if len(y_true) > 1:
        out[f"{prefix}_r2"] = m.r2_score(y_true, predicted)
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


def evaluate(pipeline, X, y, *, task: str, prefix: str) -> dict[str, float]:
    if task == est.CLASSIFICATION:
        return classification_metrics(y, pipeline.predict_proba(X), list(pipeline.classes_), prefix=prefix)
    return regression_metrics(y, pipeline.predict(X), prefix=prefix)

def _thin(steps: int) -> set[int]:
    if steps <= ITERATION_LOG_LIMIT:
        return set(range(steps))
    return {round(i) for i in np.linspace(0, steps - 1, ITERATION_LOG_LIMIT)}


def iteration_metrics(pipeline, X_eval, y_eval, *, task: str, classes: list | None) -> list[dict]:
    """Per-iteration metrics of a boosting model from staged predictions on
    the evaluation split, plus the training loss the estimator recorded."""
    from sklearn import metrics as m

    model = pipeline[-1]
    points: list[dict] = []
    if len(y_eval) == 0 or not hasattr(model, "staged_predict"):
        return points
    transformed = pipeline[:-1].transform(X_eval)
    if task == est.CLASSIFICATION:
        staged = model.staged_predict_proba(transformed)
        key = "iteration_val_log_loss"
        classes_arr = np.asarray(classes)
        y_true = np.asarray(y_eval)
        values = [m.log_loss(y_true, np.clip(p, 1e-15, 1.0), labels=classes_arr) for p in staged]
    else:
        staged = model.staged_predict(transformed)
        key = "iteration_val_rmse"
        y_true = np.asarray(y_eval, dtype=float)
        values = [math.sqrt(m.mean_squared_error(y_true, p)) for p in staged]
    keep = _thin(len(values))
    points.extend({"key": key, "value": float(v), "step": i + 1} for i, v in enumerate(values)
                  if i in keep and math.isfinite(v))
    train_loss = getattr(model, "train_score_", None)
    if train_loss is not None and len(train_loss):
        keep = _thin(len(train_loss))
        points.extend({"key": "iteration_train_loss", "value": float(v), "step": i + 1}
                      for i, v in enumerate(train_loss) if i in keep and math.isfinite(float(v)))
    return points


# --- Plots --------------------------------------------------------------------------

def plots(pipeline, X_test, y_test, *, task: str, classes: list | None) -> dict[str, dict]:
    import plotly.graph_objects as go
    from sklearn import metrics as m

    from apps.core.charts import figure_dict

    plots: dict[str, dict] = {}
    if task == est.CLASSIFICATION:
        proba = pipeline.predict_proba(X_test)
        classes_arr = np.asarray(classes)
        predicted = classes_arr[np.argmax(proba, axis=1)]
        y_true = np.asarray(y_test)
        matrix = m.confusion_matrix(y_true, predicted, labels=classes_arr)
        names = [str(c) for c in classes]
        fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", text=matrix,
                                   texttemplate="%{text}", hovertemplate="true %{y}, predicted %{x}: %{z}"))
        fig.update_layout(title="Confusion matrix (test split)", xaxis_title="predicted", yaxis_title="true",
                          yaxis_autorange="reversed")
        plots["plots/confusion_matrix.json"] = figure_dict(fig, height=380)
        fig = go.Figure()
        targets = [classes[1]] if len(classes) == 2 else list(classes)
        for label in targets:
            column = list(classes).index(label)
            truth = y_true == label
            if truth.all() or not truth.any():
                continue
            fpr, tpr, _ = m.roc_curve(truth, proba[:, column])
            auc = m.auc(fpr, tpr)
            fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{label} (AUC {auc:.3f})"))
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                 line={"dash": "dash", "color": "#999"}))
        fig.update_layout(title="ROC curve (test split)", xaxis_title="false positive rate",
                          yaxis_title="true positive rate")
        plots["plots/roc_curve.json"] = figure_dict(fig, height=380)
    else:
        predicted = pipeline.predict(X_test)
        y_true = np.asarray(y_test, dtype=float)
        residuals = y_true - predicted
        if len(residuals) > MAX_RESIDUAL_POINTS:  # SVG draws a few thousand markers quickly; a sample shows the shape
            keep = np.sort(np.random.default_rng(0).choice(len(residuals), MAX_RESIDUAL_POINTS, replace=False))
            predicted, residuals = np.asarray(predicted)[keep], residuals[keep]
        # SVG, not WebGL: plotly's WebGL layer compiles code with Function(), which the pages' CSP refuses.
        fig = go.Figure(go.Scatter(x=predicted, y=residuals, mode="markers", marker={"size": 5, "opacity": 0.6},
                                   name="residual"))
        fig.add_hline(y=0, line_dash="dash", line_color="#999")
        fig.update_layout(title="Residuals (test split)", xaxis_title="predicted", yaxis_title="actual - predicted")
        plots["plots/residuals.json"] = figure_dict(fig, height=380)
    importance = _feature_importance(pipeline)
    if importance:
        names, values = zip(*importance, strict=True)
        fig = go.Figure(go.Bar(x=list(values)[::-1], y=list(names)[::-1], orientation="h"))
        fig.update_layout(title="Feature importance", xaxis_title="importance",
                          margin={"l": 220})
        plots["plots/feature_importance.json"] = figure_dict(fig, height=max(300, 22 * len(names) + 120))
    return plots


def _feature_importance(pipeline, top: int = 25) -> list[tuple[str, float]]:
    """Impurity importances of tree ensembles, or absolute coefficients of
    linear models, against the transformed feature names."""
    model = pipeline[-1]
    values = getattr(model, "feature_importances_", None)
    if values is None and getattr(model, "coef_", None) is not None:
        coef = np.asarray(model.coef_)
        values = np.abs(coef).mean(axis=0) if coef.ndim > 1 else np.abs(coef)
    if values is None:
        return []
    try:
        names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [f"x{i}" for i in range(len(values))]
    if len(names) != len(values):
        return []
    order = np.argsort(values)[::-1][:top]
    return [(names[i], float(values[i])) for i in order]



__all__ = ["classification_metrics", "evaluate", "iteration_metrics", "plots", "regression_metrics"]
