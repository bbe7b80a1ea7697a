"""Precompute: segments and shards, list builders (pure), and the whole step on the small shop with a tiny model."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from recsys import registry
from recsys.constants import PURCHASE, REASON_LIKE_YOU, VIEW
from recsys.keys import (
    KEY_BESTSELLERS, KEY_CATEGORIES, KEY_NEW_ARRIVALS, KEY_PRODUCT_EMBEDDING, KEY_RECS, KEY_RECS_MODEL,
    KEY_TRENDING, KEY_USER_EMBEDDING,
)
from recsys.db.models import Product, UserEvent
from recsys.families.hybrid.fit import TrainParams
from recsys.pipeline.train import train_model
from recsys.pipeline import precompute as P
from recsys.pipeline.lists import window_ms, write_json
from recsys.ranking.popular_lists import bestsellers, new_arrivals, trending
from recsys.settings import Settings
from recsys.timeutil import day_bounds_ms
from recsys.keys import recs_key


DAY = dt.date(2026, 11, 20)  # the small shop's last day of events (tests/conftest.py)
SETTINGS = Settings(recs_per_user=20, max_per_category=3, precompute_block_size=256, active_days=7)
UPDATED = "2026-11-21T00:00:00+00:00"


# --- segments ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("country", "device", "value", "segment"),
    [
        ("US", "mobile", "regular", "US|mobile|regular"),
        ("ca", "Desktop", "whale", "US|desktop|whale"),
        ("DE", "tablet", "new", "EU|mobile|new"),
        ("GB", "desktop", "regular", "EU|desktop|regular"),
        ("JP", "mobile", "regular", "APAC|mobile|regular"),
        ("IN", None, "regular", "APAC|desktop|regular"),
        ("BR", "mobile", "whale", "OTHER|mobile|whale"),
        (None, None, "new", "OTHER|desktop|new"),
        (float("nan"), float("nan"), "new", "OTHER|desktop|new"),  # missing values from a LEFT JOIN
    ],
)
def test_segment_of(country, device, value, segment):
    assert P.segment_of(country, device, value) == segment
    assert P.parse_segment(segment) == tuple(segment.split("|"))


def test_bad_segments_are_refused():
    with pytest.raises(ValueError, match="value segment"):
        P.segment_of("US", "mobile", "vip")
    for bad in ("EU|mobile", "MARS|mobile|new", "EU|watch|new", "EU|mobile|vip"):
        with pytest.raises(P.PrecomputeError, match="bad segment"):
            P.parse_segment(bad)


def test_shards_are_a_fixed_hash_with_equal_shares():
    ids = [1, 2, 3, 10**6, 2**63 - 1]
    want = [((u * 0x9E3779B97F4A7C15) % 2**64 >> 32) % 16 for u in ids]  # the documented formula, in Python ints
    assert P.shard_of(ids, 16).tolist() == want and P.shard_of(7, 1).tolist() == [0]
    rng = np.random.default_rng(0)
    for users in (np.arange(1, 100_001), rng.integers(1, 2**62, 100_000)):
        shares = np.bincount(P.shard_of(users, 16), minlength=16) / len(users)
        assert np.abs(shares * 16 - 1).max() < 0.05  # every shard within 5% of an equal share
    with pytest.raises(ValueError, match="shards must be"):
        P.shard_of(ids, 0)
    assert P.check_shard(3, 16) == 3
    for bad in (16, -1, "3", 1.0, True):
        with pytest.raises(P.PrecomputeError, match="bad shard"):
            P.check_shard(bad, 16)


def test_window_ms():
    start, end = window_ms(DAY, 7)
    assert end == day_bounds_ms(DAY)[1] and start == day_bounds_ms(DAY - dt.timedelta(days=6))[0]
    with pytest.raises(ValueError):
        window_ms(DAY, 0)


def test_active_users_window_and_segments(engine):
    from recsys.db.bulk import upsert_rows

    upsert_rows(engine, "users", pd.DataFrame({
        "user_id": [1, 2, 3, 4], "country": ["DE", "US", "JP", "FR"], "language": ["de", "en", "ja", "fr"],
        "device_type": ["mobile", "desktop", "mobile", "desktop"],
    }))
    start, end = window_ms(DAY, 7)
    upsert_rows(engine, "user_events", pd.DataFrame({
        # 1: first ms of the window; 2: last ms; 3: 1 ms before the window; 4: after the day; 9: not in users
        "user_id": [1, 2, 3, 4, 9, 2],
        "product_id": [10, 10, 10, 10, 10, 11],
        "event_type": [VIEW, VIEW, VIEW, VIEW, VIEW, PURCHASE],
        "timestamp": [start, end - 1, start - 1, end, start + 5, start - 10],  # 2 bought before the window
        "price": [None, None, None, None, None, 20.0],
        "client_event_id": [f"e{i}" for i in range(6)],
    }))
    users = P.active_users(engine, DAY, 7, SETTINGS)
    assert users["user_id"].tolist() == [1, 2, 9]
    assert users["segment"].tolist() == ["EU|mobile|new", "US|desktop|whale", "OTHER|desktop|new"]
    assert P.active_segments(engine, DAY, active_days=7, settings=SETTINGS) == sorted(users["segment"])
    assert users["shard"].tolist() == P.shard_of([1, 2, 9], SETTINGS.precompute_shards).tolist()
    assert P.active_users(engine, DAY, 1, SETTINGS)["user_id"].tolist() == [2]


# --- top candidates -----------------------------------------------------------------------
def test_top_candidates_against_a_full_sort():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 80)).astype(np.float32)
    scores[3, :] = -np.inf
    scores[3, [5, 7]] = [1.0, 2.0]  # a user with only two candidates left
    scores[4, 10:] = -np.inf
    got = P.top_candidates(scores, 15)
    for i, row in enumerate(scores):
        ref = [j for j in np.argsort(-row, kind="stable") if np.isfinite(row[j])][:15]
        assert got[i].tolist() == ref
    assert got[3].tolist() == [7, 5] and len(got[4]) == 10
    assert [len(r) for r in P.top_candidates(scores[:2], 500)] == [80, 80]


# --- list builders (pure) -------------------------------------------------------------------
def _catalog(**over) -> pd.DataFrame:
    base = pd.DataFrame({
        "product_id": [1, 2, 3, 4, 5],
        "category": ["a", "a", "b", "b", "c"],
        "in_stock": [True, True, True, False, True],
        "age_days": [1.0, 30.0, 5.0, 2.0, -1.0],  # product 5 is created after the day
        "popularity": [3, 9, 0, 1, 0],
    })
    return base.assign(**over)


def _counts(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["product_id", "event_type", "age_days", "events"])


def test_trending_weights_event_types_and_recency():
    counts = _counts([
        (1, VIEW, 0, 4),       # 4 views today: 4
        (2, PURCHASE, 0, 1),   # 1 purchase today: 5
        (3, PURCHASE, 4, 1),   # 1 purchase 4 days ago (half-life 3.5 days): 5 * 0.5 ** (4 / 3.5) ~ 2.26
        (4, PURCHASE, 0, 9),   # out of stock
        (1, "RETURN", 0, 10),  # returns cancel: product 1 ends negative and is dropped
        (2, VIEW, 9, 100),     # outside the 7-day window
    ])
    out = trending(counts, _catalog(), trending_days=7, limit=10)
    assert out["product_id"].tolist() == [2, 3]
    assert out["score"].tolist() == pytest.approx([5.0, 5 * 0.5 ** (4 / 3.5)])
    assert out["popularity"].tolist() == [1, 1]
    assert len(trending(counts, _catalog(), 7, limit=1)) == 1


def test_new_arrivals_newest_in_stock_first():
    out = new_arrivals(_catalog(), new_days=14, limit=10)
    assert out["product_id"].tolist() == [1, 3]  # 4 out of stock, 5 not yet created, 2 too old
    assert out["score"].tolist() == pytest.approx([1 - 1 / 14, 1 - 5 / 14])
    assert out["popularity"].tolist() == [3, 0]


def test_bestsellers_by_purchases_then_views():
    counts = _counts([
        (1, VIEW, 0, 10), (2, PURCHASE, 1, 1), (2, VIEW, 1, 2), (1, PURCHASE, 3, 1), (3, VIEW, 0, 1),
        (4, PURCHASE, 0, 50),
    ])
    out = bestsellers(counts, _catalog(), limit=10)
    assert set(out) == {"a", "b", "c"}
    assert out["a"]["product_id"].tolist() == [1, 2]  # both one purchase; 1 has more views
    assert out["a"]["score"].tolist() == [1, 1] and out["a"]["popularity"].tolist() == [10, 2]
    assert out["b"]["product_id"].tolist() == [3]  # 4 is out of stock
    assert out["c"].empty
    assert all(df.empty for df in bestsellers(counts.iloc[:0], _catalog(), 10).values())


def test_write_json_whole_values_in_chunks_with_ttl(redis_client):
    pairs = [(f"t:{i}", {"i": i, "v": [i] * 3}) for i in range(7)]
    assert write_json(redis_client, pairs, ttl=120, chunk=3) == 7
    assert json.loads(redis_client.get("t:6")) == {"i": 6, "v": [6, 6, 6]}
    assert 0 < redis_client.ttl("t:0") <= 120
    write_json(redis_client, [("t:n", [1])])
    assert redis_client.ttl("t:n") == -1


class _CrashingRedis:
    """The real client, but the pipeline dies on its ``n``-th execute (a worker killed mid-write)."""

    def __init__(self, client, n: int):
        self.client, self.n = client, n

    def pipeline(self, transaction=True):
        pipe, outer = self.client.pipeline(transaction=transaction), self

        class _Pipe:
            def set(self, *a, **kw):
                return pipe.set(*a, **kw)

            def execute(self):
                outer.n -= 1
                if outer.n == 0:
                    raise ConnectionError("worker killed")
                return pipe.execute()

        return _Pipe()


def test_a_crash_half_way_leaves_old_or_new_complete_values(redis_client):
    old = {recs_key(i): {"products": [1, 2, 3], "model_version": "old"} for i in range(10)}
    write_json(redis_client, old.items())
    new = [(k, {"products": [7, 8, 9, 10], "model_version": "new"}) for k in old]
    with pytest.raises(ConnectionError):
        write_json(_CrashingRedis(redis_client, 2), new, chunk=4)
    values = [json.loads(redis_client.get(k)) for k in old]
    assert [v["model_version"] for v in values] == ["new"] * 4 + ["old"] * 6
    assert all(v["products"] == ([7, 8, 9, 10] if v["model_version"] == "new" else [1, 2, 3]) for v in values)


# --- end to end ----------------------------------------------------------------------------
@pytest.fixture
def trained(shop_engine, local_store):
    params = TrainParams(window_days=21, epochs=5, no_components=16, threads=1, seed=3)
    out = train_model(shop_engine, local_store, DAY, params)
    registry.promote(shop_engine, out["model_id"], reason="test")
    return out["model_id"]


def _purchases(engine, types=(PURCHASE,)) -> dict[int, set[int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(UserEvent.user_id, UserEvent.product_id).where(UserEvent.event_type.in_(types)))
        bought: dict[int, set[int]] = {}
        for uid, pid in rows:
            bought.setdefault(uid, set()).add(pid)
    return bought


def _categories(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Product.product_id, Product.category)).all())


def _in_stock(engine) -> dict[int, bool]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Product.product_id, Product.in_stock)).all())


def test_precompute_end_to_end(shop_engine, local_store, redis_client, trained):
    model_id = trained
    users = P.active_users(shop_engine, DAY, SETTINGS.active_days, SETTINGS)
    segments = sorted(users["segment"].unique())
    assert P.active_segments(shop_engine, DAY, active_days=SETTINGS.active_days) == segments
    assert len(segments) > 3 and users["user_id"].is_unique

    started, written = time.perf_counter(), 0
    for shard in range(SETTINGS.precompute_shards):  # the unit of work: a user-hash shard, whatever the segment
        out = P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, settings=SETTINGS)
        assert out["shard"] == shard and out["model_id"] == model_id
        assert out["users"] == int((users["shard"] == shard).sum())
        written += out["users"]
    rate = written / (time.perf_counter() - started)
    print(f"\nprecompute: {written} users in {SETTINGS.precompute_shards} shards, {rate:.0f} users/s "
          "(incl. per-shard loads)")
    assert written == len(users)  # the shards partition the active users

    bought, category, stock = _purchases(shop_engine), _categories(shop_engine), _in_stock(shop_engine)
    assert len(redis_client.keys("recs:*")) == len(users)
    for uid in users["user_id"].tolist():
        recs = json.loads(redis_client.get(KEY_RECS.format(user_id=uid)))
        assert set(recs) == {"products", "scores", "reasons", "model_version", "updated_at"}
        assert recs["model_version"] == model_id
        assert 0 < len(recs["products"]) <= SETTINGS.recs_per_user
        assert len(recs["products"]) == len(set(recs["products"])) == len(recs["scores"]) == len(recs["reasons"])
        assert not set(recs["products"]) & bought.get(uid, set())
        flags = [stock[p] for p in recs["products"]]
        assert flags == sorted(flags, reverse=True)  # out-of-stock products only after every in-stock one
        head = [category[p] for p in recs["products"][:9]]
        assert max(head.count(c) for c in head) <= SETTINGS.max_per_category
        emb = json.loads(redis_client.get(KEY_USER_EMBEDDING.format(user_id=uid)))
        assert emb["model_version"] == model_id and len(emb["vector"]) == 17
    assert 0 < redis_client.ttl(KEY_RECS.format(user_id=uid)) <= SETTINGS.recs_ttl_seconds
    reasons = {r for uid in users["user_id"].head(200) for r in
               json.loads(redis_client.get(KEY_RECS.format(user_id=uid)))["reasons"]}
    assert REASON_LIKE_YOU in reasons and any(r.startswith("Because you viewed") for r in reasons)


def test_exclude_seen_interacted_drops_every_touched_product(shop_engine, local_store, redis_client, trained):
    settings = SETTINGS.model_copy(update={"exclude_seen": "interacted"})
    users = P.active_users(shop_engine, DAY, settings.active_days, settings)
    shard = int(users["shard"].value_counts().index[0])
    P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, settings=settings)
    touched = _purchases(shop_engine, settings.exclude_seen_types)
    viewed = _purchases(shop_engine, (VIEW,))
    ids = users.loc[users["shard"] == shard, "user_id"].tolist()
    lists = {uid: set(json.loads(redis_client.get(KEY_RECS.format(user_id=uid)))["products"]) for uid in ids}
    assert all(lists.values()) and not any(lists[u] & touched.get(u, set()) for u in ids)
    assert any(viewed.get(u, set()) - _purchases(shop_engine).get(u, set()) for u in ids)  # views did exist
    default = P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, settings=SETTINGS)
    again = {uid: set(json.loads(redis_client.get(KEY_RECS.format(user_id=uid)))["products"]) for uid in ids}
    assert default["users"] == len(ids) and any(again[u] & viewed.get(u, set()) for u in ids)  # default keeps them


def test_precompute_lists_and_all(shop_engine, local_store, redis_client, trained):
    out = P.precompute_lists(shop_engine, local_store, redis_client, DAY, settings=SETTINGS)
    assert out["model_id"] == trained and out["product_embeddings"] == 300
    for key in (KEY_TRENDING, KEY_NEW_ARRIVALS):
        payload = json.loads(redis_client.get(key))
        assert set(payload) == {"products", "scores", "popularity", "updated_at"}
        assert len(payload["products"]) == len(payload["scores"]) == len(payload["popularity"])
    trending_list = json.loads(redis_client.get(KEY_TRENDING))
    assert len(trending_list["products"]) == SETTINGS.recs_per_user
    assert trending_list["scores"] == sorted(trending_list["scores"], reverse=True)
    categories = json.loads(redis_client.get(KEY_CATEGORIES))
    assert categories == sorted(set(_categories(shop_engine).values()))
    category = _categories(shop_engine)
    for cat in categories:
        best = json.loads(redis_client.get(KEY_BESTSELLERS.format(category=cat)))
        assert {category[p] for p in best["products"]} <= {cat}
    emb = json.loads(redis_client.get(KEY_PRODUCT_EMBEDDING.format(product_id=1)))
    assert emb["model_version"] == trained and len(emb["vector"]) == 17

    redis_client.set(KEY_BESTSELLERS.format(category="Gone"), "{}")
    redis_client.set(KEY_CATEGORIES, json.dumps(categories + ["Gone"]))
    everything = P.precompute_all(shop_engine, local_store, redis_client, settings=SETTINGS)
    assert everything["day"] == DAY.isoformat() and everything["model_id"] == trained
    assert everything["users"] == sum(everything["segments"].values()) > 0
    assert redis_client.get(KEY_BESTSELLERS.format(category="Gone")) is None  # stale list removed


def test_precompute_for_a_non_live_model_and_errors(shop_engine, local_store, redis_client):
    params = TrainParams(window_days=21, epochs=2, no_components=8, threads=1, seed=5)
    model_id = train_model(shop_engine, local_store, DAY, params)["model_id"]
    shard = int(P.active_users(shop_engine, DAY, SETTINGS.active_days, SETTINGS)["shard"].iloc[0])
    with pytest.raises(P.PrecomputeError, match="no LIVE model"):
        P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, settings=SETTINGS)
    for bad in (SETTINGS.precompute_shards, -1, "EU|mobile|new"):
        with pytest.raises(P.PrecomputeError, match="bad shard"):
            P.precompute_shard(shop_engine, local_store, redis_client, DAY, bad, model_id=model_id, settings=SETTINGS)
    with pytest.raises(registry.UnknownModelError):
        P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, model_id="nope", settings=SETTINGS)
    out = P.precompute_shard(shop_engine, local_store, redis_client, DAY, shard, model_id=model_id, settings=SETTINGS)
    assert out["users"] > 0
    keys = {k.decode() for k in redis_client.keys("recs:*")}
    assert len(keys) == out["users"] and all(k.startswith(f"recs:{model_id}:") for k in keys)
    uid = keys.pop().rsplit(":", 1)[1].strip("{}")
    assert KEY_RECS_MODEL.format(model_id=model_id, user_id=uid) in {k.decode() for k in redis_client.keys()}
    assert redis_client.keys("embedding:*") == []  # the LIVE model's embeddings are not touched
    lists = P.precompute_lists(shop_engine, local_store, redis_client, DAY, settings=SETTINGS)
    assert lists["model_id"] is None and lists["product_embeddings"] == 0 and lists["trending"] > 0
