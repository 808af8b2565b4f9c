"""Server-built plotly figures for the registry pages."""

from __future__ import annotations

import plotly.graph_objects as go

from apps.core.charts import figure_dict
from apps.registry import quality
from apps.registry.templatetags.registry_labels import stage_label

MAX_VERSIONS = 12


def version_metrics_figure(versions) -> dict | None:
    """Evaluation metrics (``test_*``) of the newest versions side by side,
    one group of bars per metric, so a regression is visible at a glance.
    Metrics where lower is better (log loss, RMSE, MAE) are marked ↓."""
    versions = sorted(versions, key=lambda v: v.version)[-MAX_VERSIONS:]
    keys = sorted({k for v in versions for k, value in v.metrics.items()
                   if k.startswith("test_") and isinstance(value, (int, float))})
    if not keys:
        return None
    labels = [f"{quality.base_metric(k)}{' ↓' if quality.base_metric(k) in quality.LOWER_IS_BETTER else ''}"
              for k in keys]
    fig = go.Figure()
    for version in versions:
        fig.add_bar(name=f"v{version.version} ({stage_label(version.stage)})", x=labels,
                    y=[version.metrics.get(k) for k in keys],
                    hovertemplate="%{x}: %{y:.4f}<extra>v" + str(version.version) + "</extra>")
    fig.update_layout(barmode="group", title="Evaluation metrics by version", yaxis_title="value",
                      legend={"orientation": "h", "y": -0.2})
    return figure_dict(fig, height=360)
