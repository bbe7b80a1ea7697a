"""The production re-ranking applied offline: sessions as the API seeds them, boosts, stock, diversity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.constants import MS_PER_DAY, PURCHASE, VIEW
from recsys.evaluation.reranking import ServingReranker, recent_counts, serving_rules, sessions
from recsys.ranking.rerank import RerankConfig
from recsys.settings import Settings

NOW = 100 * MS_PER_DAY
PRODUCTS = pd.DataFrame({
    "product_id": [10, 11, 12, 13, 14, 15],
    "category": ["toys", "toys", "toys", "books", "garden", "toys"],
    "in_stock": [True, True, True, True, True, False],
    "margin": 0.0,
    "created_at": pd.to_datetime([NOW - 90 * MS_PER_DAY] * 4 + [NOW - 2 * MS_PER_DAY, NOW - 90 * MS_PER_DAY],
                                 unit="ms", utc=True),
})
HISTORY = pd.DataFrame({
    "user_id": [1, 1, 1, 2, 3, 3],
    "product_id": [14, 13, 10, 11, 12, 12],
    "event_type": [VIEW, VIEW, PURCHASE, PURCHASE, PURCHASE, PURCHASE],
    "timestamp": [NOW - 3 * MS_PER_DAY, NOW - 1 * MS_PER_DAY, NOW - 5 * MS_PER_DAY, NOW - 50 * MS_PER_DAY,
                  NOW - 1 * MS_PER_DAY, NOW - 2 * MS_PER_DAY],
})
QUIET = RerankConfig(max_per_category=None, out_of_stock=None, freshness_weight=0.0, session_weight=0.0,
                     cross_sell_weight=0.0)


def lists(reranker, users, order, scores=None):
    cols = np.array([order] * len(users))
    scores = np.array([scores or list(np.linspace(1.0, 0.5, len(order)))] * len(users))
    return [row.tolist() for row in reranker(pd.DataFrame({"user_id": users}), cols, scores)]


def test_sessions_are_seeded_from_the_latest_events_before_the_cut_off():
    cats = pd.Series(PRODUCTS["category"].to_numpy(), index=PRODUCTS["product_id"])
    seeded = sessions(HISTORY, [1, 2, 9], cats)
    assert seeded[1] == (("books", "garden"), ["toys"])  # browsed newest first; bought toys
    assert seeded[2] == ((), ["toys"]) and 9 not in seeded


def test_recent_counts_use_the_window_before_now():
    counts = recent_counts(HISTORY, PRODUCTS, NOW, days=4)
    assert counts.tolist() == [0, 0, 2, 1, 1, 0]


def test_freshness_boost_uses_the_product_age_at_the_cut_off():
    fresh = ServingReranker(PRODUCTS, HISTORY, NOW, RerankConfig(**{**QUIET.__dict__, "freshness_weight": 2.0,
                                                                  "new_days": 14}), [2])
    assert lists(fresh, [2], [0, 3, 4])[0] == [4, 0, 3]  # 14 is 2 days old: 0.5 + 2 * 0.5 * (1 - 2/14) > 1
    plain = ServingReranker(PRODUCTS, HISTORY, NOW, QUIET, [2])
    assert lists(plain, [2], [0, 3, 4])[0] == [0, 3, 4]


def test_session_categories_stock_and_diversity():
    rules = RerankConfig(max_per_category=2, out_of_stock="demote", freshness_weight=0.0, session_weight=1.0,
                         cross_sell_weight=0.0)
    reranker = ServingReranker(PRODUCTS, HISTORY, NOW, rules, [1, 2])
    got = lists(reranker, [1, 2], [5, 0, 1, 2, 3])
    # user 1 browsed books: 13 (index 3) up; out-of-stock 15 (index 5) last; at most 2 toys per block
    assert got[0][0] == 3 and got[0][-1] == 5
    assert got[1][:3] == [0, 1, 3] and got[1][-1] == 5


def test_trending_weight_in_the_reranker():
    rules = RerankConfig(**{**QUIET.__dict__})
    reranker = ServingReranker(PRODUCTS, HISTORY, NOW, rules, [2], trending_weight=2.0, trending_days=4)
    assert lists(reranker, [2], [0, 1, 2])[0][0] == 2  # product 12: two purchases in the last 4 days


def test_serving_rules_come_from_the_settings_with_the_tuned_knobs():
    rules = serving_rules(5, 0.4, 30, settings=Settings(rerank_session_weight=0.7))
    assert (rules.max_per_category, rules.freshness_weight, rules.new_days) == (5, 0.4, 30)
    assert rules.session_weight == pytest.approx(0.7)
