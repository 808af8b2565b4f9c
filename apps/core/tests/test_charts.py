"""The shared figure helpers: downsampling of long lines and the slim theme."""

import math

import numpy as np
import plotly.graph_objects as go

from apps.core.charts import MAX_POINTS, downsample_series, figure_dict, truncate_label


def test_a_short_series_is_kept_whole():
    assert list(downsample_series(range(10), list(range(10)), 100)) == list(range(10))


def test_downsampling_keeps_the_ends_and_every_spike():
    size = 100_000
    y = [math.sin(i / 500) for i in range(size)]
    y[12_345] = 50.0
    y[77_777] = -50.0
    keep = downsample_series(range(size), y, 1000)
    assert len(keep) <= 1000
    assert keep[0] == 0 and keep[-1] == size - 1
    assert 12_345 in keep and 77_777 in keep
    assert list(keep) == sorted(set(keep))


def test_missing_values_do_not_break_the_buckets():
    y = [None if i % 3 == 0 else float(i) for i in range(5000)]
    keep = downsample_series(range(5000), y, 500)
    assert len(keep) <= 500 and keep[-1] == 4999


def test_figure_dict_thins_every_long_line_and_keeps_short_traces():
    fig = go.Figure()
    fig.add_scatter(x=list(range(20_000)), y=list(np.random.default_rng(1).normal(size=20_000)), name="long")
    fig.add_scatter(x=[1, 2, 3], y=[1, 2, 3], name="short")
    fig.add_bar(x=["a", "b"], y=[1, 2])
    data = figure_dict(fig)
    long, short, bar = data["data"]
    assert len(long["x"]) == len(long["y"]) <= MAX_POINTS and long["x"][0] == 0 and long["x"][-1] == 19_999
    assert short["y"] == [1, 2, 3] and bar["y"] == [1, 2]


def test_figure_dict_carries_only_the_theme_parts_its_traces_use():
    data = figure_dict(go.Figure(go.Bar(x=[1], y=[1])))
    template = data["layout"]["template"]
    assert set(template["data"]) == {"bar"}
    assert "scene" not in template["layout"] and "plot_bgcolor" in template["layout"]


def test_truncate_label():
    assert truncate_label("estimator") == "estimator"
    assert truncate_label("preprocessing__numeric__strategy", 16) == "preprocessing__…"
