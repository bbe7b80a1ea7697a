"""The shared (non-personal) lists the API falls back to, and the reads behind them.

Helpers of :mod:`recsys.pipeline.precompute` (its ``precompute_lists`` is the
nightly step). The list builders are pure functions of two frames: the catalogue
(:func:`load_catalog`) and per-product event counts by day (:func:`event_counts`).

- ``trending:global``: products by recency-weighted event weight over the last
  ``trending_days`` (``EVENT_WEIGHTS`` per event, halved every
  ``trending_days / 2`` days), in stock, positive score only.
- ``trending:new_arrivals``: products created in the last ``new_product_days``,
  in stock, newest first; score = ``1 - age / new_product_days``.
- ``bestsellers:{category}``: in-stock products with purchases or views in the
  last ``active_days``, by purchases then views; score = purchases, popularity = views.
Every list: ``{"products", "scores", "popularity", "updated_at"}``, at most
``recs_per_user`` long; ``popularity`` is the number of events in the trending
window unless said otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from recsys.constants import COL_ITEM, IMPRESSION, MS_PER_DAY
from recsys.keys import KEY_BESTSELLERS, KEY_CATEGORIES, KEY_NEW_ARRIVALS, KEY_TRENDING
from recsys.db.models import Product, UserEvent
from recsys.ranking.popular_lists import bestsellers, new_arrivals, trending
from recsys.settings import Settings
from recsys.timeutil import day_bounds_ms, ms_to_datetime

WRITE_CHUNK = 1000  # keys per Redis pipeline round trip
COUNT_COLUMNS = [COL_ITEM, "event_type", "age_days", "events"]


def window_ms(day: dt.date, days: int) -> tuple[int, int]:
    """``[day - days + 1 00:00, day + 1 00:00)`` in epoch ms."""
    if days < 1:
        raise ValueError(f"a window needs at least one day, not {days}")
    return day_bounds_ms(day - dt.timedelta(days=days - 1))[0], day_bounds_ms(day)[1]


def read_frame(engine: Engine, stmt, columns: list[str]) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(stmt).all(), columns=columns)


def event_counts(engine: Engine, day: dt.date, days: int) -> pd.DataFrame:
    """Events per (product, event type, whole days before the end of ``day``) in the window."""
    start, end = window_ms(day, days)
    e = UserEvent
    age = ((end - 1 - e.timestamp) // MS_PER_DAY).label("age_days")
    stmt = (
        select(e.product_id, e.event_type, age, func.count().label("events"))
        .where(e.timestamp >= start, e.timestamp < end, e.product_id.is_not(None), e.event_type != IMPRESSION)
        .group_by(e.product_id, e.event_type, age)
    )
    return read_frame(engine, stmt, COUNT_COLUMNS).astype({COL_ITEM: "int64", "age_days": "int64", "events": "int64"})


def load_catalog(engine: Engine, day: dt.date, settings: Settings) -> pd.DataFrame:
    """Every product with ``age_days`` (at the end of ``day``), ``is_new`` and ``popularity``."""
    p = Product
    cols = ["product_id", "name", "category", "price", "margin", "in_stock", "created_at"]
    products = read_frame(engine, select(*(getattr(p, c) for c in cols)).order_by(p.product_id), cols)
    counts = event_counts(engine, day, settings.trending_days).groupby(COL_ITEM)["events"].sum()
    end = pd.Timestamp(ms_to_datetime(day_bounds_ms(day)[1]))
    age = (end - pd.to_datetime(products["created_at"], utc=True)).dt.total_seconds() / 86400
    products["age_days"] = age.fillna(np.inf).to_numpy(dtype=float)
    products["is_new"] = (products["age_days"] >= 0) & (products["age_days"] <= settings.new_product_days)
    products["popularity"] = products[COL_ITEM].map(counts).fillna(0).astype("int64").to_numpy()
    products["margin"] = products["margin"].astype(float).fillna(0.0)
    products["in_stock"] = products["in_stock"].astype("boolean").fillna(False).astype(bool)
    return products


def list_payload(frame: pd.DataFrame, updated_at: str) -> dict:
    return {
        "products": frame[COL_ITEM].astype("int64").tolist(),
        "scores": [round(float(s), 6) for s in frame["score"]],
        "popularity": frame["popularity"].astype("int64").tolist(),
        "updated_at": updated_at,
    }


# --- writing ---------------------------------------------------------------------------
def write_json(redis, pairs: Iterable[tuple[str, object]], ttl: int | None = None, chunk: int = WRITE_CHUNK) -> int:
    """SET each key to its JSON value (whole), in pipelined chunks; returns the keys written."""
    written, pipe = 0, redis.pipeline(transaction=False)
    for key, value in pairs:
        pipe.set(key, json.dumps(value, separators=(",", ":")), ex=ttl)
        written += 1
        if written % chunk == 0:
            pipe.execute()
    pipe.execute()
    return written


def _old_categories(redis) -> set[str]:
    raw = redis.get(KEY_CATEGORIES)
    try:
        return set(json.loads(raw)) if raw else set()
    except (ValueError, TypeError):
        return set()


def write_lists(engine: Engine, redis, day: dt.date, settings: Settings, catalog: pd.DataFrame | None = None) -> dict:
    """Build and write trending, new arrivals, bestsellers and categories; returns list sizes."""
    catalog = load_catalog(engine, day, settings) if catalog is None else catalog
    counts = event_counts(engine, day, max(settings.active_days, settings.trending_days))
    limit, updated = settings.recs_per_user, dt.datetime.now(dt.timezone.utc).isoformat()
    top = trending(counts, catalog, settings.trending_days, limit)
    fresh = new_arrivals(catalog, settings.new_product_days, limit)
    best = bestsellers(counts[counts["age_days"] < settings.active_days], catalog, limit)
    categories = sorted(best)
    pairs = [(KEY_TRENDING, list_payload(top, updated)), (KEY_NEW_ARRIVALS, list_payload(fresh, updated))]
    pairs += [(KEY_BESTSELLERS.format(category=c), list_payload(best[c], updated)) for c in categories]
    pairs.append((KEY_CATEGORIES, categories))
    stale = _old_categories(redis) - set(categories)
    write_json(redis, pairs)
    if stale:
        redis.delete(*(KEY_BESTSELLERS.format(category=c) for c in stale))
    return {"trending": len(top), "new_arrivals": len(fresh), "categories": len(categories),
            "bestsellers": {c: len(best[c]) for c in categories}, "stale_categories_removed": sorted(stale)}
