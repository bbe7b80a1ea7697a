"""Every re-ranking rule on small hand-made lists, and the order ``rerank`` applies them in."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from recsys.ranking.rerank import (
    Candidate,
    RerankConfig,
    RerankError,
    boost_freshness,
    boost_margin,
    boost_popular,
    boost_popular_rows,
    boost_session,
    cross_sell,
    demote_out_of_stock,
    diversify,
    rerank,
    rerank_rows,
)


def C(pid, score, category="a", **kw) -> Candidate:
    return Candidate(product_id=pid, score=score, category=category, **kw)


def ids(items) -> list[int]:
    return [c.product_id for c in items]


def _max_per_category_in_prefix(items, n) -> int:
    counts: dict[str, int] = {}
    for c in items[:n]:
        counts[c.category] = counts.get(c.category, 0) + 1
    return max(counts.values())


# --- diversify ---------------------------------------------------------------------
def test_diversify_caps_each_category_per_block_and_keeps_order_inside():
    items = [C(1, 9, "a"), C(2, 8, "a"), C(3, 7, "a"), C(4, 6, "b"), C(5, 5, "a"), C(6, 4, "c")]
    out = diversify(items, max_per_category=2)
    assert ids(out) == [1, 2, 4, 6, 3, 5]
    assert sorted(ids(out)) == sorted(ids(items))  # nothing lost


def test_diversify_against_a_slow_reference():
    rng = random.Random(3)
    items = [C(i, -i, rng.choice("abcd")) for i in range(200)]

    def slow(items, k):  # greedy: repeatedly take the first item whose category is still under k this round
        rest, out = list(items), []
        while rest:
            counts: dict[str, int] = {}
            taken = []
            for c in rest:
                if counts.get(c.category, 0) < k:
                    counts[c.category] = counts.get(c.category, 0) + 1
                    taken.append(c)
            out.extend(taken)
            rest = [c for c in rest if c not in taken]
        return out

    for k in (1, 2, 3):
        assert ids(diversify(items, k)) == ids(slow(items, k))


def test_diversify_rejects_zero():
    with pytest.raises(RerankError):
        diversify([C(1, 1)], 0)


# --- stock ---------------------------------------------------------------------------
def test_out_of_stock_demoted_or_dropped():
    items = [C(1, 9, in_stock=False), C(2, 8), C(3, 7, in_stock=False), C(4, 6)]
    assert ids(demote_out_of_stock(items)) == [2, 4, 1, 3]
    assert ids(demote_out_of_stock(items, mode="drop")) == [2, 4]
    with pytest.raises(RerankError, match="mode"):
        demote_out_of_stock(items, mode="hide")


# --- boosts --------------------------------------------------------------------------
def test_boost_margin_is_scale_free_and_weight_zero_is_identity():
    for scale in (1.0, 1000.0):  # the same weights give the same order whatever the score scale
        items = [C(1, 1.0 * scale, margin=0.0), C(2, 0.95 * scale, margin=0.5)]
        assert ids(boost_margin(items, 0.0)) == [1, 2]
        assert ids(boost_margin(items, 0.9)) == [1, 2]  # + 0.9 * range < range
        out = boost_margin(items, 1.5)  # + 1.5 * range > range
        assert ids(out) == [2, 1]
        assert out[0].score == pytest.approx((0.95 + 1.5 * 0.05) * scale)
        assert items[0].score == 1.0 * scale  # inputs are not mutated


def test_boost_margin_ignores_lists_without_margin():
    items = [C(1, 2.0), C(2, 1.0)]
    assert boost_margin(items, 1.0) == items


def test_boost_freshness_uses_age_when_known():
    items = [C(1, 1.0, age_days=100), C(2, 0.9, age_days=1), C(3, 0.8, age_days=13), C(4, 0.85, is_new=True)]
    out = boost_freshness(items, weight=0.5, new_days=14)
    scores = {c.product_id: c.score for c in out}
    assert scores[1] == 1.0
    assert scores[2] == pytest.approx(0.9 + 0.5 * 0.2 * (13 / 14))
    assert scores[3] == pytest.approx(0.8 + 0.5 * 0.2 * (1 / 14))
    assert scores[4] == pytest.approx(0.85 + 0.5 * 0.2)
    assert ids(out) == [1, 2, 4, 3]  # 1.0, 0.993, 0.95, 0.807
    with pytest.raises(RerankError):
        boost_freshness(items, 0.5, new_days=0)


def test_boost_popular_moves_recent_sellers_up_and_zero_weight_keeps_the_order():
    items = [C(1, 1.0, popularity=0), C(2, 0.9, popularity=2), C(3, 0.5, popularity=10)]
    # range 0.5: with weight 2, 3 -> 0.5 + 1.0 * 10/10 = 1.5, 2 -> 0.9 + 1.0 * 2/10 = 1.1, 1 stays 1.0
    assert ids(boost_popular(items, 2.0)) == [3, 2, 1]
    assert boost_popular(items, 2.0)[0].score == pytest.approx(1.5)
    assert ids(boost_popular(items, 0.1)) == [1, 2, 3]
    assert boost_popular(items, 0.0) == items
    assert ids(boost_popular([C(1, 1.0), C(2, 0.5)], 5.0)) == [1, 2]  # nothing popular: nothing moves


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0, 3.0])
def test_boost_popular_rows_matches_boost_popular(weight):
    """The batch form (precompute) gives the list form's order and scores; padding stays last, unboosted."""
    rng = np.random.default_rng(11)
    n_products, k = 80, 20
    popularity = rng.integers(0, 6, n_products) * (rng.random(n_products) > 0.4)
    columns = np.array([rng.permutation(n_products)[:k] for _ in range(40)])
    scores = -np.sort(-rng.normal(size=columns.shape).round(2), axis=1)  # best first, with ties
    scores[1, 15:] = -np.inf  # a user with purchases masked at the end
    scores[2] = scores[2, 0]  # a flat list
    popularity[columns[3]] = 0  # a user whose candidates nobody touched
    cols, boosted = boost_popular_rows(columns, scores.astype(np.float32), popularity, weight)
    for row, s, out_cols, out_scores in zip(columns, scores, cols, boosted):
        finite = np.isfinite(s)
        items = [C(int(j), float(v), popularity=int(popularity[j])) for j, v in zip(row[finite], s[finite])]
        expected = boost_popular(items, weight)
        assert out_cols[: finite.sum()].tolist() == ids(expected)
        assert out_scores[: finite.sum()] == pytest.approx([c.score for c in expected], abs=1e-5)
        assert np.isneginf(out_scores[finite.sum():]).all()
    assert boost_popular_rows(columns[:0], scores[:0], popularity, 1.0)[0].shape == (0, k)


def test_boost_session_lifts_session_categories():
    items = [C(1, 3.0, "tv"), C(2, 2.0, "shoes"), C(3, 1.0, "tv")]
    assert ids(boost_session(items, ["shoes"], 0.6)) == [2, 1, 3]
    assert ids(boost_session(items, ["shoes"], 0.4)) == [1, 2, 3]
    assert ids(boost_session(items, [], 5.0)) == [1, 2, 3]


def test_cross_sell_after_a_camera_accessories_up_cameras_down():
    complements = {"cameras": ["camera accessories"]}
    items = [C(1, 1.0, "cameras"), C(2, 0.9, "books"), C(3, 0.8, "camera accessories")]
    out = cross_sell(items, ["cameras"], complements, weight=1.0)  # one unit = the range, 0.2
    assert ids(out) == [3, 2, 1]
    assert [c.score for c in out] == pytest.approx([1.0, 0.9, 0.8])
    assert ids(cross_sell(items, ["books"], complements, weight=0.5)) == [1, 2, 3]  # no entry: left alone
    assert ids(cross_sell(items, [], complements, weight=0.5)) == [1, 2, 3]


# --- the pipeline of rules -----------------------------------------------------------
def test_rerank_order_boosts_then_stock_then_diversity():
    cfg = RerankConfig(max_per_category=1, out_of_stock="demote", session_weight=1.0)
    items = [C(1, 1.0, "a"), C(2, 0.9, "a"), C(3, 0.5, "b", in_stock=False), C(4, 0.1, "b"), C(5, 0.0, "c")]
    out = rerank(items, cfg, session_categories=["b"])
    # b boosted (4 passes 1 and 2), 3 is out of stock -> tail; then one per category in the head
    assert ids(out) == [4, 1, 5, 2, 3]


def test_rerank_drop_and_no_rules():
    items = [C(1, 1.0, "a", in_stock=False), C(2, 0.9, "a"), C(3, 0.8, "a")]
    assert ids(rerank(items, RerankConfig(out_of_stock="drop", max_per_category=None))) == [2, 3]
    off = RerankConfig(max_per_category=None, out_of_stock=None, session_weight=0, cross_sell_weight=0)
    assert rerank(items, off) == items


def test_rerank_head_keeps_the_category_cap_with_out_of_stock_items():
    rng = random.Random(0)
    items = [C(i, 1 - i / 300, rng.choice("abcdef"), in_stock=rng.random() > 0.2) for i in range(300)]
    out = rerank(items, RerankConfig(max_per_category=2))
    n_available = sum(c.in_stock for c in items)
    assert all(c.in_stock for c in out[:n_available]) and not any(c.in_stock for c in out[n_available:])
    assert _max_per_category_in_prefix(out, 12) <= 2
    assert sorted(ids(out)) == list(range(300))


def test_rerank_cross_sell_through_config():
    cfg = RerankConfig(max_per_category=None, complements={"cameras": ["lenses"]}, cross_sell_weight=1.0)
    items = [C(1, 1.0, "cameras"), C(2, 0.5, "lenses")]
    assert ids(rerank(items, cfg, purchased_categories=["cameras"])) == [2, 1]
    assert ids(rerank(items, cfg)) == [1, 2]


def test_config_validation():
    with pytest.raises(RerankError):
        RerankConfig(max_per_category=0)
    with pytest.raises(RerankError):
        RerankConfig(out_of_stock="maybe")
    with pytest.raises(RerankError):
        RerankConfig(new_days=0)


def test_rerank_is_fast_on_a_few_hundred_items():
    rng = random.Random(1)
    items = [C(i, rng.random(), rng.choice("abcdefgh"), in_stock=rng.random() > 0.1, margin=rng.random(),
               age_days=rng.uniform(0, 60)) for i in range(300)]
    cfg = RerankConfig(margin_weight=0.1, freshness_weight=0.1, complements={"a": ["b"]})
    start = time.perf_counter()
    for _ in range(20):
        rerank(items, cfg, session_categories=["c"], purchased_categories=["a"])
    assert (time.perf_counter() - start) / 20 < 0.02  # well under 20 ms per list


@pytest.mark.parametrize("max_per_category", [None, 1, 2, 3])
@pytest.mark.parametrize("mode", ["demote", "drop", None])
def test_rerank_rows_matches_rerank(max_per_category, mode):
    """The batch form gives exactly the order of ``rerank`` with the same rules."""
    rng = np.random.default_rng(7)
    n_products, k = 60, 25
    categories = np.array(list("abcde"))[rng.integers(0, 5, n_products)]
    codes = np.unique(categories, return_inverse=True)[1]
    in_stock = rng.random(n_products) > 0.25
    columns = np.array([rng.permutation(n_products)[:k] for _ in range(30)])
    valid = rng.random(columns.shape) > 0.1
    valid[0] = False  # a user with no candidate at all
    cfg = RerankConfig(max_per_category=max_per_category, out_of_stock=mode, session_weight=0, cross_sell_weight=0)
    got = rerank_rows(columns, valid, codes, in_stock, max_per_category, mode)
    for row, ok, out in zip(columns, valid, got):
        items = [C(int(j), -pos, str(categories[j]), in_stock=bool(in_stock[j]))
                 for pos, (j, v) in enumerate(zip(row, ok)) if v]
        assert out.tolist() == ids(rerank(items, cfg))
    assert got[0].tolist() == []


def test_rerank_rows_validates():
    cols = np.zeros((1, 2), dtype=int)
    with pytest.raises(RerankError):
        rerank_rows(cols, cols == 0, np.zeros(1, int), np.ones(1, bool), 0)
    with pytest.raises(RerankError):
        rerank_rows(cols, cols == 0, np.zeros(1, int), np.ones(1, bool), 2, "hide")
