"""Plotly figures of a version's quality report (built server-side, drawn by
static/js/charts.js with the local plotly.js)."""

from __future__ import annotations

from itertools import pairwise

import plotly.graph_objects as go

from apps.core.charts import figure_dict

MAX_DISTRIBUTIONS = 40


def distribution_figures(report: dict, schema: dict) -> list[dict]:
    """One small figure per column: a histogram (numbers) or a bar chart
    (categories, booleans), in schema order. Returns [{"column", "id", "figure"}]."""
    distributions = report.get("distributions") or {}
    out = []
    for position, column in enumerate(schema.get("columns", [])):
        name = column["name"]
        dist = distributions.get(name)
        if not dist:
            continue
        if dist["kind"] == "histogram":
            edges = dist["edges"]
            centres = [(a + b) / 2 for a, b in pairwise(edges)]
            widths = [b - a for a, b in pairwise(edges)]
            fig = go.Figure(go.Bar(x=centres, y=dist["counts"], width=widths, marker_color="#1f4e79",
                                   hovertemplate="%{x}: %{y}<extra></extra>"))
        else:
            fig = go.Figure(go.Bar(x=dist["labels"], y=dist["counts"], marker_color="#3a7d44",
                                   hovertemplate="%{x}: %{y}<extra></extra>"))
        fig.update_layout(title={"text": f"{name} ({column['type']})", "font": {"size": 13}}, bargap=0.05,
                          margin={"t": 36, "r": 10, "b": 40, "l": 50}, showlegend=False)
        out.append({"column": name, "id": f"dist-{position}", "figure": figure_dict(fig, height=240)})
        if len(out) >= MAX_DISTRIBUTIONS:
            break
    return out


def missing_map_figure(report: dict) -> dict | None:
    """Heatmap of the missing share per column (x) and block of rows (y, by
    row number, first row at the top). The y axis is categorical: left to
    guess, plotly reads labels such as "1-12" as dates."""
    missing = report.get("missing_map") or {}
    if not missing.get("columns") or not missing.get("row_ranges"):
        return None
    z = [list(row) for row in zip(*missing["shares"], strict=True)]  # rows = row blocks
    labels = [f"rows {start:,} to {end:,}" for start, end in missing["row_ranges"]]
    fig = go.Figure(go.Heatmap(
        z=z, x=missing["columns"], y=labels, zmin=0, zmax=1, colorscale="Reds",
        colorbar={"title": "missing"}, hovertemplate="%{x}, %{y}: %{z:.1%} missing<extra></extra>",
    ))
    fig.update_layout(title="Missing values by column and row block",
                      yaxis={"type": "category", "autorange": "reversed", "title": "row number"},
                      xaxis={"type": "category", "tickangle": -45})
    return figure_dict(fig, height=420)


def correlation_figure(report: dict) -> dict | None:
    """Heatmap of the pairwise Pearson correlations between numeric columns."""
    corr = report.get("correlation") or {}
    if len(corr.get("columns") or []) < 2:
        return None
    fig = go.Figure(go.Heatmap(
        z=corr["matrix"], x=corr["columns"], y=corr["columns"], zmin=-1, zmax=1, colorscale="RdBu",
        reversescale=True, colorbar={"title": "r"}, hovertemplate="%{x} vs %{y}: r = %{z:.2f}<extra></extra>",
    ))
    fig.update_layout(title="Correlation of numeric columns (Pearson)", xaxis={"tickangle": -45},
                      yaxis={"autorange": "reversed"})
    return figure_dict(fig, height=460)
