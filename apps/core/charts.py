"""Helpers for server-built plotly figures shown with static/js/charts.js.

A page settles when its charts are drawn, and plotly's SVG drawing grows
with the number of points: every line trace that reaches the browser is cut
to ``MAX_POINTS`` here (min/max per bucket, first and last point kept), so a
page never waits on a long series. WebGL traces (``scattergl``) would draw
long series faster, but plotly's WebGL layer compiles its shaders with
``Function()``, which the Content-Security-Policy refuses ('unsafe-eval'):
the charts stay SVG, and downsampling keeps them small.
"""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

MAX_POINTS = 1000
LABEL_CHARS = 16


def downsample_series(x, y, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices (ascending) of at most about ``max_points`` points of ``(x, y)``
    that draw the same line: the series is cut into equal-count buckets and
    each bucket keeps its minimum and its maximum (in their order), so
    spikes survive; the first and the last point are always kept. Missing
    values (None/NaN) count as neither minimum nor maximum. Every index when
    the series is short enough."""
    size = len(y)
    if size <= max_points or max_points < 4:
        return np.arange(size)
    values = np.asarray([np.nan if v is None else v for v in y], dtype=np.float64)
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(1, size - 1, buckets + 1).astype(np.int64)
    chosen = [0, size - 1]
    for start, stop in pairwise(edges):
        if stop <= start:
            continue
        chunk = values[start:stop]
        if np.all(np.isnan(chunk)):
            chosen.append(int(start))
            continue
        chosen += [int(start + np.nanargmin(chunk)), int(start + np.nanargmax(chunk))]
    return np.unique(np.asarray(chosen, dtype=np.int64))


def _thin(trace: dict, max_points: int) -> None:
    """Downsample one scatter trace in place (x, y and per-point arrays)."""
    y = trace.get("y")
    if trace.get("type") not in ("scatter", None) or not isinstance(y, list) or len(y) <= max_points:
        return
    x = trace.get("x") if isinstance(trace.get("x"), list) else list(range(len(y)))
    keep = downsample_series(x, y, max_points)
    size = len(y)
    for name in ("x", "y", "text", "hovertext", "customdata"):
        if isinstance(trace.get(name), list) and len(trace[name]) == size:
            trace[name] = [trace[name][i] for i in keep]
    if "x" not in trace:
        trace["x"] = [x[i] for i in keep]
    marker = trace.get("marker") or {}
    for name in ("color", "size", "symbol"):
        if isinstance(marker.get(name), list) and len(marker[name]) == size:
            marker[name] = [marker[name][i] for i in keep]


def figure_dict(fig: go.Figure, *, height: int | None = None, max_points: int = MAX_POINTS) -> dict:
    """A figure as plain JSON-safe data, for ``json_script`` or a JSON
    response, with every long line trace downsampled to ``max_points``."""
    fig.update_layout(template="plotly_white", font={"family": "system-ui, sans-serif", "size": 12})
    if height:
        fig.update_layout(height=height)
    data = json.loads(pio.to_json(fig, validate=False, engine="json"))
    for trace in data.get("data", []):
        _thin(trace, max_points)
    _slim_template(data)
    return data


def _slim_template(data: dict) -> None:
    """Keep only the parts of the theme this figure uses: the full template
    is 7 KB per figure (defaults for 3-D scenes, maps, polar plots...), and
    a page with 40 small charts carried it 40 times."""
    template = (data.get("layout") or {}).get("template")
    if not isinstance(template, dict):
        return
    used = {trace.get("type", "scatter") for trace in data.get("data", [])}
    template["data"] = {kind: value for kind, value in (template.get("data") or {}).items() if kind in used}
    for unused in ("geo", "polar", "scene", "ternary", "mapbox", "map"):
        (template.get("layout") or {}).pop(unused, None)


def truncate_label(text: str, limit: int = LABEL_CHARS) -> str:
    """A label short enough to sit beside its neighbours on an axis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MAX_POINTS", "downsample_series", "figure_dict", "truncate_label"]
