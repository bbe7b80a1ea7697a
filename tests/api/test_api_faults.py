"""Faults and bad input: 422 never 500, 404 for unknown things, Redis or the database down."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from api_helpers import insert_events, now_ms, open_client, pid, write_user_recs
from recsys.api.app import create_app
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.db_store import DbStore, make_async_engine
from recsys.serving.stores.redis_store import RedisStore

pytestmark = pytest.mark.anyio
DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/nowhere"


@pytest.mark.parametrize("params, field", [
    ({"user_id": 1, "num_items": 0}, "num_items"),
    ({"user_id": 1, "num_items": -1}, "num_items"),
    ({"user_id": 1, "num_items": 101}, "num_items"),
    ({"user_id": 1, "num_items": "abc"}, "num_items"),
    ({}, "user_id"),
    ({"user_id": "abc"}, "user_id"),
    ({"user_id": 0}, "user_id"),
    ({"user_id": 2.5}, "user_id"),
])
async def test_bad_query_parameters_are_422(api, params, field):
    r = await api.get("/recommendations", params=params)
    assert r.status_code == 422
    assert r.json()["field"] == field and field in r.json()["detail"]


@pytest.mark.parametrize("path", ["/recommendations/trending", "/recommendations/similar"])
async def test_bad_num_items_on_the_lists_is_422(api, path):
    r = await api.get(path, params={"num_items": 101, "product_id": 101})
    assert r.status_code == 422 and r.json()["field"] == "num_items"


async def test_unknown_category_and_product_are_404(api):
    r = await api.get("/recommendations/trending", params={"category": "Spaceships"})
    assert r.status_code == 404 and "Spaceships" in r.json()["detail"]
    r = await api.get("/recommendations/similar", params={"product_id": 424242})
    assert r.status_code == 404 and "424242" in r.json()["detail"]


async def test_an_unexpected_error_is_a_500_with_a_request_id(api, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.app.state.recommender, "respond", broken)
    r = await api.get("/recommendations", params={"user_id": 1}, headers={"X-Request-ID": "trace-1"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "trace-1" and r.json()["request_id"] == "trace-1"
    assert 'recsys_errors_total{endpoint="/recommendations",status="500"} 1.0' in (await api.get("/metrics")).text


def kill_redis(app) -> None:
    state = app.state.serving
    state.redis = RedisStore(Redis.from_url(DEAD_REDIS, socket_connect_timeout=0.2), CircuitBreaker("redis", 0))


def kill_database(app) -> None:
    state = app.state.serving
    state.db = DbStore(make_async_engine(DEAD_DATABASE, 0.5), CircuitBreaker("database", 0))


def degraded(metrics_text: str, dependency: str) -> float:
    line = next(x for x in metrics_text.splitlines() if x.startswith(f'recsys_degraded_total{{dependency="{dependency}"}}'))
    return float(line.split()[-1])


async def test_redis_down_recommendations_come_from_the_in_process_lists(api, catalog_engine):
    insert_events(catalog_engine, 70, [pid("Books", 1), pid("Books", 2)])
    kill_redis(api.app)
    r = await api.get("/recommendations", params={"user_id": 70})
    assert r.status_code == 200 and r.json()["source"] == "category"  # history read from the database
    assert r.json()["items"][0]["reason"] == "Popular in Books"
    r = await api.get("/recommendations", params={"user_id": 71})
    assert r.status_code == 200 and r.json()["source"] == "trending" and len(r.json()["items"]) == 10
    r = await api.get("/recommendations/trending", params={"category": "Home"})
    assert r.status_code == 200 and r.json()["items"]
    r = await api.post("/events/click", json={"user_id": 70, "product_id": pid("Home", 1), "timestamp": now_ms()})
    assert r.status_code == 200 and r.json()["status"] == "logged"  # the database kept it
    health = await api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["redis"].startswith("error")
    assert degraded((await api.get("/metrics")).text, "redis") >= 3


async def test_redis_down_from_the_start_lists_come_from_the_database(catalog_engine, api_settings):
    insert_events(catalog_engine, 72, [pid("Shoes", 2)] * 5, event_type="PURCHASE")
    settings = api_settings.model_copy(update={"redis_url": DEAD_REDIS, "redis_timeout_seconds": 0.2})
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        assert app.state.serving.lists.origin == "database"
        r = await client.get("/recommendations", params={"user_id": 73})
        assert r.status_code == 200 and r.json()["source"] == "trending"
        assert r.json()["items"][0]["product_id"] == pid("Shoes", 2)
        r = await client.get("/recommendations/trending", params={"category": "Shoes"})
        assert r.json()["items"][0] == {"product_id": pid("Shoes", 2), "score": 5.0, "popularity": 5}
    finally:
        await close()


async def test_database_down_events_503_and_reads_served_from_redis(api, redis_client, catalog_engine):
    products = [pid("Home", 1), pid("Home", 2)]
    write_user_recs(redis_client, 42, products, n_events=60)
    assert (await api.get("/recommendations", params={"user_id": 42})).json()["source"] == "personalized"
    kill_database(api.app)
    r = await api.post("/events/click", json={"user_id": 42, "product_id": pid("Home", 1), "timestamp": now_ms()})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["detail"].startswith("database unavailable")
    r = await api.post("/events/purchase", json={"user_id": 42, "product_id": 999_999, "price": 1.0,
                                                 "timestamp": now_ms()})
    assert r.status_code == 503  # unknown to the snapshot, and the database cannot tell: retry later
    r = await api.get("/recommendations", params={"user_id": 42})
    assert r.status_code == 200 and r.json()["source"] == "personalized"
    r = await api.get("/recommendations", params={"user_id": 43})  # never seen: count unknown
    assert r.status_code == 200 and r.json()["source"] == "trending"
    assert (await api.get("/models/status")).status_code == 200
    assert (await api.get("/health")).json()["database"].startswith("error")
    assert degraded((await api.get("/metrics")).text, "database") >= 2
    with catalog_engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM user_events")).scalar() == 0


async def test_both_down_health_is_503_and_recommendations_still_answer(api):
    kill_redis(api.app)
    kill_database(api.app)
    assert (await api.get("/health")).status_code == 503
    r = await api.get("/recommendations", params={"user_id": 5})
    assert r.status_code == 200 and r.json()["source"] == "trending"
