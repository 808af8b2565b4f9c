"""Fixed histogram buckets for the metric series, and quantiles read off
them. No Django here.

The bucket edges never change, so histograms from different minutes, hours
or worker processes merge by adding their counts element-wise, and a
percentile of the merged counts is a percentile of all the requests — what
Prometheus' ``histogram_quantile`` does with its ``le`` buckets.

Latency: upper edges ``0.1 ms · 2^(i/4)`` for ``i = 0..80`` (0.1 ms to about
105 s, each bucket 19 % wider than the one below), plus an overflow bucket.
Bucket ``i`` holds values in ``(edge[i-1], edge[i]]`` (bucket 0: ``[0,
edge[0]]``), Prometheus' ``le`` convention.

Regression predictions: signed, log-spaced edges ``±10^(k/4)`` for ``k =
-12..24`` (0.001 to 1e6 in magnitude) around 0, plus an overflow bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

LATENCY_EDGES_MS: tuple[float, ...] = tuple(round(0.1 * 2 ** (i / 4), 6) for i in range(81))
_POSITIVE = [10 ** (k / 4) for k in range(-12, 25)]
PREDICTION_EDGES: tuple[float, ...] = tuple([-v for v in reversed(_POSITIVE)] + [0.0] + _POSITIVE)


def bucket_index(edges: Sequence[float], value: float) -> int:
    """The bucket of ``value``: the first edge ``>= value``; ``len(edges)`` is
    the overflow bucket."""
    return bisect_left(edges, value)


def empty_counts(edges: Sequence[float]) -> list[int]:
    return [0] * (len(edges) + 1)


def merge_counts(total: list[int], more: Sequence[int]) -> list[int]:
    """Add ``more`` into ``total`` element-wise (both on the same edges)."""
    if not total:
        return list(more)
    return [a + b for a, b in zip(total, more, strict=True)]


def bucket_bounds(edges: Sequence[float], index: int) -> tuple[float, float]:
    """``(lower, upper)`` of bucket ``index``; the overflow bucket is reported
    as its lower edge on both sides (nothing is known above it)."""
    if index >= len(edges):
        return edges[-1], edges[-1]
    lower = edges[index - 1] if index > 0 else min(0.0, edges[0])
    return lower, edges[index]


def quantile(counts: Sequence[int], q: float, edges: Sequence[float] = LATENCY_EDGES_MS) -> float | None:
    """The ``q``-quantile (0..1) of the values counted in ``counts``, linearly
    interpolated inside the bucket that holds rank ``q · n`` (Prometheus'
    ``histogram_quantile``). Its error is at most the width of that bucket.
    None when nothing was counted."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_bounds(edges, index)
            return lower + (upper - lower) * max(0.0, rank - seen) / count
        seen += count
    return bucket_bounds(edges, len(counts) - 1)[1]


def cumulative(counts: Sequence[int], edges: Sequence[float], keep: Sequence[float]) -> list[tuple[float, int]]:
    """Cumulative counts at the edges in ``keep`` (a subset of ``edges``), for
    a coarser exposition such as Prometheus' ``_bucket{le=...}`` lines."""
    out, running, wanted = [], 0, set(keep)
    for index, count in enumerate(counts[: len(edges)]):
        running += count
        if edges[index] in wanted:
            out.append((edges[index], running))
    return out
