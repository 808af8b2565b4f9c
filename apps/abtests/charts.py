"""Plotly figures of the A/B test page, built on the server (apps.core.charts)
and drawn by static/js/charts.js with the local plotly bundle."""

from __future__ import annotations

import plotly.graph_objects as go

from apps.core.charts import figure_dict

PALETTE = ["#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#16a085"]
BANDS = ["rgba(217,130,43,0.18)", "rgba(46,139,87,0.18)", "rgba(142,68,173,0.18)", "rgba(192,57,43,0.18)",
         "rgba(22,160,133,0.18)"]


def lift_figure(history: dict) -> dict:
    """Each challenger's cumulative relative lift over the control by day,
    with its interval as a shaded band, and the zero line."""
    fig = go.Figure()
    for i, series in enumerate(history["series"]):
        color, band = PALETTE[i % len(PALETTE)], BANDS[i % len(BANDS)]
        fig.add_scatter(x=series["days"], y=series["upper"], mode="lines", line={"width": 0}, showlegend=False,
                        hoverinfo="skip", legendgroup=series["arm"])
        fig.add_scatter(x=series["days"], y=series["lower"], mode="lines", line={"width": 0}, fill="tonexty",
                        fillcolor=band, name=f"{series['arm']} interval", legendgroup=series["arm"],
                        hovertemplate="%{x}: lower %{y:+.2%}<extra></extra>")
        fig.add_scatter(x=series["days"], y=series["estimate"], mode="lines+markers", line_color=color,
                        name=f"{series['arm']} lift", legendgroup=series["arm"],
                        hovertemplate="%{x}: lift %{y:+.2%}<extra></extra>")
    fig.add_hline(y=0, line_dash="dot", line_color="#555")
    fig.update_layout(title=history.get("error") or "Lift over the control (cumulative), with its interval",
                      yaxis={"tickformat": "+.0%", "title": "relative lift"}, xaxis={"title": "day"},
                      legend={"orientation": "h", "y": -0.25})
    return figure_dict(fig, height=340)
