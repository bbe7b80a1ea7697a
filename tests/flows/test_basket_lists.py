"""The nightly ``lists`` task writes the basket lists: each product's co-purchases (frequently bought together)
and the categories' repurchase intervals (buy it again), from the processed day's window of purchases."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest
from sqlalchemy import insert, select

from shop_dates import LAST_EVENT_DAY
from recsys.db.models import Product, UserEvent
from recsys.flows import nightly
from recsys.keys import KEY_REPURCHASE, bought_together_key
from recsys.pipeline.runs import get_steps
from recsys.settings import get_settings
from recsys.timeutil import day_bounds_ms

DAY = LAST_EVENT_DAY


def purchases(engine) -> pd.DataFrame:
    e = UserEvent
    with engine.connect() as conn:
        rows = conn.execute(select(e.user_id, e.product_id, e.session_id, e.timestamp)
                            .where(e.event_type == "PURCHASE")).all()
    return pd.DataFrame(rows, columns=["user_id", "product_id", "session_id", "timestamp"])


def reference_pairs(frame: pd.DataFrame) -> dict[int, dict[int, float]]:
    """Cosine of each pair's orders, from a self-join of the orders (every purchase of the shop has a session)."""
    assert frame["session_id"].notna().all()
    orders = frame[["user_id", "session_id", "product_id"]].drop_duplicates()
    n = orders.groupby("product_id").size()
    both = orders.merge(orders, on=["user_id", "session_id"])
    both = both[both["product_id_x"] != both["product_id_y"]]
    counts = both.groupby(["product_id_x", "product_id_y"]).size()
    out: dict[int, dict[int, float]] = {}
    for (a, b), c in counts.items():
        if c >= 2:
            out.setdefault(int(a), {})[int(b)] = c / math.sqrt(n[a] * n[b])
    return out


def stored(redis_client) -> dict[int, dict]:
    return {int(k.decode().split(":")[1]): json.loads(redis_client.get(k))
            for k in redis_client.scan_iter("bought_together:*")}


def test_the_lists_task_writes_co_purchases_and_repurchase_intervals(shop_engine, local_store, redis_client):
    out = nightly.lists(shop_engine, local_store, redis_client, DAY, {})
    expected = reference_pairs(purchases(shop_engine))
    lists = stored(redis_client)
    assert out["bought_together"] == len(lists) == len(expected) > 10
    for pid, value in lists.items():
        assert set(value) == {"products", "scores", "together", "updated_at"}
        assert dict(zip(value["products"], value["scores"])) == pytest.approx(expected[pid], abs=1e-6)
        assert value["scores"] == sorted(value["scores"], reverse=True)
        assert 0 < redis_client.ttl(bought_together_key(pid)) <= get_settings().recs_ttl_seconds
    repurchase = json.loads(redis_client.get(KEY_REPURCHASE))
    assert repurchase["window_days"] == get_settings().repurchase_days
    assert sorted(repurchase["categories"]) == out["repeat_categories"] and out["repeat_categories"]
    for stats in repurchase["categories"].values():
        assert stats["interval_days"] >= 1.0 and stats["repeats"] >= 1 and 0 < stats["rate"] <= 1
    assert {s["step"]: s["status"] for s in get_steps(shop_engine, DAY)}["lists"] == "SUCCESS"

    again = nightly.lists(shop_engine, local_store, redis_client, DAY, {})  # a re-run writes the same lists
    assert again["bought_together"] == out["bought_together"]
    assert {p: v["products"] for p, v in stored(redis_client).items()} == {p: v["products"] for p, v in lists.items()}


def test_only_the_windows_orders_count_and_a_dry_run_writes_nothing(shop_engine, local_store, redis_client):
    days = get_settings().basket_days
    old = day_bounds_ms(DAY - dt.timedelta(days=days + 2))[0]  # before DAY's window, inside DAY - 3's
    pair = [900_001, 900_002]
    with shop_engine.begin() as conn:
        conn.execute(insert(Product), [{"product_id": p, "name": f"kit {p}", "category": "Kits", "price": 5.0}
                                       for p in pair])
        conn.execute(insert(UserEvent), [
            {"user_id": 1, "product_id": p, "event_type": "PURCHASE", "session_id": f"old-{k}", "timestamp": old + k,
             "price": 5.0} for k in range(3) for p in pair])
    with pytest.raises(nightly.Skip):
        nightly.lists(shop_engine, local_store, redis_client, DAY, {"dry_run": True})
    assert stored(redis_client) == {}
    nightly.lists(shop_engine, local_store, redis_client, DAY, {})
    assert pair[0] not in stored(redis_client)
    nightly.lists(shop_engine, local_store, redis_client, DAY - dt.timedelta(days=3), {})
    assert stored(redis_client)[pair[0]]["products"] == [pair[1]]
    assert stored(redis_client)[pair[0]]["together"] == [3]
