"""Buy it again: repurchase intervals per category (against a slow reference) and a user's purchases ranked."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from recsys.constants import MS_PER_DAY
from recsys.ranking.repurchase import (
    DUE_FROM, CategoryRepurchase, Purchase, buy_again, closeness, repurchase_intervals,
)

DAY = MS_PER_DAY


def purchases(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "product_id", "session_id", "timestamp"])


def reference(frame: pd.DataFrame, category: dict, min_gap: float) -> dict:
    firsts: dict[tuple, dict] = {}
    for user, product, session, ts in frame.itertuples(index=False):
        order = session if not pd.isna(session) else f"day{ts // DAY}"
        times = firsts.setdefault((user, product), {})
        times[order] = min(ts, times.get(order, ts))
    gaps, pairs, again = {}, {}, {}
    for (user, product), times in firsts.items():
        cat = category[product]
        pairs[cat] = pairs.get(cat, 0) + 1
        ordered = sorted(times.values())
        found = [(b - a) / DAY for a, b in zip(ordered, ordered[1:]) if (b - a) / DAY >= min_gap]
        gaps.setdefault(cat, []).extend(found)
        again[cat] = again.get(cat, 0) + bool(found)
    return {c: (statistics.median(g), len(g), again[c] / pairs[c]) for c, g in gaps.items() if g}


def test_intervals_equal_a_per_customer_reference():
    rng = np.random.default_rng(3)
    n = 2000
    users, products = rng.integers(1, 80, n), rng.integers(1, 30, n)
    ts = rng.integers(0, 200, n) * DAY + rng.integers(0, DAY // 2, n)
    sessions = [None if rng.random() < 0.3 else f"o{u}-{t // DAY}" for u, t in zip(users, ts)]
    frame = purchases(list(zip(users.tolist(), products.tolist(), sessions, ts.tolist())))
    category = {p: ("Durable" if p > 25 else f"c{p % 3}") for p in range(1, 30)}
    frame = frame[~(frame["product_id"] > 25) | ~frame.duplicated(["user_id", "product_id"], keep="first")]
    got = repurchase_intervals(frame, category)
    expected = reference(frame, category, 1.0)
    assert set(got) == set(expected) == {"c0", "c1", "c2"}  # "Durable": never bought twice by one customer
    for cat, (interval, repeats, rate) in expected.items():
        assert got[cat].interval_days == pytest.approx(interval)
        assert (got[cat].repeats, got[cat].rate) == (repeats, pytest.approx(rate))


def test_an_order_completed_the_same_day_is_no_repurchase():
    frame = purchases([(1, 10, "a", 0), (1, 10, "b", DAY // 2), (2, 10, "c", 0), (2, 10, "d", 30 * DAY),
                       (3, 11, "e", 0)])
    got = repurchase_intervals(frame, {10: "Tea", 11: "Tea"})
    assert got == {"Tea": CategoryRepurchase(30.0, 1, pytest.approx(1 / 3))}
    assert repurchase_intervals(purchases([]), {}) == {}
    assert CategoryRepurchase.from_json(got["Tea"].to_json()) == CategoryRepurchase(30.0, 1, pytest.approx(1 / 3))


def test_closeness_peaks_at_the_interval():
    assert closeness(30, 30) == 1.0
    assert closeness(15, 30) == 0.5 and closeness(60, 30) == 0.5
    assert closeness(-1, 30) == 0.0 and closeness(5, 0) == 0.0


def test_purchases_ranked_by_their_categorys_interval_durable_ones_never():
    intervals = {"Tea": CategoryRepurchase(30.0, 50, 0.5), "Soap": CategoryRepurchase(10.0, 20, 0.2)}
    category = {1: "Tea", 2: "Tea", 3: "Soap", 4: "Sofa"}.get
    now = 100 * DAY
    bought = [Purchase(1, now - 30 * DAY), Purchase(2, now - 5 * DAY, times=3), Purchase(3, now - 10 * DAY),
              Purchase(4, now - 400 * DAY)]
    ranked = buy_again(bought, category, intervals, now)
    assert [p for p, _ in ranked] == [1, 3, 2]  # 0.5 * 1.0, 0.2 * 1.0, 0.5 * (5/30); the sofa: durable
    assert ranked[0][1] == pytest.approx(0.5) and ranked[2][1] == pytest.approx(0.5 * 5 / 30)
    due = buy_again(bought, category, intervals, now, due_only=True)
    assert [p for p, _ in due] == [1, 3]  # tea bought 5 days ago is not due (< DUE_FROM of 30 days)
    assert DUE_FROM == 0.5
    tie = buy_again([Purchase(5, now - 30 * DAY, times=1), Purchase(6, now - 30 * DAY, times=2)],
                    {5: "Tea", 6: "Tea"}.get, intervals, now)
    assert [p for p, _ in tie] == [6, 5]
