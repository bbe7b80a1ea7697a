"""Synthetic drift: shift a category's share or a device mix on one day of a generated shop.

``shift_day(shop, day, factor=3, category="Electronics")`` returns a new ``Shop`` in which the
events of ``day`` on Electronics products are about three times as many: for every user with
such events, ``factor - 1`` clones on average (a whole number plus a seeded coin for the
fraction) join the shop that day (new user ids after the last, the same country, language,
device and hidden taste) and repeat those events. ``device="desktop"`` does the same with all
the day's events of desktop users: a new traffic source with another device mix, with the
same activity per user. Both can be given at once (the events matching both). A ``factor``
below 1 drops each matching user's matching events of the day with probability ``1 - factor``.

The shop given is not changed, and ``generate_shop`` itself is untouched: a shop generated
without a shift is the same as before (the frozen-oracle and evaluation tests rely on it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from recsys.data.synthetic import Shop
from recsys.timeutil import day_bounds_ms


def _matching(shop: Shop, day: dt.date, category: str | None, device: str | None) -> np.ndarray:
    if category is None and device is None:
        raise ValueError("shift_day needs a category, a device or both")
    if category is not None and category not in set(shop.products["category"]):
        raise ValueError(f"unknown category {category!r}; the shop has {sorted(set(shop.products['category']))}")
    if device is not None and device not in set(shop.users["device_type"]):
        raise ValueError(f"unknown device {device!r}; the shop has {sorted(set(shop.users['device_type']))}")
    ev = shop.events
    start, end = day_bounds_ms(day)
    match = ((ev["timestamp"] >= start) & (ev["timestamp"] < end)).to_numpy().copy()
    if category is not None:
        match &= (ev["product_id"].map(shop.products.set_index("product_id")["category"]) == category).to_numpy()
    if device is not None:
        match &= (ev["user_id"].map(shop.users.set_index("user_id")["device_type"]) == device).to_numpy()
    return match


def _clone_users(shop: Shop, events: pd.DataFrame, copies: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """The clones' events and user rows; ``copies``: clones per source user id."""
    next_id = int(shop.users["user_id"].max()) + 1
    sources = np.repeat(copies.index.to_numpy(), copies.to_numpy())
    copy_no = np.concatenate([np.arange(1, n + 1) for n in copies.to_numpy()]) if len(sources) else np.array([], int)
    clones = pd.DataFrame({"source": sources, "copy": copy_no, "clone_id": np.arange(next_id, next_id + len(sources))})
    ev = events.merge(clones, left_on="user_id", right_on="source")
    suffix = "-c" + ev["copy"].astype("str")
    new_events = ev.assign(user_id=ev["clone_id"], session_id=ev["session_id"] + suffix,
                           client_event_id=ev["client_event_id"] + suffix)[list(shop.events.columns)]
    seen = new_events.groupby("user_id")["timestamp"].agg(["min", "max"])
    rows = shop.users.set_index("user_id").loc[clones["source"]].reset_index(drop=True)
    rows.insert(0, "user_id", clones["clone_id"].to_numpy())
    rows["first_seen_at"] = pd.to_datetime(seen["min"].loc[rows["user_id"]].to_numpy(), unit="ms", utc=True)
    rows["last_seen_at"] = pd.to_datetime(seen["max"].loc[rows["user_id"]].to_numpy(), unit="ms", utc=True)
    return new_events, rows[list(shop.users.columns)], clones["source"].tolist()


def shift_day(shop: Shop, day: dt.date, *, factor: float, category: str | None = None, device: str | None = None,
              seed: int = 0) -> Shop:
    """A copy of ``shop`` whose ``day`` has about ``factor`` times the matching events (see the module doc)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor or factor == 1:
        raise ValueError(f"factor must be a positive number other than 1, got {factor!r}")
    match = _matching(shop, day, category, device)
    rng = np.random.default_rng(seed)
    ev = shop.events
    authors = np.unique(ev["user_id"].to_numpy()[match])
    if factor < 1:
        dropped = authors[rng.random(len(authors)) >= factor]
        keep = ~(match & np.isin(ev["user_id"].to_numpy(), dropped))
        return dataclasses.replace(shop, events=ev[keep].reset_index(drop=True))
    extra = factor - 1
    copies = pd.Series(int(extra) + (rng.random(len(authors)) < extra - int(extra)), index=authors)
    copies = copies[copies > 0]
    new_events, new_users, sources = _clone_users(shop, ev[match], copies)
    events = pd.concat([ev, new_events], ignore_index=True).sort_values("timestamp", kind="stable")
    taste = shop.user_taste
    if taste is not None:
        taste = np.vstack([taste, taste[np.asarray(sources, dtype=np.int64) - 1]])
    return dataclasses.replace(shop, users=pd.concat([shop.users, new_users], ignore_index=True),
                               events=events.reset_index(drop=True), user_taste=taste)
