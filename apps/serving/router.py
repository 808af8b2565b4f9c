"""Weighted traffic routing, sticky per unit through a stable hash.

Pure Python, no Django: the serving predict path and the A/B testing app
both use it, and it can be benchmarked on its own.

Method: a unit id (a sample id, a user id) is hashed with BLAKE2b together
with a salt (the endpoint slug, or an A/B test key), and the first 8 bytes of
the digest, read as an unsigned big-endian integer and divided by 2**64, give
a point ``u`` in [0, 1). The variants' weights, normalised to sum to 1, are
laid end to end on [0, 1) in the order given; the unit goes to the variant
whose interval contains ``u``. The same (salt, unit id) always lands on the
same point, so a unit keeps its variant for as long as the weights stay the
same; with no unit id the point is drawn uniformly at random.

Ordering matters when weights move: put the variant whose share grows first
(a canary), and raising its weight only moves units from the other variants
to it, never back and forth. Because the hash is uniform, the share of
distinct units a variant receives converges to its weight (a multinomial
with those probabilities; see ``tests/test_router.py`` for a chi-square check).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Hashable, Sequence
from hashlib import blake2b
from itertools import accumulate

_TWO_64 = float(2**64)


def unit_point(salt: str, unit_id: str) -> float:
    """The unit's fixed point in [0, 1): first 8 bytes of BLAKE2b(salt, unit_id) / 2**64."""
    digest = blake2b(f"{salt}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO_64


class WeightedRouter:
    """Chooses one of several weighted variants for each request.

    ``variants`` is a sequence of ``(key, weight)``; weights are any
    non-negative numbers (percentages, counts) and are normalised here.
    Variants with weight 0 never receive traffic. Immutable once built, so one
    instance can be shared by all request threads of a process."""

    __slots__ = ("_bounds", "_keys", "_single", "salt", "weights")

    def __init__(self, variants: Sequence[tuple[Hashable, float]], *, salt: str):
        if any(weight < 0 for _, weight in variants):
            raise ValueError("variant weights must not be negative")
        live = [(key, float(weight)) for key, weight in variants if weight > 0]
        self.salt = salt
        total = sum(weight for _, weight in live)
        self.weights = {key: weight / total for key, weight in live} if total else {}
        self._keys = tuple(key for key, _ in live)
        # Upper bounds of each variant's interval; the last is forced to 1.0
        # so rounding can never leave a point without a variant.
        bounds = [b / total for b in accumulate(weight for _, weight in live)] if total else []
        if bounds:
            bounds[-1] = 1.0
        self._bounds = tuple(bounds)
        self._single = self._keys[0] if len(self._keys) == 1 else None

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def keys(self) -> tuple:
        return self._keys

    def choose(self, unit_id: str | None = None):
        """The variant for ``unit_id`` (sticky), or a random one without it.
        Raises LookupError when no variant has any weight."""
        if self._single is not None:
            return self._single
        if not self._keys:
            raise LookupError("no variant has any traffic")
        point = unit_point(self.salt, unit_id) if unit_id else random.random()
        return self._keys[bisect_right(self._bounds, point)]

    def choose_many(self, unit_ids: Sequence[str]) -> list:
        return [self.choose(unit_id) for unit_id in unit_ids]


__all__ = ["WeightedRouter", "unit_point"]
