"""Shape-preserving downsampling of metric histories for charts.

Largest-Triangle-Three-Buckets (LTTB), from Sveinn Steinarsson, "Downsampling
Time Series for Visual Representation", MSc thesis, University of Iceland,
2013 (https://skemman.is/handle/1946/15343), section 4.2. The first and last
points are kept; the rest is cut into ``n - 2`` buckets of equal count, and
from each bucket the point forming the largest triangle with the point chosen
in the previous bucket and the mean of the next bucket is kept.

LTTB keeps spikes in practice but does not promise to keep the global
extremes; ``downsample`` adds that promise (a chart of a loss must show its
minimum) by swapping the global minimum and maximum into their buckets.

The choice in one bucket depends on the previous choice, so the loop runs
over buckets; inside a bucket the areas are computed with numpy, which keeps
a million points to a few tens of milliseconds. No Django in here.
"""

from __future__ import annotations

import numpy as np


def lttb(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Indices (ascending) of ``n`` points chosen by LTTB from ``(x, y)``,
    which must be sorted by ``x``. Returns every index when ``n`` covers the
    data."""
    return _lttb(x, y, n)[0]


def _lttb(x, y, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    size = len(x)
    if len(y) != size:
        raise ValueError("x and y must have the same length")
    if n >= size or size <= 2:
        return np.arange(size), None
    if n < 3:
        raise ValueError("LTTB needs at least 3 points (first, last and one bucket)")

    # Bucket b holds the interior points edges[b] .. edges[b+1]-1 (equal counts).
    edges = np.floor(np.linspace(1, size - 1, n - 1)).astype(np.int64)
    edges[-1] = size - 1
    # Mean of each bucket, used as the third vertex for the bucket before it.
    cumx = np.concatenate(([0.0], np.cumsum(x)))
    cumy = np.concatenate(([0.0], np.cumsum(y)))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    mean_x = (cumx[edges[1:]] - cumx[edges[:-1]]) / counts
    mean_y = (cumy[edges[1:]] - cumy[edges[:-1]]) / counts
    # The last bucket's "next" vertex is the last point itself.
    next_x = np.append(mean_x[1:], x[-1])
    next_y = np.append(mean_y[1:], y[-1])

    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = 0
    chosen[-1] = size - 1
    a = 0
    for bucket in range(n - 2):
        start, stop = edges[bucket], max(edges[bucket + 1], edges[bucket] + 1)
        bx = x[start:stop]
        by = y[start:stop]
        ax, ay = x[a], y[a]
        cx, cy = next_x[bucket], next_y[bucket]
        # Twice the triangle area; the factor does not change the argmax.
        area = np.abs((ax - cx) * (by - ay) - (ax - bx) * (cy - ay))
        a = start + int(np.argmax(area))
        chosen[bucket + 1] = a
    return chosen, edges


def downsample(x, y, n: int, *, keep_extremes: bool = True) -> np.ndarray:
    """LTTB indices, with the global minimum and maximum of ``y`` guaranteed
    among them: each replaces the point chosen in its own bucket (or, when
    both fall in one bucket, the second takes a neighbouring bucket's slot),
    so the result still has ``n`` points, sorted."""
    y_arr = np.asarray(y, dtype=np.float64)
    chosen, edges = _lttb(x, y_arr, n)
    if not keep_extremes or edges is None:
        return chosen
    size = len(y_arr)
    taken: set[int] = set()
    for extreme in sorted({int(np.argmin(y_arr)), int(np.argmax(y_arr))}):
        if extreme in (0, size - 1):
            continue
        slot = int(np.searchsorted(edges, extreme, side="right"))  # bucket index + 1
        if chosen[slot] == extreme:
            taken.add(slot)
            continue
        if slot in taken:
            slot = slot + 1 if slot + 1 <= n - 2 else slot - 1
            if slot < 1 or slot in taken:
                continue
        chosen[slot] = extreme
        taken.add(slot)
    chosen.sort()
    return chosen


__all__ = ["downsample", "lttb"]
