"""Plotly figures of the endpoint page, built on the server (apps.core.charts)."""

from __future__ import annotations

import plotly.graph_objects as go

from apps.core.charts import figure_dict

PALETTE = ["#1f4e79", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#16a085"]


def traffic_split_figure(split: list[dict]) -> dict:
    """One horizontal stacked bar: each live deployment's share of requests."""
    fig = go.Figure()
    for index, item in enumerate(split):
        label = f"{item['model']} v{item['version']}"
        fig.add_bar(
            y=["traffic"], x=[item["traffic_weight"]], orientation="h", name=label,
            marker_color=PALETTE[index % len(PALETTE)],
            text=[f"{label}: {item['traffic_weight']:g} %"], textposition="inside",
            hovertemplate=f"{label} ({item['status']}, {item['rollout_state']})<br>%{{x:g}} %<extra></extra>",
        )
    fig.update_layout(barmode="stack", showlegend=True, xaxis={"range": [0, 100], "title": "% of requests"},
                      yaxis={"visible": False}, legend={"orientation": "h", "y": -0.4},
                      title="Current traffic split" if split else "No deployment serves this endpoint")
    return figure_dict(fig, height=200)


def live_figure(metrics: dict, kind: str) -> dict:
    """Requests per second, latency percentiles or error rate over the window."""
    series = metrics["series"]
    fig = go.Figure()
    if kind == "latency":
        for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            fig.add_scatter(x=series["t"], y=series[key], mode="lines+markers", name=name, connectgaps=False)
        fig.update_layout(title="Latency (ms)", yaxis={"title": "ms", "rangemode": "tozero"})
    elif kind == "errors":
        fig.add_scatter(x=series["t"], y=series["error_rate"], mode="lines+markers", name="error rate",
                        line_color="#b3261e")
        fig.update_layout(title="Error rate", yaxis={"tickformat": ".0%", "rangemode": "tozero"})
    else:
        fig.add_scatter(x=series["t"], y=series["rps"], mode="lines", name="requests/s", fill="tozeroy")
        fig.update_layout(title="Requests per second", yaxis={"rangemode": "tozero"})
    fig.update_layout(showlegend=kind == "latency", legend={"orientation": "h", "y": -0.25})
    return figure_dict(fig, height=280)


__all__ = ["live_figure", "traffic_split_figure"]
