"""The merchandising rules' pure functions (``recsys.ranking.merch_rules``), against obvious references."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest

from recsys.ranking.merch_rules import (
    REASON_FEATURED, MerchRule, adjusted_scores, blocked, place, promoted_slots,
)

CATEGORY = {1: "Shoes", 2: "Shoes", 3: "Books", 4: "Books", 5: "Home", 6: "Home", 7: "Toys", 8: "Toys"}
PRICE = {p: 10.0 * p for p in CATEGORY}


def attrs(pid: int):
    return CATEGORY.get(pid, ""), PRICE.get(pid)


@dataclass
class Item:
    product_id: int
    reason: str = "model"


def featured(item: Item) -> Item:
    return replace(item, reason=REASON_FEATURED)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.7, 1.0])
def test_promoted_slots_hold_the_share_of_any_prefix(share):
    full = promoted_slots(share, 100)
    for m in range(1, 101):
        assert promoted_slots(share, m) == [s for s in full if s < m]  # a cut answer is the answer of m
        assert len(promoted_slots(share, m)) == math.floor((m - 1) * share + 1e-9) + 1


def test_a_rule_matches_ids_or_categories_narrowed_by_price():
    rule = MerchRule(1, "r", "block", products=(5,), categories=frozenset({"Shoes"}), price_max=30.0)
    assert [p for p in CATEGORY if rule.matches(p, *attrs(p))] == [1, 2]  # 5 costs 50
    assert [p for p in CATEGORY if MerchRule(2, "r", "block", price_min=70.0).matches(p, *attrs(p))] == [7, 8]
    assert not MerchRule(3, "r", "block", price_min=1.0).matches(99, "", None)  # no price: no match
    window = MerchRule(4, "r", "block", products=(1,), starts_at_ms=100, ends_at_ms=200)
    assert [window.live(t) for t in (99, 100, 199, 200)] == [False, True, True, False]
    assert blocked([rule], 1, attrs) and not blocked([replace(rule, action="boost")], 1, attrs)


def test_boost_and_bury_move_by_the_spread():
    rules = [MerchRule(1, "b", "boost", products=(3,), weight=0.5), MerchRule(2, "d", "bury", products=(1,), weight=1.0)]
    out = adjusted_scores(rules, [1, 2, 3], [1.0, 0.8, 0.6], attrs)
    assert out == pytest.approx([1.0 - 0.4, 0.8, 0.6 + 0.2])
    assert adjusted_scores([], [1], [0.5], attrs) == [0.5]


def test_promote_and_pin_place_featured_items():
    items = [Item(p) for p in (1, 2, 3, 4, 5, 6)]
    pool = [Item(7), Item(8)]
    promote = MerchRule(1, "toys", "promote", categories=frozenset({"Toys"}), share=0.4)
    out = place(items, 6, [promote], pool, attrs, featured)
    assert [i.product_id for i in out] == [7, 1, 2, 8, 3, 4]  # slots 0 and 3 (ceil(i / 0.4))
    assert [i.reason for i in out] == [REASON_FEATURED, "model", "model", REASON_FEATURED, "model", "model"]
    pin = MerchRule(2, "pin", "pin", products=(8, 5), slot=2)
    out = place(items, 4, [pin], pool, attrs, featured)
    assert [(i.product_id, i.reason) for i in out] == [(1, "model"), (8, REASON_FEATURED), (2, "model"),
                                                        (3, "model")]
    out = place(items, 4, [replace(pin, products=(5,))], [], attrs, featured)  # already listed: moved
    assert [i.product_id for i in out] == [1, 5, 2, 3]
    assert [i.product_id for i in place(items, 3, [replace(pin, products=(99,))], [], attrs, featured)] == [1, 2, 3]
