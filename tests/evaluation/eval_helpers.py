"""Shared toy data of the evaluation tests: a small shop with three tastes, split on day 40."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import MS_PER_DAY, PURCHASE
from recsys.evaluation.logs import EventLogs

N_USERS, N_ITEMS, CUT = 30, 24, 40 * MS_PER_DAY
CATEGORIES = ["a", "b", "c"]


def shop_logs() -> EventLogs:
    """User u likes category u % 3: buys 2..6 of its 8 products before the cut-off and 2 more after."""
    rng = np.random.default_rng(3)
    rows = []
    for user in range(1, N_USERS + 1):
        own = np.arange(user % 3, N_ITEMS, 3) + 100
        picks = rng.permutation(own)
        n_train = 2 + user % 5
        rows += [(user, int(i), int(rng.integers(0, 39)) * MS_PER_DAY) for i in picks[:n_train]]
        rows += [(user, int(i), (41 + int(rng.integers(0, 5))) * MS_PER_DAY) for i in picks[n_train:n_train + 2]]
    events = pd.DataFrame(rows, columns=["user_id", "product_id", "timestamp"]).assign(
        event_type=PURCHASE, price=3.0, session_id=None, client_event_id=None)
    users = pd.DataFrame({"user_id": range(1, N_USERS + 1), "country": "GB", "language": None, "device_type": None})
    ids = np.arange(N_ITEMS) + 100
    products = pd.DataFrame({"product_id": ids, "name": [f"{CATEGORIES[i % 3]} thing" for i in range(N_ITEMS)],
                             "category": [CATEGORIES[i % 3] for i in range(N_ITEMS)], "price": 3.0, "in_stock": True})
    return EventLogs(events, None, users, products, {})


def synthetic_logs(n_users: int = 300, n_products: int = 120, days: int = 60, seed: int = 5) -> EventLogs:
    """The synthetic shop of ``recsys.data.synthetic`` (views, clicks, carts, purchases) as event logs."""
    import datetime as dt

    from recsys.data.synthetic import generate_shop

    shop = generate_shop(n_users=n_users, n_products=n_products, days=days, seed=seed, end_date=dt.date(2026, 11, 20))
    return EventLogs(shop.events, None, shop.users, shop.products, {"dataset": "synthetic"})
