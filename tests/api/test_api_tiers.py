"""The serving tiers and the re-ranking rules as the API applies them (pure, no I/O)."""

from __future__ import annotations

import dataclasses

import pytest

from api_helpers import CATEGORIES, NEW_PRODUCT, OUT_OF_STOCK, catalog_rows, lists_json, now_ms, pid
from recsys.constants import REASON_LIKE_YOU, REASON_NEW_ARRIVAL, REASON_TRENDING
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import lists_from_redis
from recsys.serving.session_state import SessionState
from recsys.serving.tiers import ServeContext, category_tier, interleave, personalized, rerank_config, trending_tier
from recsys.settings import Settings

CATALOG = CatalogSnapshot.from_rows(catalog_rows())
LISTS = lists_from_redis(lists_json())
# every rule off unless a test switches it on
NEUTRAL = dict(max_per_category=100, rerank_out_of_stock="keep", rerank_margin_weight=0.0,
               rerank_freshness_weight=0.0, rerank_session_weight=0.0, rerank_cross_sell_weight=0.0)


def ctx(session=SessionState(), **overrides) -> ServeContext:
    settings = Settings(**{**NEUTRAL, **overrides})
    return ServeContext(catalog=CATALOG, lists=LISTS, session=session, rules=rerank_config(settings),
                        now_ms=now_ms(), new_days=settings.new_product_days, new_arrival_slots=3)


def ids(items):
    return [c.product_id for c in items]


def cats(items):
    return [CATALOG.category_of(c.product_id) for c in items]


def model_list(products):
    return products, [1.0 - i / 100 for i in range(len(products))]


# --- tiers ----------------------------------------------------------------------
def test_category_tier_is_led_by_the_most_recent_category():
    session = SessionState(categories=("Books", "Home"), viewed=(pid("Books", 1),), exists=True)
    items = category_tier(ctx(session, max_per_category=3), 10)
    assert cats(items)[:3] == ["Books"] * 3
    assert items[0].reason == "Popular in Books"
    assert pid("Books", 1) not in ids(items)  # just viewed: not offered again
    assert "Home" in cats(items)


def test_category_tier_is_empty_without_a_known_category_list():
    assert category_tier(ctx(SessionState(categories=("Garden",), exists=True)), 10) == []


def test_trending_tier_mixes_new_arrivals_with_their_reasons():
    items = trending_tier(ctx(), 12)
    reasons = {c.product_id: c.reason for c in items}
    assert {reasons[p] for p in ids(items)} == {REASON_TRENDING, REASON_NEW_ARRIVAL}
    assert reasons[pid("Shoes", NEW_PRODUCT)] == REASON_NEW_ARRIVAL
    assert reasons[pid("Shoes", 1)] == REASON_TRENDING
    assert ids(items)[0] == pid("Shoes", 1)


def test_interleave_puts_a_new_arrival_after_every_n_items():
    out = interleave([1, 2, 3, 4, 5, 6], [10, 11, 12], every=2, slots=2)
    assert [p for p, _ in out] == [1, 2, 10, 3, 4, 11, 5, 6]


def test_personalized_keeps_a_specific_cached_reason_and_drops_purchases():
    products, scores = model_list([pid("Home", 1), pid("Home", 2)])
    session = SessionState(purchased=(pid("Home", 2),), exists=True)
    items = personalized(ctx(session), products, scores, ["Because you viewed Home", REASON_LIKE_YOU], 10)
    assert ids(items) == [pid("Home", 1)]
    assert items[0].reason == "Because you viewed Home"


def test_personalized_drops_every_seen_product_with_exclude_seen_interacted():
    products, scores = model_list([pid("Home", 1), pid("Home", 2), pid("Home", 3)])
    session = SessionState(purchased=(pid("Home", 2),), seen=(pid("Home", 3),), exists=True)
    interacted = Settings(exclude_seen="interacted").exclude_seen_types
    items = personalized(dataclasses.replace(ctx(session), seen_types=interacted), products, scores, [], 10)
    assert ids(items) == [pid("Home", 1)]


# --- re-ranking rules, each switched on by its setting -------------------------------
def test_diversity_caps_a_category_per_block():
    products, scores = model_list([pid("Shoes", j) for j in (1, 2, 3, 4, 6)] + [pid("Books", 1)])
    assert cats(personalized(ctx(), products, scores, None, 4)) == ["Shoes"] * 4
    capped = personalized(ctx(max_per_category=3), products, scores, None, 4)
    assert cats(capped) == ["Shoes", "Shoes", "Shoes", "Books"]


@pytest.mark.parametrize("mode", ["demote", "drop"])
def test_out_of_stock_is_demoted_or_dropped(mode):
    products, scores = model_list([pid("Books", OUT_OF_STOCK), pid("Books", 1), pid("Books", 2)])
    items = personalized(ctx(rerank_out_of_stock=mode), products, scores, None, 10)
    expected = [pid("Books", 1), pid("Books", 2)] + ([pid("Books", OUT_OF_STOCK)] if mode == "demote" else [])
    assert ids(items) == expected
    assert ids(personalized(ctx(), products, scores, None, 10))[0] == pid("Books", OUT_OF_STOCK)


def test_margin_boost_lifts_the_higher_margin_product():
    products, scores = [pid("Home", 1), pid("Home", 9)], [1.0, 0.99]  # margins 0.05 and 0.45
    assert ids(personalized(ctx(), products, scores, None, 2))[0] == pid("Home", 1)
    assert ids(personalized(ctx(rerank_margin_weight=2.0), products, scores, None, 2))[0] == pid("Home", 9)


def test_freshness_boost_lifts_a_new_product():
    products, scores = [pid("Home", 1), pid("Home", NEW_PRODUCT)], [1.0, 0.9]
    assert ids(personalized(ctx(), products, scores, None, 2))[0] == pid("Home", 1)
    boosted = personalized(ctx(rerank_freshness_weight=2.0), products, scores, None, 2)
    assert ids(boosted)[0] == pid("Home", NEW_PRODUCT)
    assert boosted[0].reason == REASON_NEW_ARRIVAL


def test_session_boost_lifts_the_browsed_category_with_its_reason():
    products, scores = model_list([pid("Home", 1), pid("Home", 2), pid("Shoes", 1), pid("Shoes", 2)])
    session = SessionState(categories=("Shoes",), exists=True)
    plain = personalized(ctx(session), products, scores, None, 4)
    assert cats(plain)[:2] == ["Home", "Home"]
    boosted = personalized(ctx(session, rerank_session_weight=1.5), products, scores, None, 4)
    assert cats(boosted)[:2] == ["Shoes", "Shoes"]
    assert boosted[0].reason == "Because you viewed Shoes"


def test_cross_sell_after_a_purchase_offers_complements_not_more_of_the_same():
    bought = pid("Electronics", 3)
    products, scores = model_list([pid("Electronics", j) for j in (1, 2, 4)] + [pid("Home", 1)])
    session = SessionState(purchased=(bought,), exists=True)
    comps = {"Electronics": ["Books"]}
    items = personalized(ctx(session, rerank_cross_sell_weight=0.6, cross_sell_complements=comps),
                         products, scores, None, 4)
    assert bought not in ids(items)
    assert cats(items)[0] == "Books"  # bestsellers of the complement were added and lifted
    assert items[0].reason == "Goes with your Electronics item 3"
    assert cats(items)[-1] == "Electronics"  # more of what was just bought goes down
    without = personalized(ctx(session, cross_sell_complements=comps), products, scores, None, 4)
    assert "Books" not in cats(without)[:1]


def test_rerank_config_follows_the_settings():
    rules = rerank_config(Settings(max_per_category=2, rerank_out_of_stock="keep", rerank_margin_weight=0.3,
                                   cross_sell_complements={"A": ["B"]}))
    assert rules.max_per_category == 2 and rules.out_of_stock is None and rules.margin_weight == 0.3
    assert dict(rules.complements) == {"A": ("B",)}
    assert set(CATEGORIES) <= CATALOG.categories
