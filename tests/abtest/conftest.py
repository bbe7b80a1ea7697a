"""A/B test fixtures: a small catalog, a LIVE and a TRAINING model with embeddings, the API on them."""

from __future__ import annotations

import pytest

from ab_helpers import REDIS_URL, TOKEN, catalog, open_client, register, write_trending
from recsys.api.app import create_app
from recsys.artifacts import LocalArtifactStore
from recsys.settings import Settings


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def ab_settings(pg_url, tmp_path):
    return Settings(database_url=pg_url, redis_url=REDIS_URL, artifact_uri=str(tmp_path / "artifacts"),
                    var_dir=tmp_path / "var", api_refresh_seconds=3600, admin_token=TOKEN,
                    personalized_min_events=0, ab_min_detectable_effect=1.0)


@pytest.fixture
def ab_store(ab_settings):
    return LocalArtifactStore(ab_settings.resolved_artifact_uri)


@pytest.fixture
def ab_world(engine, redis_client, ab_store):
    """Products 1..40; ``m-control`` LIVE (prefers high ids), ``m-treat`` TRAINING (prefers low ids)."""
    catalog(engine)
    write_trending(redis_client)
    register(engine, ab_store, "m-control", "LIVE", 1, prefer_low_ids=False)
    register(engine, ab_store, "m-treat", "TRAINING", 2, prefer_low_ids=True)
    register(engine, ab_store, "m-old", "ARCHIVED", 3, prefer_low_ids=True)
    return engine


@pytest.fixture(params=["engine", "sqlite_engine"])
def world(request, ab_store):
    """Products 1..40; ``m-control`` LIVE, ``m-treat`` TRAINING; on PostgreSQL, then on SQLite."""
    db = request.getfixturevalue(request.param)
    catalog(db)
    register(db, ab_store, "m-control", "LIVE", 1, prefer_low_ids=False)
    register(db, ab_store, "m-treat", "TRAINING", 2, prefer_low_ids=True)
    return db


@pytest.fixture
async def ab_api(ab_world, ab_settings, ab_store):
    app = create_app(ab_settings, store=ab_store, refresh_in_background=False)
    client, close = await open_client(app)
    client.app = app
    yield client
    await close()
