"""/health, /metrics, /models/status, /docs, similar and trending shapes, request ids."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from api_helpers import open_client, pid, register_live_model, write_lists, write_user_recs
from test_api_faults import kill_database, kill_redis
from recsys.api.app import create_app
from recsys.api.schemas import Health, ModelStatus, SimilarResponse, TrendingResponse
from recsys.artifacts import LocalArtifactStore

pytestmark = pytest.mark.anyio
METRIC_NAMES = ("recsys_request_latency_seconds_bucket", "recsys_cache_requests_total",
                "recsys_recommendation_source_total", "recsys_degraded_total", "recsys_errors_total",
                "recsys_events_logged_total")
HEALTH_MAX_AGE_SECONDS = 1.0  # README: /health pings each store at most once a second


async def test_health_ok(api):
    r = await api.get("/health")
    body = Health.model_validate(r.json())
    assert r.status_code == 200 and body.status == "ok" and body.catalog_products == 50


def anonymous(api) -> httpx.AsyncClient:
    """A client without the tests' API key (a load balancer) on the running app of ``api``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://api.test")


async def test_health_tells_anyone_its_status_and_key_holders_the_details(api):
    balancer = anonymous(api)
    r = await balancer.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "request_id": r.headers["x-request-id"]}
    r = await balancer.get("/health", headers={"X-API-Key": "guessed-key-0123456789"})
    assert set(r.json()) == {"status", "request_id"}
    await asyncio.sleep(HEALTH_MAX_AGE_SECONDS + 0.05)
    kill_redis(api.app)
    r = await balancer.get("/health")
    assert r.status_code == 200 and set(r.json()) == {"status", "request_id"} and r.json()["status"] == "degraded"
    assert "127.0.0.1" not in r.text and "rror" not in r.text  # no Redis error text for strangers
    details = Health.model_validate((await api.get("/health")).json())  # the tests' key
    assert details.status == "degraded" and details.redis.startswith("error") and details.database == "ok"
    assert details.catalog_products == 50
    await asyncio.sleep(HEALTH_MAX_AGE_SECONDS + 0.05)
    kill_database(api.app)
    r = await balancer.get("/health")
    assert r.status_code == 503 and set(r.json()) == {"status", "request_id"} and r.json()["status"] == "down"
    await balancer.aclose()


async def test_a_burst_of_health_calls_pings_each_store_once_a_second(api):
    state, pings = api.app.state.serving, Counter()

    def counted(name, ping):
        async def call():
            pings[name] += 1
            return await ping()
        return call

    state.redis.ping = counted("redis", state.redis.ping)
    state.db.ping = counted("database", state.db.ping)
    balancer = anonymous(api)
    answers = await asyncio.gather(*((balancer if i % 2 else api).get("/health") for i in range(60)))
    assert [r.json()["status"] for r in answers] == ["ok"] * 60
    assert pings == {"redis": 1, "database": 1}
    await asyncio.sleep(HEALTH_MAX_AGE_SECONDS + 0.05)
    await asyncio.gather(*(api.get("/health") for _ in range(10)))
    assert pings == {"redis": 2, "database": 2}
    await balancer.aclose()


async def test_request_id_is_echoed_or_made(api):
    r = await api.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123" and r.json()["request_id"] == "abc-123"
    assert len((await api.get("/health")).headers["x-request-id"]) == 32
    assert (await api.get("/no/such/path")).headers["x-request-id"]


async def test_openapi_docs(api):
    assert (await api.get("/docs")).status_code == 200
    paths = (await api.get("/openapi.json")).json()["paths"]
    for path in ("/recommendations", "/recommendations/trending", "/recommendations/similar", "/events/click",
                 "/events/purchase", "/events", "/models/status", "/health", "/metrics"):
        assert path in paths


async def test_metrics_count_requests_sources_cache_and_events(api, redis_client):
    write_user_recs(redis_client, 42, [pid("Home", 1)], n_events=60)
    await api.get("/recommendations", params={"user_id": 42})
    await api.get("/recommendations", params={"user_id": 9999})
    await api.post("/events/click", json={"user_id": 3, "product_id": pid("Home", 1), "timestamp": 1})
    text = (await api.get("/metrics")).text
    for name in METRIC_NAMES:
        assert name in text
    assert 'recsys_cache_requests_total{result="hit"} 1.0' in text
    assert 'recsys_recommendation_source_total{source="personalized"} 1.0' in text
    assert 'recsys_recommendation_source_total{source="trending"} 1.0' in text
    assert 'recsys_request_latency_seconds_count{endpoint="/recommendations"} 2.0' in text
    assert 'recsys_errors_total{endpoint="/events/click",status="422"} 1.0' in text


async def test_trending_global_and_per_category(api):
    body = TrendingResponse.model_validate((await api.get("/recommendations/trending")).json())
    assert body.category is None and body.items[0].product_id == pid("Shoes", 1) and len(body.items) == 10
    body = TrendingResponse.model_validate(
        (await api.get("/recommendations/trending", params={"category": "Books", "num_items": 20})).json())
    assert [i.product_id // 100 for i in body.items] == [4] * 9
    assert body.items[-1].product_id == pid("Books", 5)  # out of stock: last
    assert body.items[0].popularity == 90


async def test_models_status_and_similar_from_the_live_model(catalog_engine, redis_client, api_settings):
    import numpy as np

    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    products = [pid("Home", j) for j in range(1, 11)]
    vectors = np.array([[1, 0, 0.1], [0.9, 0.1, 0.2], [0, 1, 0.3], [0.95, 0.05, 0]] + [[0, -1, 0]] * 6)
    register_live_model(catalog_engine, store, "model-live", [1], [[1, 0, 1]], products, vectors)
    with catalog_engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("INSERT INTO user_product_interactions (user_id, product_id, purchases, clicks, views,"
                          " view_duration_seconds, score) VALUES (1, :a, 1, 0, 0, 0, 1), (1, :b, 1, 0, 0, 0, 1),"
                          " (2, :a, 1, 0, 0, 0, 1), (2, :b, 2, 0, 0, 0, 1), (3, :a, 1, 0, 0, 0, 1),"
                          " (3, :c, 1, 0, 0, 0, 1)"), {"a": products[0], "b": products[2], "c": products[5]})
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        status = ModelStatus.model_validate((await client.get("/models/status")).json())
        assert (status.status, status.model_version, status.training_accuracy) == ("LIVE", "model-live", 0.12)
        assert status.last_trained_at.startswith("2026-11-26") and status.metrics["new"]["ndcg@10"] == 0.2
        r = await client.get("/recommendations/similar", params={"product_id": products[0], "num_items": 4})
        body = SimilarResponse.model_validate(r.json())
        ids = [i.product_id for i in body.items]
        assert ids[0] == products[2]  # bought by two of its three buyers
        assert body.items[0].reason == "Customers who bought this also bought"
        assert products[3] in ids and products[0] not in ids  # close in embedding space; never itself
        assert next(i for i in body.items if i.product_id == products[3]).reason == "Similar to Home item 1"
        assert body.model_version == "model-live"
    finally:
        await close()
