"""The fused top-k and the vectorised lists of precompute against the slow reference: precompute's previous
numpy path (one dense ``users x products`` matrix, argpartition, a Candidate and a ``reason_for`` per item),
with ties broken by the lower product index.

Random data is dyadic (vector entries are multiples of 1/8, short vectors), so every score is exact in float32
whatever the order of the sums: the two paths must then agree to the bit, and integer-like scores make ties
common, which checks that ties are broken the same way (deterministically) in both.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.constants import CLICK, COL_ITEM, COL_USER, PURCHASE, VIEW
from recsys.pipeline import precompute as P
from recsys.ranking.topk import fused_top, select_top, tile_rows
from recsys.ranking.reasons import SOURCE_MODEL, ReasonContext, reason_for
from recsys.ranking.rerank import CANDIDATE_FACTOR, Candidate, precompute_rows
from recsys.settings import Settings


# --- the slow reference: precompute's previous path ------------------------------------------------------
def full_sort_top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_matrix`` with a full sort: score descending, then the lower column first."""
    n = min(n, scores.shape[1])
    cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((cols, -scores), axis=1)[:, :n]
    return order, np.take_along_axis(scores, order, axis=1)


def _mask_seen(scores, users, products, history, seen_types) -> None:
    col = pd.Series(np.arange(len(products)), index=products[COL_ITEM])
    row = pd.Series(np.arange(len(users)), index=users[COL_USER])
    seen = history[history["event_type"].isin(seen_types) & history[COL_ITEM].isin(col.index)]
    scores[row[seen[COL_USER]].to_numpy(), col[seen[COL_ITEM]].to_numpy()] = -np.inf


def _viewed_categories(history, products) -> dict[int, frozenset[str]]:
    browsed = history["event_type"].isin(P.BROWSED) & (history["recent"] if "recent" in history else True)
    viewed = history[browsed].merge(products[[COL_ITEM, "category"]], on=COL_ITEM)
    return viewed.groupby(COL_USER)["category"].agg(lambda c: frozenset(map(str, c))).to_dict()


def reference_user_lists(scorer, users, vectors, history) -> list[list[Candidate]]:
    """precompute's ``_user_lists`` before the fused top-k (``top_matrix`` replaced by ``full_sort_top``)."""
    s, products = scorer.settings, scorer.products
    scores = vectors @ scorer.item_vectors.T
    _mask_seen(scores, users, products, history, s.exclude_seen_types)
    cols, top_scores = full_sort_top(scores, CANDIDATE_FACTOR * s.recs_per_user)
    cols, top_scores, kept_rows = precompute_rows(
        cols, top_scores, scorer.catalog.popularity, s.rerank_trending_weight, scorer.catalog.codes,
        products["in_stock"].to_numpy(dtype=bool), s.max_per_category, s.recs_per_user)
    np.put_along_axis(scores, cols, top_scores, axis=1)
    viewed = _viewed_categories(history, products)
    ids = products[COL_ITEM].tolist()
    attrs = list(zip(products["category"].astype(str).tolist(), products["in_stock"].tolist(),
                     products["margin"].tolist(), products["is_new"].tolist(), [""] * len(products),
                     products["age_days"].tolist(), products["popularity"].tolist()))
    out = []
    for i, (uid, kept) in enumerate(zip(users[COL_USER].tolist(), kept_rows)):
        items = [Candidate(ids[j], score, *attrs[j]) for j, score in zip(kept.tolist(), scores[i, kept].tolist())]
        ctx = ReasonContext(viewed_categories=viewed.get(uid, frozenset()))
        for item in items:
            item.reason = reason_for(item, SOURCE_MODEL, ctx)
        out.append(items)
    return out


# --- data ------------------------------------------------------------------------------------------------
def dyadic(rng, n: int, dim: int) -> np.ndarray:
    return (rng.integers(-8, 9, (n, dim)) / 8).astype(np.float32)


def catalogue(rng, m: int) -> pd.DataFrame:
    categories = np.array(["Toys", "Garden", "Books", "", "Kitchen", "Lamps"])
    return pd.DataFrame({
        COL_ITEM: rng.permutation(np.arange(1000, 1000 + 3 * m))[:m].astype(np.int64),
        "category": categories[rng.integers(0, len(categories), m)],
        "in_stock": rng.random(m) > 0.2,
        "margin": rng.uniform(0.05, 0.5, m),
        "is_new": rng.random(m) < 0.3,
        "age_days": rng.exponential(30.0, m),
        "popularity": rng.poisson(15, m).astype(np.int64),
    })


def history_of(rng, users: pd.DataFrame, products: pd.DataFrame, per_user: int) -> pd.DataFrame:
    n = len(users) * per_user
    frame = pd.DataFrame({
        COL_USER: rng.choice(users[COL_USER].to_numpy(), n),
        COL_ITEM: rng.choice(np.r_[products[COL_ITEM].to_numpy(), [7, 8]], n),  # 7, 8: not in the catalogue
        "event_type": rng.choice([PURCHASE, VIEW, CLICK, "add_to_cart"], n),
        "recent": rng.random(n) < 0.7,
    })
    heavy = users[COL_USER].iloc[0]  # one user saw nearly the whole catalogue: fewer candidates than asked
    bought = pd.DataFrame({COL_USER: heavy, COL_ITEM: products[COL_ITEM].iloc[3:], "event_type": PURCHASE,
                           "recent": True})
    return pd.concat([frame, bought], ignore_index=True)


def scorer_for(rng, m: int, dim: int, **settings) -> P.Scorer:
    products = catalogue(rng, m)
    return P.Scorer("m1", True, None, products, dyadic(rng, m, dim), Settings(**settings))


# --- select_top / fused_top ------------------------------------------------------------------------------
@pytest.mark.parametrize(("m", "n"), [(5_000, 30), (5_000, 300), (200, 30), (50, 80), (2_400, 300)])
def test_select_top_is_the_full_sort_with_ties_and_excluded_scores(m, n):
    rng = np.random.default_rng([m, n])
    scores = rng.integers(-20, 20, (40, m)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    scores[0, 5:] = -np.inf  # fewer finite scores than n
    scores[1] = -np.inf  # nothing left
    cols, top = select_top(scores, min(n, m))
    want_cols, want_top = full_sort_top(scores, n)
    finite = np.isfinite(want_top)
    assert np.array_equal(np.isfinite(top), finite)
    assert np.array_equal(cols[finite], want_cols[finite]) and np.array_equal(top[finite], want_top[finite])


def test_the_full_sort_reference_is_top_matrix_when_there_are_no_ties():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((30, 4_000)).astype(np.float32)
    got, want = P.top_matrix(scores, 300), full_sort_top(scores, 300)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize(("tile_bytes", "threads"), [(1, 1), (3 * 4 * 3_000, 2), (2**30, 2)])
def test_fused_top_in_tiles_and_threads_is_the_dense_top(tile_bytes, threads):
    rng = np.random.default_rng(7)
    users, items = dyadic(rng, 37, 12), dyadic(rng, 3_000, 12)
    rows, cols = rng.integers(0, 37, 500), rng.integers(0, 3_000, 500)
    dense = users @ items.T
    dense[rows, cols] = -np.inf
    got = fused_top(users, items, 120, rows, cols, tile_bytes=tile_bytes, threads=threads)
    want = full_sort_top(dense, 120)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert tile_rows(1_000_000, 256 * 2**20) == 67 and tile_rows(10, 1) == 1


# --- the whole block: identical lists, reasons and payloads ---------------------------------------------
@pytest.mark.parametrize(("m", "settings"), [
    (4_000, {}),
    (4_000, {"exclude_seen": "interacted", "precompute_tile_mb": 1, "precompute_threads": 2}),
    (4_000, {"rerank_trending_weight": 0.0, "max_per_category": 1, "recs_per_user": 7}),
    (150, {"recs_per_user": 100}),  # a catalogue smaller than the candidates asked for
])
def test_user_lists_are_identical_to_the_previous_numpy_path(m, settings):
    rng = np.random.default_rng([m, len(settings)])
    scorer = scorer_for(rng, m, 10, **{"recs_per_user": 30, **settings})
    users = pd.DataFrame({COL_USER: rng.permutation(np.arange(1, 400))[:150].astype(np.int64)})
    history = history_of(rng, users, scorer.products, 20)
    vectors = dyadic(rng, len(users), 10)
    got = P._user_lists(scorer, users, vectors, history)
    want = reference_user_lists(scorer, users, vectors, history)
    assert got == want
    assert len(got[0]) < scorer.settings.recs_per_user  # the heavy user: fewer unseen products than a list
    assert {c.reason for items in got for c in items} >= {"Customers like you also bought..."}
    assert any(c.reason.startswith("Because you viewed") for items in got for c in items)
    payloads = [json.dumps(P.recs_payload(items, "m1", "t")) for items in got]
    assert payloads == [json.dumps(P.recs_payload(items, "m1", "t")) for items in want]


def test_user_lists_without_recent_flags_or_history():
    rng = np.random.default_rng(11)
    scorer = scorer_for(rng, 1_000, 8, recs_per_user=20)
    users = pd.DataFrame({COL_USER: np.arange(1, 41, dtype=np.int64)})
    vectors = dyadic(rng, 40, 8)
    for history in (history_of(rng, users, scorer.products, 5).drop(columns="recent"),
                    pd.DataFrame({COL_USER: pd.Series(dtype="int64"), COL_ITEM: pd.Series(dtype="int64"),
                                  "event_type": pd.Series(dtype=str)})):
        assert P._user_lists(scorer, users, vectors, history) == reference_user_lists(scorer, users, vectors, history)


# --- the pipeline: a trained model on the small shop ------------------------------------------------------
def test_recommend_block_matches_the_previous_path_on_a_trained_model(shop_engine, local_store):
    import datetime as dt

    from recsys import registry
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model

    day = dt.date(2026, 11, 20)  # the small shop's last day (tests/conftest.py)
    model_id = train_model(shop_engine, local_store, day, TrainParams(window_days=21, epochs=3, no_components=16,
                                                                       threads=1, seed=3))["model_id"]
    registry.promote(shop_engine, model_id, reason="test")
    for exclude in ("purchased", "interacted"):
        settings = Settings(recs_per_user=20, active_days=7, exclude_seen=exclude, precompute_threads=2)
        scorer = P.Scorer.load(shop_engine, local_store, day, None, settings)
        block = P.active_users(shop_engine, day, settings.active_days, settings).head(300)
        vectors, got = P.recommend_block(shop_engine, day, scorer, block)
        history = P._history(shop_engine, block[COL_USER].tolist(), day, settings.trending_days,
                             settings.exclude_seen_types)
        assert got == reference_user_lists(scorer, block, vectors, history)  # one tile: the same product, to the bit
        assert any(c.reason.startswith("Because you viewed") for items in got for c in items)
