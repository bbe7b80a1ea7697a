"""Helpers shared by test modules that need a database or settings of their own (import this, not conftest)."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from recsys.db.url import normalise_database_url
from recsys.db.migrate import upgrade

PG_ADMIN_URL = os.environ.get("RECSYS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_database(prefix: str):
    """A new PostgreSQL database migrated with Alembic (its URL), dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(normalise_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_database_url(PG_ADMIN_URL).rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def flushed_redis(url: str):
    """A client on the test Redis database ``url``, emptied before and after."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def clear_client_caches() -> None:
    """Forget the cached settings and clients (recsys and the Airflow hooks) after the environment changed."""
    import recsys_hooks

    from recsys import clients, settings

    settings.get_settings.cache_clear()
    clients.get_engine.cache_clear()
    clients.get_redis.cache_clear()
    for fn in (recsys_hooks.engine, recsys_hooks.redis_client, recsys_hooks.store):
        fn.cache_clear()
