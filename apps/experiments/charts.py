"""Plotly figures of the experiments pages, built on the server from
downsampled histories (so a million-point metric is a few hundred points by
the time it reaches the browser)."""

from __future__ import annotations

import plotly.graph_objects as go

from apps.core.charts import figure_dict
from apps.core.errors import NotFound
from apps.experiments.selectors import metric_history

CHART_POINTS = 1000
OVERLAY_POINTS = 500


def metric_history_figure(*, run, key: str, max_points: int = CHART_POINTS) -> dict:
    history = metric_history(run=run, key=key, max_points=max_points)
    points = history["points"]
    note = f" (downsampled from {history['total']:,} points)" if history["downsampled"] else ""
    # SVG, not WebGL: a downsampled history is small, and WebGL traces compile
    # their shaders with Function(), which the Content-Security-Policy refuses.
    fig = go.Figure(go.Scatter(x=[p["step"] for p in points], y=[p["value"] for p in points],
                               mode="lines+markers" if len(points) < 60 else "lines", name=key))
    fig.update_layout(title=f"{key}{note}", xaxis_title="step", yaxis_title=key, showlegend=False)
    return figure_dict(fig, height=300)


def compare_overlay_figure(*, runs: list, key: str, max_points: int = OVERLAY_POINTS) -> dict:
    """One line per run of metric ``key`` over steps; runs with a single
    point show as markers."""
    fig = go.Figure()
    for run in runs:
        try:
            history = metric_history(run=run, key=key, max_points=max_points)
        except NotFound:
            continue
        points = history["points"]
        fig.add_trace(go.Scatter(x=[p["step"] for p in points], y=[p["value"] for p in points],
                                 mode="lines+markers" if len(points) < 60 else "lines",
                                 name=f"{run.name or 'run'} #{run.pk}"))
    fig.update_layout(title=f"{key} by step", xaxis_title="step", yaxis_title=key)
    return figure_dict(fig, height=380)


def _as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parallel_coordinates_figure(*, runs: list, metric: str) -> dict | None:
    """Params (numeric axes where every value parses as a number, otherwise
    categorical axes) against the latest value of ``metric``, one line per run."""
    with_metric = [run for run in runs if metric in run.metric_map]
    if not with_metric:
        return None
    keys = sorted({key for run in with_metric for key in run.param_map})
    dimensions = []
    for key in keys:
        values = [run.param_map.get(key) for run in with_metric]
        if len({v for v in values}) <= 1:
            continue  # an axis where every run agrees says nothing
        numbers = [_as_number(v) for v in values]
        if all(n is not None for n in numbers):
            dimensions.append({"label": key, "values": numbers})
        else:
            labels = sorted({str(v) for v in values})
            dimensions.append({"label": key, "values": [labels.index(str(v)) for v in values],
                               "tickvals": list(range(len(labels))), "ticktext": labels})
    scores = [run.metric_map[metric] for run in with_metric]
    dimensions.append({"label": metric, "values": scores})
    fig = go.Figure(go.Parcoords(line={"color": scores, "colorscale": "Viridis", "showscale": True},
                                 dimensions=dimensions))
    fig.update_layout(title=f"Params against {metric}")
    return figure_dict(fig, height=420)


__all__ = ["compare_overlay_figure", "metric_history_figure", "parallel_coordinates_figure"]
