"""The API over what the nightly pipeline really leaves: train -> promote -> publish -> precompute
on the synthetic shop (tiny params), then every tier, real time, similar items and the model status.

One pipeline run serves the whole module, so the tests here use module-scoped fixtures only
(the per-test ``engine``/``redis_client`` fixtures would empty what the pipeline wrote).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from api_helpers import AppClient, now_ms, served_shop
from recsys.api.schemas import ModelStatus, RecommendationsResponse, SimilarResponse, TrendingResponse
from recsys.constants import PURCHASE
from recsys.keys import recs_key

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
LAST_DAY = dt.date(2026, 11, 20)  # tests/conftest.py LAST_EVENT_DAY: the shop's last day of events
NEW_PRODUCT_ID = 99_001
ALLOWED_REASONS = ("Customers like you also bought...", "Because you viewed ", "Popular in ", "Trending now",
                   "New arrival", "Goes with your ")


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def pipeline(pg_engine, pg_url, small_shop, tmp_path_factory):
    """The shop in PostgreSQL, a trained LIVE model, its embeddings, and the Redis keys of precompute."""
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.extract import refresh_interactions

    def prepare(engine):
        with engine.begin() as conn:  # a product nobody has touched yet, created on the last day
            category = conn.execute(text("SELECT min(category) FROM products")).scalar()
            conn.execute(text("INSERT INTO products (product_id, name, category, price, margin, in_stock, created_at, "
                              "last_updated_at) VALUES (:p, 'Brand New Thing', :c, 20, 0.3, true, :t, :t)"),
                         {"p": NEW_PRODUCT_ID, "c": category,
                          "t": dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)})
        for back in range(21):  # co-purchases for the similar items
            refresh_interactions(engine, LAST_DAY - dt.timedelta(days=back))

    def train(engine, store):
        return train_model(engine, store, LAST_DAY + dt.timedelta(days=1),
                           TrainParams(epochs=5, no_components=16, threads=1, seed=3))["model_id"]

    with served_shop(pg_engine, pg_url, small_shop, tmp_path_factory.mktemp("pipeline"), train, prepare,
                     epochs=5, no_components=16) as shop:
        yield shop


@pytest.fixture(scope="module")
async def api(pipeline):
    async with AppClient(pipeline["settings"]) as client:
        yield client


def user_event_counts(engine, event_type: str | None = None) -> dict[int, int]:
    where = "event_type = :t" if event_type else "event_type <> 'IMPRESSION'"
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT user_id, count(*) FROM user_events WHERE {where} GROUP BY user_id"),
                            {"t": event_type}).all()
    return {int(u): int(n) for u, n in rows}


def category_of(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {int(p): c for p, c in conn.execute(text("SELECT product_id, category FROM products"))}


async def recs(api, user_id, n=10) -> RecommendationsResponse:
    r = await api.get("/recommendations", params={"user_id": user_id, "num_items": n})
    assert r.status_code == 200, r.text
    body = RecommendationsResponse.model_validate(r.json())
    assert all(i.reason.startswith(ALLOWED_REASONS) for i in body.items), [i.reason for i in body.items]
    return body


async def test_heavy_user_gets_the_precomputed_list(api, pipeline):
    counts = user_event_counts(pipeline["engine"])
    cached = [u for u, n in counts.items() if n >= 50 and pipeline["redis"].exists(recs_key(u))]
    assert cached, "the synthetic shop should have users above the threshold with cached lists"
    user = cached[0]
    stored = json.loads(pipeline["redis"].get(recs_key(user)))
    body = await recs(api, user)
    assert body.source == "personalized" and body.model_version == pipeline["model_id"]
    assert {i.product_id for i in body.items} <= set(stored["products"]) | _cross_sell_pool(api)


def _cross_sell_pool(api) -> set[int]:
    lists = api.app.state.serving.lists
    return {p for lst in lists.bestsellers.values() for p in lst.products}


async def test_light_user_gets_its_category(api, pipeline):
    counts = user_event_counts(pipeline["engine"])
    buyers = user_event_counts(pipeline["engine"], "PURCHASE")  # no cross-sell in this test
    light = sorted(u for u, n in counts.items() if 3 <= n < 50 and u not in buyers)
    assert light
    body = await recs(api, light[0])
    assert body.source == "category" and body.model_version is None
    session = api.app.state.serving.redis
    view = await session.read_user_view(light[0])
    assert body.items[0].reason == f"Popular in {view.session.categories[0]}"
    assert view.n_events == counts[light[0]]


async def test_cache_miss_is_scored_from_the_embeddings(api, pipeline):
    counts = user_event_counts(pipeline["engine"])
    user = sorted(u for u, n in counts.items() if n >= 50)[-1]
    pipeline["redis"].delete(recs_key(user))
    body = await recs(api, user)
    assert body.source == "personalized" and body.model_version == pipeline["model_id"]
    written = json.loads(pipeline["redis"].get(recs_key(user)))
    assert written["model_version"] == pipeline["model_id"] and len(written["products"]) == 100


async def test_unknown_user_gets_trending_from_precompute(api, pipeline):
    body = await recs(api, 987_654_321)
    trending = json.loads(pipeline["redis"].get("trending:global"))["products"]
    assert body.source == "trending"
    assert {i.product_id for i in body.items if i.reason == "Trending now"} <= set(trending)


async def test_real_time_new_user_three_clicks(api, pipeline):
    cats = category_of(pipeline["engine"])
    category = sorted(set(cats.values()))[0]
    products = sorted(p for p, c in cats.items() if c == category)[:3]
    user = 900_001
    for p in products:
        r = await api.post("/events/click", json={"user_id": user, "product_id": p, "timestamp": now_ms()})
        assert r.json()["status"] == "logged"
    body = await recs(api, user)
    assert body.source == "category"
    assert [cats[i.product_id] for i in body.items[:3]] == [category] * 3
    assert body.items[0].reason == f"Popular in {category}"


async def test_a_product_without_interactions_reaches_users_through_its_features(api, pipeline):
    embeddings = api.app.state.serving.embeddings
    assert embeddings.has_item(NEW_PRODUCT_ID)  # a hybrid vector from its features alone
    r = await api.get("/recommendations/similar", params={"product_id": NEW_PRODUCT_ID})
    assert r.status_code == 200 and r.json()["items"]
    assert all(i["reason"] == "Similar to Brand New Thing" for i in r.json()["items"])
    assert NEW_PRODUCT_ID in json.loads(pipeline["redis"].get("trending:new_arrivals"))["products"]
    body = await recs(api, 987_654_322, n=20)
    assert any(i.product_id == NEW_PRODUCT_ID and i.reason == "New arrival" for i in body.items)


async def test_similar_items_of_a_bestseller(api, pipeline):
    with pipeline["engine"].connect() as conn:
        top = conn.execute(text("SELECT product_id FROM user_events WHERE event_type = :p GROUP BY product_id "
                                "ORDER BY count(*) DESC, product_id LIMIT 1"), {"p": PURCHASE}).scalar()
    body = SimilarResponse.model_validate(
        (await api.get("/recommendations/similar", params={"product_id": top, "num_items": 10})).json())
    assert len(body.items) == 10 and top not in {i.product_id for i in body.items}
    assert body.items[0].reason == "Customers who bought this also bought"
    assert body.model_version == pipeline["model_id"]


async def test_trending_per_category_and_model_status(api, pipeline):
    cats = category_of(pipeline["engine"])
    category = sorted(set(cats.values()))[-1]
    body = TrendingResponse.model_validate(
        (await api.get("/recommendations/trending", params={"category": category})).json())
    assert body.items and all(cats[i.product_id] == category for i in body.items)
    status = ModelStatus.model_validate((await api.get("/models/status")).json())
    assert status.status == "LIVE" and status.model_version == pipeline["model_id"]
    assert status.last_trained_at is not None
