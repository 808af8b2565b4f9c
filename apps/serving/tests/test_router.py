"""Sticky weighted routing (apps.serving.router)."""

import random
from collections import Counter

import pytest
from scipy import stats

from apps.serving.router import WeightedRouter, unit_point


def test_same_unit_always_gets_the_same_variant():
    router = WeightedRouter([("a", 50), ("b", 30), ("c", 20)], salt="sample-qc")
    rebuilt = WeightedRouter([("a", 50), ("b", 30), ("c", 20)], salt="sample-qc")
    for i in range(2000):
        unit = f"S-{i:05d}"
        first = router.choose(unit)
        assert all(router.choose(unit) == first for _ in range(3))
        assert rebuilt.choose(unit) == first  # a new process computes the same answer


def test_unit_point_is_the_documented_blake2b_prefix():
    from hashlib import blake2b

    digest = blake2b(b"sample-qc\x1fS-1", digest_size=8).digest()
    assert unit_point("sample-qc", "S-1") == int.from_bytes(digest, "big") / 2**64
    assert unit_point("sample-qc", "S-1") != unit_point("other-endpoint", "S-1")


def test_shares_of_100k_units_converge_to_the_weights_chi_square():
    weights = {"v1": 70, "v2": 20, "v3": 10}
    router = WeightedRouter(list(weights.items()), salt="qc")
    n = 100_000
    counts = Counter(router.choose(f"unit-{i}") for i in range(n))
    observed = [counts[k] for k in weights]
    expected = [n * w / 100 for w in weights.values()]
    chi2, p_value = stats.chisquare(observed, expected)
    assert p_value > 0.001, (observed, expected, chi2)
    for key, weight in weights.items():
        assert abs(counts[key] / n - weight / 100) < 0.01


def test_random_routing_without_unit_id_follows_the_weights():
    random.seed(3)
    router = WeightedRouter([("old", 90), ("canary", 10)], salt="x")
    counts = Counter(router.choose(None) for _ in range(50_000))
    assert abs(counts["canary"] / 50_000 - 0.10) < 0.01


def test_growing_the_first_variant_only_moves_units_towards_it():
    before = WeightedRouter([("canary", 10), ("stable", 90)], salt="e")
    after = WeightedRouter([("canary", 25), ("stable", 75)], salt="e")
    moved_back = moved_forward = 0
    for i in range(20_000):
        a, b = before.choose(f"u{i}"), after.choose(f"u{i}")
        moved_back += a == "canary" and b == "stable"
        moved_forward += a == "stable" and b == "canary"
    assert moved_back == 0
    assert 0.13 < moved_forward / 20_000 < 0.17


def test_zero_weight_variants_get_nothing_and_empty_router_refuses():
    router = WeightedRouter([("a", 0), ("b", 100), ("c", 0.0)], salt="s")
    assert {router.choose(f"u{i}") for i in range(500)} == {"b"}
    assert router.keys == ("b",)
    empty = WeightedRouter([("a", 0)], salt="s")
    assert not empty
    with pytest.raises(LookupError):
        empty.choose("u1")
    with pytest.raises(ValueError):
        WeightedRouter([("a", -1), ("b", 2)], salt="s")


def test_many_variants():
    variants = [(f"v{i}", 1) for i in range(20)]
    router = WeightedRouter(variants, salt="ab")
    counts = Counter(router.choose(f"u{i}") for i in range(40_000))
    assert len(counts) == 20
    assert max(counts.values()) / min(counts.values()) < 1.3
