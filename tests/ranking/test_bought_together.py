"""Frequently bought together: the co-purchase lists against a slow obvious reference, and a basket's list."""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from recsys.constants import MS_PER_DAY
from recsys.ranking.bought_together import as_lists, basket_list, co_purchase_lists, combine
from recsys.ranking.orders import order_keys


def purchases(rows) -> pd.DataFrame:
    """``(user, product, session, timestamp ms)`` rows."""
    return pd.DataFrame(rows, columns=["user_id", "product_id", "session_id", "timestamp"])


def reference(frame: pd.DataFrame, per_product: int, min_together: int, max_order: int) -> dict:
    """The same lists, counted pair by pair in Python."""
    orders: dict[tuple, set] = {}
    for user, product, session, ts in frame.itertuples(index=False):
        key = (user, "s", session) if not pd.isna(session) else (user, "d", ts // MS_PER_DAY)
        orders.setdefault(key, set()).add(product)
    kept = [o for o in orders.values() if len(o) <= max_order]
    n = Counter(p for o in kept for p in o)
    together = Counter()
    for o in kept:
        for a, b in combinations(sorted(o), 2):
            together[a, b] += 1
            together[b, a] += 1
    lists: dict[int, list] = {}
    for (a, b), c in together.items():
        if c >= min_together:
            lists.setdefault(a, []).append((b, c, c / math.sqrt(n[a] * n[b])))
    return {a: [(b, s) for b, c, s in sorted(v, key=lambda t: (-t[2], -t[1], t[0]))[:per_product]]
            for a, v in lists.items()}


def random_purchases(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 60, n)
    sessions = np.where(rng.random(n) < 0.2, None, (users * 10 + rng.integers(0, 4, n)).astype(object))
    sessions = [None if s is None else f"o{s}" for s in sessions]
    products = rng.zipf(1.6, n) % 40 + 1
    return purchases(list(zip(users.tolist(), products.tolist(), sessions, (rng.integers(0, 5, n) * MS_PER_DAY
                                                                           + rng.integers(0, 1000, n)).tolist())))


@pytest.mark.parametrize("seed,per_product,min_together,max_order", [(0, 50, 2, 100), (1, 3, 1, 100), (2, 5, 2, 6)])
def test_the_lists_equal_a_pair_by_pair_count(seed, per_product, min_together, max_order):
    frame = random_purchases(seed)
    got = co_purchase_lists(frame, per_product=per_product, min_together=min_together, max_order_products=max_order)
    expected = reference(frame, per_product, min_together, max_order)
    assert set(as_lists(got)) == set(expected) and expected
    for pid, ranked in as_lists(got).items():
        assert [b for b, _ in ranked] == [b for b, _ in expected[pid]], pid
        assert np.allclose([s for _, s in ranked], [s for _, s in expected[pid]])
    assert (got["together"] >= min_together).all()


def test_an_order_is_a_session_else_the_users_day():
    day = MS_PER_DAY
    frame = purchases([(1, 10, "inv-1", 5), (1, 11, "inv-1", day * 3),  # one invoice across days: one order
                       (2, 10, "inv-1", 5),                             # another user's invoice of the same name
                       (3, 10, None, day + 1), (3, 12, None, day + 500), (3, 13, None, 2 * day)])
    keys = order_keys(frame)
    assert keys[0] == keys[1] and keys[2] != keys[0]
    assert keys[3] == keys[4] != keys[5]
    lists = as_lists(co_purchase_lists(frame, min_together=1))
    assert [b for b, _ in lists[10]] == [11, 12] and 13 not in dict(lists[10])


def test_wholesale_orders_and_rare_pairs_are_left_out():
    big = [(9, p, "huge", 0) for p in range(100, 200)]
    pair = [(u, 1, f"o{u}", 0) for u in range(3)] + [(u, 2, f"o{u}", 0) for u in range(3)]
    once = [(7, 1, "x", 0), (7, 3, "x", 0)]
    lists = as_lists(co_purchase_lists(purchases(big + pair + once), max_order_products=50))
    cosine = 3 / math.sqrt(4 * 3)  # 3 orders together; 1 is in 4 orders, 2 in 3; (1, 3) only once
    assert lists == {1: [(2, pytest.approx(cosine))], 2: [(1, pytest.approx(cosine))]}
    assert co_purchase_lists(purchases([])).empty
    with pytest.raises(ValueError):
        co_purchase_lists(purchases(pair), per_product=0)


def test_a_basket_sums_its_products_lists_and_never_holds_them():
    lists = {1: [(2, 0.9), (3, 0.5), (4, 0.1)], 2: [(1, 0.9), (4, 0.6)], 5: [(6, 0.2)]}
    assert combine(lists, [1, 2]) == [(4, pytest.approx(0.7)), (3, 0.5)]
    assert combine(lists, [7]) == []
    ranked = basket_list(lists, [1, 2], 5, fallbacks=[[(3, 9.0), (8, 8.0), (1, 7.0)], [(9, 1.0), (8, 1.0)]])
    assert [(p, t) for p, _, t in ranked] == [(4, 0), (3, 0), (8, 1), (9, 2)]
    refused = basket_list(lists, [1, 2], 3, fallbacks=[[(8, 1.0), (9, 1.0)]], accept=lambda p: p != 4)
    assert [(p, t) for p, _, t in refused] == [(3, 0), (8, 1), (9, 1)]
    assert basket_list(lists, [1], 0) == []
