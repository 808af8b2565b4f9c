"""LTTB downsampling (pure numpy)."""

import time

import numpy as np
import pytest

from apps.experiments.downsample import downsample, lttb


def test_short_series_are_returned_whole():
    assert list(lttb(np.arange(5), np.arange(5), 10)) == [0, 1, 2, 3, 4]
    assert list(downsample([0, 1], [3, 4], 3)) == [0, 1]


def test_n_points_first_and_last_kept_sorted_unique():
    x = np.arange(10_000)
    y = np.random.default_rng(1).normal(size=x.size).cumsum()
    for n in (3, 10, 257, 1000):
        chosen = downsample(x, y, n)
        assert len(chosen) == n
        assert chosen[0] == 0 and chosen[-1] == x.size - 1
        assert np.all(np.diff(chosen) > 0)


def test_one_point_per_bucket_like_the_reference_algorithm():
    # A hand-checkable case: 8 points, 4 kept (first, last and two buckets
    # of three). Bucket 1 (points 1-3) against a=(0,0) and the mean of
    # bucket 2 (points 4-6 -> (5, 0)): the point at height 5 makes the
    # largest triangle. Bucket 2 against a=(2,5) and the last point (7,0):
    # the point at -4 does.
    x = np.arange(8)
    y = np.array([0, 1, 5, 1, 0, -4, 0, 0], dtype=float)
    assert list(lttb(x, y, 4)) == [0, 2, 5, 7]


def test_shape_is_preserved_for_a_sine():
    x = np.linspace(0, 4 * np.pi, 50_000)
    y = np.sin(x)
    chosen = downsample(x, y, 200)
    # Interpolating the kept points reproduces the curve closely.
    rebuilt = np.interp(x, x[chosen], y[chosen])
    assert np.max(np.abs(rebuilt - y)) < 0.01
    assert y[chosen].max() == pytest.approx(1.0, abs=1e-3)
    assert y[chosen].min() == pytest.approx(-1.0, abs=1e-3)


def test_global_extremes_are_always_kept():
    rng = np.random.default_rng(7)
    for trial in range(50):
        size = int(rng.integers(50, 5000))
        y = rng.normal(size=size)
        # Put the extremes near each other so that they often share a bucket.
        spot = int(rng.integers(1, size - 2))
        y[spot], y[spot + 1] = 100.0, -100.0
        chosen = downsample(np.arange(size), y, int(rng.integers(3, 60)))
        assert spot in chosen or len(chosen) == 3, trial
        assert spot + 1 in chosen or len(chosen) == 3, trial
        assert np.all(np.diff(chosen) > 0)
    # Plain LTTB may miss a lone extreme; downsample never does.
    y = np.zeros(1000)
    y[500] = -0.001
    assert 500 in downsample(np.arange(1000), y, 10)


def test_a_million_points_is_fast():
    x = np.arange(1_000_000, dtype=float)
    y = np.random.default_rng(3).normal(size=x.size).cumsum()
    downsample(x[:1000], y[:1000], 100)
    start = time.perf_counter()
    chosen = downsample(x, y, 1000)
    elapsed = time.perf_counter() - start
    assert len(chosen) == 1000
    assert elapsed < 1.0, elapsed


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        lttb([1, 2, 3], [1, 2], 2)
