"""API test fixtures: the hand-made catalog in PostgreSQL, the documented Redis lists,
and the app built against the test database and the test Redis (httpx over ASGI)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from api_helpers import REDIS_URL, catalog_rows, open_client, write_lists
from recsys.api.app import create_app
from recsys.db.models import Product
from recsys.settings import Settings


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def catalog_engine(engine):
    """The test database with the hand-made catalog."""
    with engine.begin() as conn:
        conn.execute(insert(Product), catalog_rows())
    return engine


@pytest.fixture
def api_settings(pg_url, tmp_path):
    return Settings(database_url=pg_url, redis_url=REDIS_URL, artifact_uri=str(tmp_path / "artifacts"),
                    var_dir=tmp_path / "var", api_refresh_seconds=3600)


@pytest.fixture
async def api(catalog_engine, redis_client, api_settings):
    """A client on the app over the seeded catalog and Redis lists (``api.app`` is the app)."""
    write_lists(redis_client)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    client.app = app
    yield client
    await close()
