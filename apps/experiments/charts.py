"""Plotly figures of the experiments pages, built on the server from
downsampled histories (so a million-point metric is a few hundred points by
the time it reaches the browser). All SVG: see apps/core/charts.py for why
there are no WebGL traces, and why parallel coordinates are drawn as lines
over normalised axes rather than with plotly's WebGL-only ``parcoords``."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from apps.core.charts import MAX_POINTS, figure_dict, truncate_label
from apps.core.errors import NotFound
from apps.experiments.selectors import metric_history

CHART_POINTS = MAX_POINTS
OVERLAY_POINTS = 500
PALETTE = ["#1f4e79", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b8860b"]


def is_fold_metric(key: str) -> bool:
    """``cv_<metric>`` holds one value per cross-validation fold (step = fold);
    its ``_mean`` and ``_std`` are single values."""
    return key.startswith("cv_") and not key.endswith(("_mean", "_std"))


def run_label(run) -> str:
    return f"{run.name or 'run'} #{run.pk}"


def _text(value) -> str:
    """User text as plotly shows it: plotly reads a few HTML-like tags in
    labels, links among them; escaped, they show as typed."""
    return html.escape(str(value), quote=False)


def metric_history_figure(*, run, key: str, max_points: int = CHART_POINTS) -> dict:
    history = metric_history(run=run, key=key, max_points=max_points)
    points = history["points"]
    if is_fold_metric(key):
        return _folds_bar_figure(key, points)
    note = f" (downsampled from {history['total']:,} points)" if history["downsampled"] else ""
    fig = go.Figure(go.Scatter(x=[p["step"] for p in points], y=[p["value"] for p in points],
                               mode="lines+markers" if len(points) < 60 else "lines", name=key))
    fig.update_layout(title=f"{_text(key)}{note}", xaxis_title="step", yaxis_title=_text(key), showlegend=False)
    return figure_dict(fig, height=300, max_points=max_points)


def _folds_bar_figure(key: str, points: list[dict]) -> dict:
    """One bar per cross-validation fold, with the mean as a dashed line."""
    values = [p["value"] for p in points]
    fig = go.Figure(go.Bar(x=[f"fold {p['step']}" for p in points], y=values, marker_color=PALETTE[0],
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>", name=key))
    if values:
        mean = sum(values) / len(values)
        fig.add_hline(y=mean, line_dash="dash", line_color=PALETTE[1],
                      annotation_text=f"mean {mean:.4f}", annotation_position="top left")
    fig.update_layout(title=f"{_text(key)} by cross-validation fold", xaxis={"type": "category"},
                      yaxis_title=_text(key), showlegend=False)
    return figure_dict(fig, height=300)


def compare_overlay_figure(*, runs: list, key: str, max_points: int = OVERLAY_POINTS) -> dict:
    """One line per run of metric ``key`` over steps, the legend naming the
    run; runs with a single point show as markers. The card's heading is
    the title."""
    fig = go.Figure()
    for index, run in enumerate(runs):
        try:
            history = metric_history(run=run, key=key, max_points=max_points)
        except NotFound:
            continue
        points = history["points"]
        fig.add_trace(go.Scatter(x=[p["step"] for p in points], y=[p["value"] for p in points],
                                 mode="lines+markers" if len(points) < 60 else "lines",
                                 name=_text(run_label(run)), line={"color": PALETTE[index % len(PALETTE)]},
                                 hovertemplate="step %{x}: %{y:.4g}<extra>%{fullData.name}</extra>"))
    fig.update_layout(xaxis_title="step", yaxis_title=_text(key), showlegend=True,
                      legend={"title": {"text": "Run"}, "orientation": "h", "y": -0.25},
                      margin={"t": 20, "r": 20, "b": 60, "l": 60})
    return figure_dict(fig, height=400, max_points=max_points)


def cv_folds_figure(*, runs: list, key: str) -> dict | None:
    """The fold scores of cross-validation metric ``key`` as one box per run
    (every fold shown as a point), or None when no run has folds of it."""
    fig = go.Figure()
    for index, run in enumerate(runs):
        try:
            points = metric_history(run=run, key=key)["points"]
        except NotFound:
            continue
        fig.add_trace(go.Box(y=[p["value"] for p in points], name=_text(run_label(run)), boxpoints="all",
                             boxmean=True, jitter=0.3, pointpos=0, marker_color=PALETTE[index % len(PALETTE)],
                             text=[f"fold {p['step']}" for p in points],
                             hovertemplate="%{text}: %{y:.4f}<extra>%{fullData.name}</extra>"))
    if not fig.data:
        return None
    fig.update_layout(yaxis_title=_text(key), showlegend=False, xaxis={"type": "category"},
                      margin={"t": 20, "r": 20, "b": 60, "l": 60})
    return figure_dict(fig, height=360)


def _as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _axes(runs: list, metric: str) -> list[dict]:
    """Param axes where the runs differ (numeric where every value parses as
    a number, otherwise categorical), then the metric: each with the runs'
    positions in [0, 1], the text of each value, and the axis' end labels."""
    axes = []
    keys = sorted({key for run in runs for key in run.param_map})
    columns = [(key, [run.param_map.get(key) for run in runs]) for key in keys]
    columns.append((metric, [run.metric_map[metric] for run in runs]))
    for key, values in columns:
        if key != metric and len({str(v) for v in values}) <= 1:
            continue  # an axis where every run agrees says nothing
        numbers = [_as_number(v) for v in values]
        if all(n is not None for n in numbers):
            low, high = min(numbers), max(numbers)
            span = (high - low) or 1.0
            positions = [(n - low) / span if high > low else 0.5 for n in numbers]
            texts = [f"{n:.4g}" for n in numbers]
            ends = (f"{low:.4g}", f"{high:.4g}")
        else:
            labels = sorted({str(v) for v in values})
            positions = [labels.index(str(v)) / max(len(labels) - 1, 1) for v in values]
            texts = [str(v) for v in values]
            ends = (labels[0], labels[-1])
        axes.append({"label": key, "positions": positions, "texts": texts, "ends": ends})
    return axes


def parallel_coordinates_figure(*, runs: list, metric: str) -> dict | None:
    """Params against the latest value of ``metric``: one line per run over
    vertical axes (one per param that differs, the metric last), coloured by
    the metric. Drawn as SVG lines, so the page needs no 'unsafe-eval'.
    Axis names are truncated to fit beside each other, in full on hover;
    the card's heading is the title."""
    with_metric = [run for run in runs if metric in run.metric_map]
    if not with_metric:
        return None
    axes = _axes(with_metric, metric)
    scores = [run.metric_map[metric] for run in with_metric]
    low, high = min(scores), max(scores)
    colours = sample_colorscale("Viridis", [(s - low) / (high - low) if high > low else 0.5 for s in scores])
    xs = list(range(len(axes)))
    fig = go.Figure()
    for position, run in enumerate(with_metric):
        fig.add_trace(go.Scatter(
            x=xs, y=[axis["positions"][position] for axis in axes], mode="lines+markers",
            name=_text(run_label(run)), line={"color": colours[position], "width": 2},
            marker={"size": 6, "color": colours[position]},
            customdata=[[_text(axis["label"]), _text(axis["texts"][position])] for axis in axes],
            hovertemplate="%{customdata[0]}: %{customdata[1]}<extra>%{fullData.name}</extra>",
        ))
    # The colour scale, from an invisible marker trace.
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                             marker={"color": [low, high], "colorscale": "Viridis", "showscale": True,
                                     "cmin": low, "cmax": high,
                                     "colorbar": {"title": {"text": _text(truncate_label(metric))},
                                                  "thickness": 12}}))
    annotations = []
    # The chart sits in half a card: the more axes, the shorter their names.
    limit = max(8, min(14, 60 // len(axes)))
    for x, axis in zip(xs, axes, strict=True):
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, line={"color": "#888", "width": 1}, layer="below")
        annotations.append({"x": x, "y": 1.08, "text": f"<b>{_text(truncate_label(axis['label'], limit))}</b>",
                            "hovertext": _text(axis["label"]), "showarrow": False, "yanchor": "bottom",
                            "font": {"size": 11}})
        for y, end in zip((0, 1), axis["ends"], strict=True):
            annotations.append({"x": x, "y": y, "text": _text(truncate_label(end, 12)), "showarrow": False,
                                "xanchor": "left", "xshift": 4, "font": {"size": 10, "color": "#555"}})
    fig.update_layout(
        annotations=annotations, showlegend=len(with_metric) <= 12,
        legend={"orientation": "h", "y": -0.08, "title": {"text": "Run"}},
        xaxis={"visible": False, "range": [-0.3, len(axes) - 0.6]},
        yaxis={"visible": False, "range": [-0.05, 1.2]},
        margin={"t": 20, "r": 20, "b": 40, "l": 20}, hovermode="closest",
    )
    return figure_dict(fig, height=440)


__all__ = ["compare_overlay_figure", "cv_folds_figure", "is_fold_metric", "metric_history_figure",
           "parallel_coordinates_figure", "run_label"]
