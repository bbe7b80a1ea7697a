"""Users and products tables derived from a normalised real event log.

A normalised log has the event columns of the data model (``SHOP_EVENT_COLUMNS``)
plus optional per-row attributes ``name``, ``category`` and ``country``. Each
attribute of an entity is its most frequent non-empty value (ties: the smallest);
timestamps give ``first_seen_at``/``last_seen_at`` and ``created_at``/``last_updated_at``;
the price is the median positive price. What a log does not tell is filled
plainly: language and device unknown (null), margin 0.0, in stock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys.data.synthetic import PRODUCT_COLUMNS, SHOP_EVENT_COLUMNS, USER_COLUMNS, Shop

UNKNOWN_CATEGORY = "unknown"


def most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key, the most frequent non-empty value (ties broken by the smallest value)."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()})
    frame = frame[frame["value"].notna() & (frame["value"].astype("str").str.strip() != "")]
    counts = frame.groupby(["key", "value"]).size().rename("n").reset_index()
    counts = counts.sort_values(["key", "n", "value"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["value"]


def _ms_to_utc(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms.to_numpy(), unit="ms", utc=True)


def users_table(log: pd.DataFrame) -> pd.DataFrame:
    seen = log.groupby("user_id")["timestamp"].agg(["min", "max"])
    country = most_frequent(log["user_id"], log["country"]) if "country" in log else pd.Series(dtype="str")
    return pd.DataFrame({
        "user_id": seen.index.to_numpy(dtype=np.int64),
        "country": pd.array(country.reindex(seen.index).to_numpy(), dtype="str"),
        "language": pd.array([None] * len(seen), dtype="str"),
        "device_type": pd.array([None] * len(seen), dtype="str"),
        "first_seen_at": _ms_to_utc(seen["min"]),
        "last_seen_at": _ms_to_utc(seen["max"]),
    })[list(USER_COLUMNS)]


def products_table(log: pd.DataFrame, categorize: Callable[[str], str] | None = None) -> pd.DataFrame:
    """One row per product; ``categorize(name)`` names the category when the log has none."""
    seen = log.groupby("product_id")["timestamp"].agg(["min", "max"])
    ids = seen.index
    names = most_frequent(log["product_id"], log["name"]).reindex(ids) if "name" in log else pd.Series(index=ids)
    names = names.astype("object").where(names.notna(), [f"item {i}" for i in ids])
    if "category" in log:
        cats = most_frequent(log["product_id"], log["category"]).reindex(ids)
    elif categorize is not None:
        cats = pd.Series([categorize(n) for n in names], index=ids)
    else:
        cats = pd.Series(index=ids, dtype="object")
    positive = log[log["price"] > 0]
    price = positive.groupby("product_id")["price"].median().reindex(ids).fillna(0.0)
    return pd.DataFrame({
        "product_id": ids.to_numpy(dtype=np.int64),
        "name": pd.array(names.to_numpy(), dtype="str"),
        "category": pd.array(cats.fillna(UNKNOWN_CATEGORY).to_numpy(), dtype="str"),
        "price": price.to_numpy(dtype=np.float64),
        "margin": np.zeros(len(ids)),
        "in_stock": np.ones(len(ids), dtype=bool),
        "created_at": _ms_to_utc(seen["min"]),
        "last_updated_at": _ms_to_utc(seen["max"]),
    })[list(PRODUCT_COLUMNS)]


def shop_from_log(log: pd.DataFrame, categorize: Callable[[str], str] | None = None) -> Shop:
    """A ``Shop`` (no hidden truth) from a normalised log, events in time order."""
    log = log.sort_values(["timestamp", "user_id", "product_id"], kind="stable").reset_index(drop=True)
    events = log[list(SHOP_EVENT_COLUMNS)].copy()
    return Shop(users=users_table(log), products=products_table(log, categorize), events=events)
