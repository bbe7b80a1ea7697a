"""recsys.drift.output: the model-output metrics against slow references, and the concentration jump."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.drift.output import TOP_PRODUCTS, compare_outputs, mean_jaccard, output_metrics

CATALOG = 500
K = 10


def diverse_lists(n_users=300, seed=0):
    rng = np.random.default_rng(seed)
    return {u: rng.choice(CATALOG, K, replace=False).tolist() for u in range(1, n_users + 1)}


def same_twenty(n_users=300, seed=1):
    rng = np.random.default_rng(seed)
    top20 = list(range(100, 120))
    return {u: rng.choice(top20, K, replace=False).tolist() for u in range(1, n_users + 1)}


def slow_metrics(lists, popularity, catalog, k):
    counts = {p: 0 for p in range(catalog)}
    slots, pop_sum = 0, 0.0
    for items in lists.values():
        for p in items[:k]:
            counts[p] += 1
            slots += 1
            pop_sum += popularity.get(p, 0.0)
    values = list(counts.values())
    mean = sum(values) / len(values)
    gini = sum(abs(a - b) for a in values for b in values) / (2 * len(values) ** 2 * mean)
    top = sorted(values, reverse=True)[:TOP_PRODUCTS]
    return {"coverage": sum(v > 0 for v in values) / catalog, "gini": gini, "top_share": sum(top) / slots,
            "avg_popularity": pop_sum / slots, "users": len(lists), "slots": slots}


def slow_jaccard(a, b, k):
    common = sorted(set(a) & set(b))
    return sum(len(set(a[u][:k]) & set(b[u][:k])) / len(set(a[u][:k]) | set(b[u][:k])) for u in common) / len(common)


def test_metrics_match_the_slow_reference():
    lists = diverse_lists(60)
    lists[7] = lists[7] + [499, 498]  # longer than k: only the top k count
    popularity = {p: float(p % 17) for p in range(CATALOG)}
    fast, slow = output_metrics(lists, popularity, CATALOG, K), slow_metrics(lists, popularity, CATALOG, K)
    assert fast.keys() == slow.keys()
    for key in slow:
        assert fast[key] == pytest.approx(slow[key], rel=1e-12), key


def test_jaccard_matches_the_slow_reference_and_handles_partial_overlap():
    a, b = diverse_lists(50, seed=2), diverse_lists(60, seed=3)
    for u in range(1, 20):
        b[u] = a[u][:5] + b[u][:5]
    assert mean_jaccard(a, b, K) == pytest.approx(slow_jaccard(a, b, K))
    assert mean_jaccard(a, a, K) == 1.0
    assert mean_jaccard({1: [1, 2]}, {2: [1, 2]}, K) is None


def test_same_twenty_products_for_everyone_is_a_concentration_jump():
    popularity = {p: (1000.0 if 100 <= p < 120 else 5.0) for p in range(CATALOG)}
    live, new = diverse_lists(), same_twenty()
    out = compare_outputs(new, live, popularity, CATALOG, K, gini_jump=0.1, coverage_drop=0.5)
    assert out["concentration_jump"] is True and out["jump_reasons"] == ["gini", "coverage"]
    assert out["new"]["coverage"] == 20 / CATALOG and out["live"]["coverage"] > 0.9
    assert out["new"]["top_share"] == 1.0
    assert out["new"]["gini"] > 0.95 and out["gini_change"] > 0.5
    assert out["new"]["avg_popularity"] == 1000.0 > out["live"]["avg_popularity"]
    assert out["overlap_jaccard"] < 0.05


def test_same_twenty_against_an_already_concentrated_live_model_is_a_jump_by_coverage():
    """LIVE recommends 200 products, mostly 50 of them: its Gini over the catalogue is already high,
    so the Gini cannot rise by the threshold, but coverage falls tenfold."""
    rng = np.random.default_rng(6)
    weights = np.r_[np.full(50, 30.0), np.ones(150)]
    live = {u: rng.choice(200, K, replace=False, p=weights / weights.sum()).tolist() for u in range(1, 301)}
    out = compare_outputs(same_twenty(), live, {}, 5000, K, gini_jump=0.1, coverage_drop=0.5)
    assert out["live"]["gini"] > 0.95 and out["gini_change"] < 0.1
    assert out["coverage_ratio"] == pytest.approx(20 / (out["live"]["coverage"] * 5000))
    assert out["coverage_ratio"] < 0.2
    assert out["concentration_jump"] is True and out["jump_reasons"] == ["coverage"]


def test_a_similar_diverse_model_is_quiet():
    popularity = {p: 1.0 for p in range(CATALOG)}
    out = compare_outputs(diverse_lists(seed=4), diverse_lists(seed=5), popularity, CATALOG, K, gini_jump=0.1, coverage_drop=0.5)
    assert out["concentration_jump"] is False and out["jump_reasons"] == []
    assert abs(out["gini_change"]) < 0.05 and 0.9 < out["coverage_ratio"] < 1.1


def test_the_jump_follows_the_threshold():
    popularity = {}
    live, new = diverse_lists(), same_twenty()
    change = compare_outputs(new, live, popularity, CATALOG, K, gini_jump=0.1, coverage_drop=0.5)["gini_change"]
    quiet = compare_outputs(new, live, popularity, CATALOG, K, gini_jump=min(change + 0.01, 0.99), coverage_drop=0.99)
    assert quiet["concentration_jump"] is False and quiet["jump_reasons"] == []


@pytest.mark.parametrize("kwargs, words", [
    ({"k": 0}, "k must be"),
    ({"catalog_size": 5}, "smaller than"),
    ({"gini_jump": 1.5}, "gini_jump"),
    ({"coverage_drop": 0}, "coverage_drop"),
])
def test_bad_inputs_are_refused(kwargs, words):
    args = {"new": diverse_lists(10), "live": diverse_lists(10), "popularity": {}, "catalog_size": CATALOG,
            "k": K, "gini_jump": 0.1, "coverage_drop": 0.5, **kwargs}
    with pytest.raises(ValueError, match=words):
        compare_outputs(**args)


def test_no_lists_is_an_error():
    with pytest.raises(ValueError, match="no users"):
        output_metrics({}, {}, CATALOG, K)
