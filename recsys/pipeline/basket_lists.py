"""The nightly ``lists`` step's basket lists: frequently bought together, and the repurchase intervals.

Called with the shared lists (``recsys.pipeline.precompute``: the nightly ``lists`` task, promote and rollback), it
reads the day's window of purchases and writes, each key whole with one SET:
- ``bought_together:{product_id}`` for every product with co-purchases in the last ``RECSYS_BASKET_DAYS`` (JSON
  ``{products, scores, together, updated_at}``, ``recsys.ranking.bought_together``), with the lists' TTL
  (``RECSYS_RECS_TTL_SECONDS``): a product no longer bought with others loses its key when it expires;
- ``repurchase:categories``: each repeat category's interval over the last ``RECSYS_REPURCHASE_DAYS`` (JSON
  ``{categories: {category: {interval_days, repeats, rate}}, window_days, updated_at}``,
  ``recsys.ranking.repurchase``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, select

from recsys.constants import COL_ITEM, COL_SESSION, COL_TIMESTAMP, COL_USER, PURCHASE
from recsys.db.models import UserEvent
from recsys.keys import KEY_REPURCHASE, bought_together_key
from recsys.pipeline.lists import read_frame, window_ms, write_json
from recsys.ranking.bought_together import co_purchase_lists
from recsys.ranking.repurchase import repurchase_intervals
from recsys.settings import Settings

PURCHASE_COLUMNS = [COL_USER, COL_ITEM, COL_SESSION, COL_TIMESTAMP]


def read_purchases(engine: Engine, day: dt.date, days: int) -> pd.DataFrame:
    """Purchase events of ``[day - days + 1, day]`` with a user and a product."""
    start, end = window_ms(day, days)
    e = UserEvent
    stmt = select(e.user_id, e.product_id, e.session_id, e.timestamp).where(
        e.event_type == PURCHASE, e.timestamp >= start, e.timestamp < end,
        e.user_id.is_not(None), e.product_id.is_not(None))
    frame = read_frame(engine, stmt, PURCHASE_COLUMNS)
    return frame.astype({COL_USER: "int64", COL_ITEM: "int64", COL_TIMESTAMP: "int64"})


def bought_together_pairs(purchases: pd.DataFrame, updated_at: str):
    """``(key, value)`` of each product's ``bought_together:`` list."""
    lists = co_purchase_lists(purchases)
    for pid, group in lists.groupby(COL_ITEM, sort=True):
        yield bought_together_key(int(pid)), {
            "products": group["other"].astype("int64").tolist(),
            "scores": [round(float(s), 6) for s in group["score"]],
            "together": group["together"].astype("int64").tolist(), "updated_at": updated_at}


def write_basket_lists(engine: Engine, redis, day: dt.date, settings: Settings, catalog: pd.DataFrame) -> dict:
    """Write both lists for ``day`` (``catalog``: ``load_catalog``'s products); returns their sizes."""
    updated = dt.datetime.now(dt.timezone.utc).isoformat()
    purchases = read_purchases(engine, day, max(settings.basket_days, settings.repurchase_days))
    basket_start, rep_start = window_ms(day, settings.basket_days)[0], window_ms(day, settings.repurchase_days)[0]
    written = write_json(redis, bought_together_pairs(purchases[purchases[COL_TIMESTAMP] >= basket_start], updated),
                         ttl=settings.recs_ttl_seconds)
    category_of = dict(zip(catalog[COL_ITEM].astype("int64"), catalog["category"].astype(str)))
    intervals = repurchase_intervals(purchases[purchases[COL_TIMESTAMP] >= rep_start], category_of)
    write_json(redis, [(KEY_REPURCHASE, {"categories": {c: r.to_json() for c, r in sorted(intervals.items())},
                                         "window_days": settings.repurchase_days, "updated_at": updated})])
    return {"bought_together": written, "repeat_categories": sorted(intervals)}
