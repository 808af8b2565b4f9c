"""Plotly figures of the drift report page, built on the server (apps.core.charts)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from apps.core.charts import figure_dict
from apps.monitoring.drift import METHODS

DRIFTED, STABLE, LIMIT = "#b3261e", "#2e8b57", "#1f4e79"
P_VALUE_FLOOR = 1e-300  # a log axis cannot show 0


def _label(name: str) -> str:
    """A column name (from an uploaded file) as plotly text: plotly reads a few
    HTML-like tags in labels, links among them; escaped, they show as typed."""
    return html.escape(name, quote=False)


def _panel(fig: go.Figure, group: list[dict], col: int, *, p_values: bool, first: bool) -> None:
    names = [_label(c["name"]) for c in group]
    values = [c["statistic"] if c["statistic"] is not None else 0.0 for c in group]
    if p_values:
        values = [max(v, P_VALUE_FLOOR) for v in values]
    fig.add_trace(go.Bar(
        x=names, y=values, name="p-value" if p_values else "distance",
        marker_color=[DRIFTED if c["drifted"] else STABLE for c in group],
        customdata=[[c["method"], c["threshold"], "drifted" if c["drifted"] else "no drift"] for c in group],
        hovertemplate="%{x}<br>%{customdata[0]} = %{y:.4g}<br>threshold %{customdata[1]:g}: %{customdata[2]}"
                      "<extra></extra>",
    ), row=1, col=col)
    fig.add_trace(go.Scatter(
        x=names, y=[c["threshold"] for c in group], mode="markers", name="threshold", showlegend=first,
        marker={"symbol": "line-ew-open", "size": 26, "color": LIMIT, "line": {"width": 3}}, hoverinfo="skip",
    ), row=1, col=col)


def drift_statistic_figure(columns: list[dict]) -> dict | None:
    """Each column's statistic beside its threshold (red bars drifted): distances
    (drift at or above the threshold) and, on a log axis, p-values (drift below it)."""
    if not columns:
        return None
    p_cols = [c for c in columns if METHODS[c["method"]].is_p_value]
    d_cols = [c for c in columns if not METHODS[c["method"]].is_p_value]
    panels = [(group, p) for group, p in ((d_cols, False), (p_cols, True)) if group]
    fig = make_subplots(
        rows=1, cols=len(panels), column_widths=[len(g) for g, _ in panels],
        subplot_titles=[("p-values (drift below the threshold)" if p else "distances (drift at or above)")
                        for _, p in panels],
    )
    for index, (group, p_values) in enumerate(panels, start=1):
        _panel(fig, group, index, p_values=p_values, first=index == 1)
        if p_values:
            fig.update_yaxes(type="log", row=1, col=index)
        else:
            fig.update_yaxes(rangemode="tozero", row=1, col=index)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.35}, bargap=0.3)
    return figure_dict(fig, height=380)


__all__ = ["drift_statistic_figure"]
