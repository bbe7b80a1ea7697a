"""The benchmarks' pure helpers: summaries, ratios, alternation, block sizes, recall, vectors."""

from __future__ import annotations

import numpy as np
import pytest

from bench import vectors
from bench.bench_ann import exact_top, recall
from bench.bench_precompute import block_size
from bench.common import alternate, ratio, summary


def test_summary_gives_median_spread_and_runs():
    s = summary([3.0, 1.0, 2.0, 10.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 10.0 and s["n"] == 4
    assert s["spread"] == pytest.approx(9.0 / 2.5)
    assert s["runs"] == [3.0, 1.0, 2.0, 10.0]


def test_summary_refuses_no_measurement():
    with pytest.raises(ValueError, match="no measurements"):
        summary([])


def test_ratio_of_medians():
    assert ratio(summary([2, 4, 6]), summary([1, 2, 3])) == 2.0
    assert ratio(summary([1]), summary([0])) is None


def test_alternate_interleaves_the_measurements():
    order = []
    calls = {"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0}
    out = alternate(calls, repeats=3)
    assert order == ["a", "b"] * 3
    assert out == {"a": [1.0] * 3, "b": [2.0] * 3}


@pytest.mark.parametrize("products, expected", [(10_000, 2048), (100_000, 1024), (1_000_000, 128),
                                                (10_000_000, 8)])
def test_block_size_keeps_the_default_when_it_fits_else_a_power_of_two_that_fits(products, expected):
    budget = 2 * 2**30
    got = block_size(products, 2048, budget)
    assert got == expected
    assert got * products * 16 <= budget


def test_exact_top_matches_a_full_sort_and_recall_counts_overlap():
    rng = np.random.default_rng(0)
    users, items = rng.standard_normal((20, 8)).astype(np.float32), rng.standard_normal((500, 8)).astype(np.float32)
    top = exact_top(users, items, 10)
    brute = np.argsort(-(users @ items.T), axis=1)[:, :10]
    assert np.array_equal(top, brute)
    assert recall(top, brute) == 1.0
    half = np.hstack([brute[:, :5], brute[:, 10:15]])
    assert recall(half, brute) == 0.5


def test_synthetic_vectors_have_the_production_layout():
    dim = vectors.production_dim()
    items = vectors.item_vectors(1000, dim, seed=1)
    users = vectors.user_vectors(50, dim, seed=1)
    assert items.shape == (1000, dim) and items.dtype == np.float32
    assert np.all(users[:, -1] == 1.0)  # user_vector = [embedding, 1.0]
    assert np.array_equal(items, vectors.item_vectors(1000, dim, seed=1))  # seeded
    cat = vectors.catalogue(100, seed=1)
    assert {"product_id", "category", "in_stock", "margin", "is_new", "age_days", "popularity"} <= set(cat.columns)
