"""``rerank`` (the rules on columns, ``rank_columns``) against the list rules applied one after another.

The reference is the module docstring of ``recsys.ranking.rerank`` written out with its
public list rules; random lists with tied and flat scores, NaN and negative margins,
unknown ages, empty categories and every rule on or off must give the same items in the
same order with the same scores (to the bit).
"""

from __future__ import annotations

import math
import random

import pytest

from recsys.ranking.rank_columns import RankInputs, rerank_positions
from recsys.ranking.rerank import (
    Candidate,
    RerankConfig,
    boost_freshness,
    boost_margin,
    boost_session,
    cross_sell,
    demote_out_of_stock,
    diversify,
    rerank,
)

CATEGORIES = ("a", "b", "c", "d", "")


def rules_one_by_one(items, rules, session_categories, purchased_categories):
    out = list(items)
    if rules.cross_sell_weight and rules.complements:
        out = cross_sell(out, purchased_categories, rules.complements, rules.cross_sell_weight)
    if rules.session_weight:
        out = boost_session(out, session_categories, rules.session_weight)
    if rules.margin_weight:
        out = boost_margin(out, rules.margin_weight)
    if rules.freshness_weight:
        out = boost_freshness(out, rules.freshness_weight, rules.new_days)
    head, tail = out, []
    if rules.out_of_stock:
        n_available = sum(1 for c in out if c.in_stock)
        ordered = demote_out_of_stock(out, rules.out_of_stock)
        head, tail = ordered[:n_available], ordered[n_available:]
    if rules.max_per_category:
        head, tail = diversify(head, rules.max_per_category), diversify(tail, rules.max_per_category)
    return head + tail


def _items(rng: random.Random, nan_margins: float = 0.01) -> list[Candidate]:
    scores = rng.choice(("ties", "flat", "spread"))
    items = []
    for pid in range(rng.randint(0, 60)):
        score = {"ties": rng.choice((0.5, 0.25)), "flat": 1.0, "spread": rng.uniform(-1, 2)}[scores]
        margin = math.nan if rng.random() < nan_margins else rng.choice((0.0, 0.2, -0.3, round(rng.random(), 2)))
        age = rng.choice((None, 0.0, 3.5, 13.99, 14.0, 40.0, -1.0))
        items.append(Candidate(pid, score, rng.choice(CATEGORIES), in_stock=rng.random() > 0.2, margin=margin,
                               is_new=age is not None and age < 14 or (age is None and rng.random() < 0.3),
                               age_days=age))
    return items


def _rules(rng: random.Random) -> RerankConfig:
    return RerankConfig(max_per_category=rng.choice((None, 1, 2, 3)), out_of_stock=rng.choice((None, "demote", "drop")),
                        margin_weight=rng.choice((0.0, 0.3)), freshness_weight=rng.choice((0.0, 0.5)),
                        new_days=rng.choice((1, 14)), session_weight=rng.choice((0.0, 0.4)),
                        cross_sell_weight=rng.choice((0.0, 0.6)),
                        complements=rng.choice(({}, {"a": ("b",), "c": ("a", "d")})))


def _exact(items) -> list[tuple]:
    return [(c.product_id, c.score.hex() if isinstance(c.score, float) else c.score, c.category) for c in items]


@pytest.mark.parametrize("nan_margins", [0.01, 0.2])
@pytest.mark.parametrize("seed", range(200))
def test_rerank_is_the_rules_one_after_another(seed, nan_margins):
    """NaN margins (a product table with holes) make ``max`` and the sorts depend on the order."""
    rng = random.Random(seed)
    items, rules = _items(rng, nan_margins), _rules(rng)
    session = rng.sample(CATEGORIES, rng.randint(0, 2))
    bought = rng.sample(CATEGORIES, rng.randint(0, 2))
    expected = rules_one_by_one(items, rules, session, bought)
    assert _exact(rerank(items, rules, session_categories=session, purchased_categories=bought)) == _exact(expected)


def test_positions_and_scores_of_the_columns():
    items = [Candidate(1, 1.0, "a"), Candidate(2, 0.9, "b", in_stock=False), Candidate(3, 0.5, "b")]
    positions, scores = rerank_positions(RankInputs.of(items), RerankConfig(session_weight=1.0, max_per_category=None),
                                         session_categories=["b"])
    assert positions == [0, 2, 1]  # 3 boosted to 1's score (the tie keeps 1 first); 2 is out of stock: last
    assert scores == [1.0, 0.9 + 0.5, 0.5 + 0.5]


def test_an_item_no_boost_changed_is_returned_as_it_was():
    items = [Candidate(1, 1.0, "a"), Candidate(2, 0.5, "b")]
    out = rerank(items, RerankConfig(session_weight=1.0), session_categories=["b"])
    assert out[0] is items[0]
    assert out[1] is not items[1] and (out[1].product_id, out[1].score, items[1].score) == (2, 1.0, 0.5)


@pytest.mark.parametrize("seed", range(200))
def test_a_limit_gives_the_first_positions_of_the_whole_order(seed):
    rng = random.Random(seed)
    items, rules = _items(rng), _rules(rng)
    inputs, session = RankInputs.of(items), rng.sample(CATEGORIES, rng.randint(0, 2))
    whole, scores = rerank_positions(inputs, rules, session_categories=session)
    for limit in (1, 2, 5, 20, 100):
        positions, limited_scores = rerank_positions(inputs, rules, session_categories=session, limit=limit)
        assert positions == whole[:limit]
        assert [s.hex() for s in limited_scores] == [s.hex() for s in scores]  # NaN too
