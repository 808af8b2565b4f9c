"""Helpers for server-built plotly figures shown with static/js/charts.js."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio


def figure_dict(fig: go.Figure, *, height: int | None = None) -> dict:
    """A figure as plain JSON-safe data, for ``json_script`` or a JSON response."""
    fig.update_layout(template="plotly_white", font={"family": "system-ui, sans-serif", "size": 12})
    if height:
        fig.update_layout(height=height)
    return json.loads(pio.to_json(fig, validate=False, engine="json"))
