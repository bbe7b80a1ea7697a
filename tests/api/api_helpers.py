"""Helpers of the API tests: a small hand-made catalog, the documented Redis lists, an ASGI client."""

from __future__ import annotations

from asgi_client import AppClient, open_client  # noqa: F401  (re-exported for the tests)
from shop_dates import LAST_EVENT_DAY

import datetime as dt
import json
import os
import time
from contextlib import contextmanager


from recsys.keys import KEY_BESTSELLERS, KEY_CATEGORIES, KEY_NEW_ARRIVALS, KEY_RECS, KEY_TRENDING, KEY_USER_EVENTS

REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CATEGORIES = ("Shoes", "Fashion", "Electronics", "Books", "Home")
PER_CATEGORY = 10
OUT_OF_STOCK = 5  # the 5th product of each category
NEW_PRODUCT = 10  # the 10th product of each category is 2 days old


def pid(category: str, j: int) -> int:
    """Product ids: 100 * (category index + 1) + j, j in 1..10 (Shoes 101..110, Fashion 201..210, ...)."""
    return 100 * (CATEGORIES.index(category) + 1) + j


ALL_PRODUCTS = [pid(c, j) for c in CATEGORIES for j in range(1, PER_CATEGORY + 1)]


async def get_recs(api, user_id, n=10):
    """``GET /recommendations`` validated against its response model, with its request id checked."""
    from recsys.api.schemas import RecommendationsResponse

    r = await api.get("/recommendations", params={"user_id": user_id, "num_items": n})
    assert r.status_code == 200, r.text
    body = RecommendationsResponse.model_validate(r.json())
    assert body.request_id == r.headers["x-request-id"]
    return body


@contextmanager
def tier_work(app):
    """A list that gets one item per ``GET /recommendations`` the tiers work out while inside (a cached
    answer sent as it is adds none)."""
    service, calls = app.state.recommender, []
    original = service._recommend_view

    async def counted(*args, **kwargs):
        calls.append(1)
        return await original(*args, **kwargs)

    service._recommend_view = counted
    try:
        yield calls
    finally:
        del service._recommend_view


def catalog_rows(now: dt.datetime | None = None) -> list[dict]:
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = []
    for cat in CATEGORIES:
        for j in range(1, PER_CATEGORY + 1):
            created = now - dt.timedelta(days=2 if j == NEW_PRODUCT else 200)
            rows.append({"product_id": pid(cat, j), "name": f"{cat} item {j}", "category": cat,
                         "price": 10.0 * j, "margin": j / 20, "in_stock": j != OUT_OF_STOCK,
                         "created_at": created, "last_updated_at": created})
    return rows


def ranked(products: list[int]) -> str:
    n = len(products)
    return json.dumps({"products": products, "scores": [float(n - i) for i in range(n)],
                       "popularity": [10 * (n - i) for i in range(n)], "updated_at": "2026-11-27T00:00:00+00:00"})


def write_lists(redis_client) -> None:
    """trending (one per category, round-robin), new arrivals, bestsellers, categories: documented shapes."""
    trending = [pid(cat, j) for j in range(1, 4) for cat in CATEGORIES]
    pipe = redis_client.pipeline()
    pipe.set(KEY_TRENDING, ranked(trending))
    pipe.set(KEY_NEW_ARRIVALS, ranked([pid(cat, NEW_PRODUCT) for cat in CATEGORIES]))
    for cat in CATEGORIES:
        pipe.set(KEY_BESTSELLERS.format(category=cat), ranked([pid(cat, j) for j in range(1, PER_CATEGORY)]))
    pipe.set(KEY_CATEGORIES, json.dumps(list(CATEGORIES)))
    pipe.execute()




def metric(text: str, prefix: str) -> float:
    """The sum of the samples of ``/metrics`` text whose line starts with ``prefix``."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def now_ms() -> int:
    return int(time.time() * 1000)


def lists_json() -> dict:
    """The documented list values of ``write_lists`` as parsed JSON (for the pure tests)."""
    trending = [pid(cat, j) for j in range(1, 4) for cat in CATEGORIES]
    return {"trending": json.loads(ranked(trending)),
            "new_arrivals": json.loads(ranked([pid(cat, NEW_PRODUCT) for cat in CATEGORIES])),
            "categories": list(CATEGORIES),
            "bestsellers": {cat: json.loads(ranked([pid(cat, j) for j in range(1, PER_CATEGORY)]))
                            for cat in CATEGORIES}}


def write_user_recs(redis_client, user_id: int, products: list[int], *, n_events: int | None = None,
                    model_version: str = "model-a", reasons: list[str] | None = None) -> None:
    """``recs:{user_id}`` in the documented shape (scores descending) and, optionally, the event counter."""
    n = len(products)
    payload = {"products": products, "scores": [1.0 - i / (2 * n) for i in range(n)],
               "reasons": reasons or ["Customers like you also bought..."] * n,
               "model_version": model_version, "updated_at": "2026-11-27T00:00:00+00:00"}
    redis_client.set(KEY_RECS.format(user_id=user_id), json.dumps(payload))
    if n_events is not None:
        redis_client.set(KEY_USER_EVENTS.format(user_id=user_id), n_events)


def insert_events(engine, user_id: int, products: list[int], event_type: str = "CLICK",
                  start_ms: int | None = None) -> None:
    """``user_events`` rows for one user (one per product, a second apart), and the user's row."""
    from sqlalchemy import insert

    from recsys.db.models import User, UserEvent

    start = start_ms or now_ms() - 3_600_000
    with engine.begin() as conn:
        if conn.execute(User.__table__.select().where(User.user_id == user_id)).first() is None:
            conn.execute(insert(User), [{"user_id": user_id}])
        conn.execute(insert(UserEvent), [
            {"user_id": user_id, "product_id": p, "event_type": event_type, "timestamp": start + i * 1000,
             "price": 1.0 if event_type == "PURCHASE" else None} for i, p in enumerate(products)])


def register_live_model(engine, store, model_id: str, user_ids, user_vectors, item_ids, item_vectors,
                        metrics: dict | None = None) -> None:
    """A LIVE registry row and its embedding files in the artifact store (what publish leaves)."""
    from sqlalchemy import insert

    from recsys.artifacts import model_key
    from recsys.db.models import RecommendationModel
    from recsys.families.vectors.files import publish_arrays

    checksums = publish_arrays(store, model_id, user_ids, user_vectors, item_ids, item_vectors)
    with engine.begin() as conn:
        conn.execute(insert(RecommendationModel), [{
            "model_id": model_id, "model_type": "HYBRID", "version": 1, "artifacts": checksums, "train_date": dt.date(2026, 11, 26),
            "metrics": metrics or {"new": {"precision@10": 0.12, "ndcg@10": 0.2}}, "params": {},
            "status": "LIVE", "training_samples_count": 10, "artifact_uri": store.uri(model_key(model_id, "")),
            "created_at": dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.timezone.utc)}])


class RoundTrips:
    """Counts Redis round trips (packed sends of redis.asyncio) and SQL statements of one app."""

    def __init__(self, monkeypatch, async_engine=None):
        from redis.asyncio.connection import AbstractConnection
        from sqlalchemy import event

        self.redis = 0
        self.sql = 0
        original = AbstractConnection.send_packed_command

        async def counting(conn, command, check_health=True):
            self.redis += 1
            return await original(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
        if async_engine is not None:
            event.listen(async_engine.sync_engine, "before_cursor_execute", self._count_sql)

    def _count_sql(self, *args, **kwargs):
        self.sql += 1

    def reset(self) -> None:
        self.redis = self.sql = 0


def truncate_all(engine) -> None:
    """Empty every table (what the root conftest's ``engine`` fixture does before each test)."""
    from sqlalchemy import text

    from recsys.db.models import Base

    names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))



@contextmanager
def served_shop(engine, database_url: str, shop, root, train, prepare=None, **settings_values):
    """The synthetic ``shop`` in PostgreSQL (``prepare(engine)`` may add to it), the model ``train(engine,
    store)`` registers promoted LIVE, published and precomputed into the test Redis; yields ``settings``,
    ``engine``, ``store``, ``redis``, ``model_id`` and ``precomputed``; Redis and the tables are emptied after."""
    import redis as redis_sync

    from recsys import registry
    from recsys.artifacts import LocalArtifactStore
    from recsys.data.loading import load_shop
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model
    from recsys.settings import Settings

    truncate_all(engine)
    load_shop(engine, shop)
    if prepare is not None:
        prepare(engine)
    settings = Settings(database_url=database_url, redis_url=REDIS_URL, artifact_uri=str(root / "artifacts"),
                        var_dir=root / "var", api_refresh_seconds=3600, **settings_values)
    store, client = LocalArtifactStore(settings.resolved_artifact_uri), redis_sync.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        model_id = train(engine, store)
        registry.promote(engine, model_id, reason="integration test")
        publish_model(engine, store, model_id)
        yield {"settings": settings, "engine": engine, "store": store, "redis": client, "model_id": model_id,
               "precomputed": precompute_all(engine, store, client, day=LAST_EVENT_DAY, settings=settings)}
    finally:
        client.flushdb()
        client.close()
        truncate_all(engine)
