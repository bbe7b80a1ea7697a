"""Buy it again: each category's observed repurchase interval, and a user's purchases ranked by it.

The nightly ``lists`` step measures the intervals on the shop's own purchases (``repurchase_intervals``,
written to Redis ``repurchase:categories``); the API ranks a user's purchases with them (``buy_again``).

- A repurchase is a user buying the same product again in a later order (``recsys.ranking.orders``) at least
  ``MIN_GAP_DAYS`` after the previous one (an order placed soon after another completes it; it is not a
  repurchase). Its interval is the time between the two orders (their first purchase events).
- A category's interval is the median of its repurchases' intervals, its ``rate`` the share of (user, product)
  pairs of the category bought again. A category without any observed repurchase is durable: it has no entry,
  and a product of it bought once is never suggested again.
- A purchase of a product of a repeat category is scored ``rate * closeness``, where ``closeness`` is
  ``elapsed / interval`` up to the interval and ``interval / elapsed`` past it (1 when the interval has just
  passed, lower before and long after). It is *due* from ``DUE_FROM`` of the interval on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_TIMESTAMP, COL_USER, MS_PER_DAY
from recsys.ranking.orders import order_keys

MIN_GAP_DAYS = 1.0
DUE_FROM = 0.5  # a purchase is due for buying again once half its category's interval has passed


@dataclass(frozen=True)
class CategoryRepurchase:
    interval_days: float  # median interval between two orders of one product by one user
    repeats: int  # repurchases observed
    rate: float  # share of the category's (user, product) pairs bought again

    def to_json(self) -> dict:
        return {"interval_days": round(self.interval_days, 3), "repeats": self.repeats, "rate": round(self.rate, 6)}

    @classmethod
    def from_json(cls, obj: Mapping) -> CategoryRepurchase:
        return cls(float(obj["interval_days"]), int(obj["repeats"]), float(obj["rate"]))


@dataclass(frozen=True)
class Purchase:
    """A user's purchases of one product: the newest one's time and how many there were."""

    product_id: int
    last_ms: int
    times: int = 1


def repurchase_intervals(purchases: pd.DataFrame, category_of: Mapping[int, str],
                         min_gap_days: float = MIN_GAP_DAYS) -> dict[str, CategoryRepurchase]:
    """Per category with at least one observed repurchase; ``purchases``: purchase events with ``user_id``,
    ``product_id``, ``session_id``, ``timestamp``; ``category_of``: product -> category (others are left out)."""
    if purchases.empty:
        return {}
    frame = pd.DataFrame({COL_USER: purchases[COL_USER].to_numpy(), COL_ITEM: purchases[COL_ITEM].to_numpy(),
                          "order": order_keys(purchases), COL_TIMESTAMP: purchases[COL_TIMESTAMP].to_numpy()})
    frame["category"] = frame[COL_ITEM].map(category_of)
    frame = frame[frame["category"].notna() & (frame["category"] != "")]
    orders = frame.groupby([COL_USER, COL_ITEM, "order"], as_index=False).agg(
        ts=(COL_TIMESTAMP, "min"), category=("category", "first"))
    orders = orders.sort_values([COL_USER, COL_ITEM, "ts"], kind="stable")
    orders["gap"] = orders.groupby([COL_USER, COL_ITEM])["ts"].diff().to_numpy() / MS_PER_DAY
    repeat = orders[orders["gap"] >= min_gap_days]
    pairs = orders.drop_duplicates([COL_USER, COL_ITEM])["category"].value_counts()
    again = repeat.drop_duplicates([COL_USER, COL_ITEM])["category"].value_counts()
    out = {}
    for category, gaps in repeat.groupby("category")["gap"]:
        out[str(category)] = CategoryRepurchase(float(np.median(gaps.to_numpy())), int(len(gaps)),
                                                float(again[category] / pairs[category]))
    return out


def closeness(elapsed_days: float, interval_days: float) -> float:
    """1 when ``elapsed`` is the interval, ``elapsed / interval`` before, ``interval / elapsed`` after."""
    if interval_days <= 0:
        return 0.0
    ratio = max(elapsed_days, 0.0) / interval_days
    return ratio if ratio <= 1.0 else 1.0 / ratio


def buy_again(purchases: Iterable[Purchase], category_of: Callable[[int], str],
              intervals: Mapping[str, CategoryRepurchase], now_ms: int, *, due_only: bool = False
              ) -> list[tuple[int, float]]:
    """``(product_id, score)`` of the purchases of repeat categories, best first (ties: bought more often, then
    more recently, then the smaller id); ``due_only``: only those due (``DUE_FROM`` of the interval passed)."""
    scored = []
    for p in purchases:
        stats = intervals.get(category_of(p.product_id))
        if stats is None:
            continue  # a durable category: no observed repurchase
        elapsed = (now_ms - p.last_ms) / MS_PER_DAY
        if due_only and elapsed < DUE_FROM * stats.interval_days:
            continue
        scored.append((-stats.rate * closeness(elapsed, stats.interval_days), -p.times, -p.last_ms, p.product_id))
    scored.sort()
    return [(pid, -neg_score) for neg_score, _, _, pid in scored]
