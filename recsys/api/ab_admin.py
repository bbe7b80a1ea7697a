"""The A/B admin bridge of the API: sync clients twinned from the async ones, calls in a thread.

The A/B operations (``recsys.abtest.service``) are sync functions shared with the
DAG and the CLI; the API runs them in a worker thread on a sync engine and a sync
Redis client that point where the serving clients point (same database URL, same
Redis server and db). The Redis client is built from the settings as the serving one
is (``recsys.clients.make_redis``: a ``rediss://`` URL keeps TLS and its options, a
``redis+cluster://`` URL gives a cluster client, ``RECSYS_REDIS_TIMEOUT_SECONDS``
bounds it); without a URL it uses the socket of the serving client's embedded server.
Built on first use, closed with the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from recsys.clients import make_engine, make_redis, redis_timeouts
from recsys.settings import Settings

T = TypeVar("T")


def sync_url(async_engine: AsyncEngine) -> str:
    """The sync URL of an async engine's database (asyncpg -> psycopg, aiosqlite -> sqlite)."""
    url = async_engine.url
    backend = url.get_backend_name()
    driver = "postgresql+psycopg" if backend == "postgresql" else backend
    return url.set(drivername=driver).render_as_string(hide_password=False)


def admin_redis(settings: Settings, client: AsyncRedis) -> redis.Redis:
    """The sync client of the admin endpoints: from ``settings`` (module docstring); ``client`` is the
    serving one, whose embedded server (no URL set) it shares."""
    if settings.redis_url:
        return make_redis(settings, timeout_seconds=settings.redis_timeout_seconds)
    return redis.Redis(unix_socket_path=client.connection_pool.connection_kwargs["path"],
                       **redis_timeouts(settings.redis_timeout_seconds))


class ABAdmin:
    """Sync clients for the A/B operations, built lazily from the serving clients."""

    def __init__(self, settings: Settings, async_engine: AsyncEngine, async_redis: AsyncRedis):
        self.settings = settings
        self._async_engine, self._async_redis = async_engine, async_redis
        self._engine: Engine | None = None
        self._redis: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(sync_url(self._async_engine))
            return self._engine

    @property
    def redis(self) -> redis.Redis:
        with self._lock:
            if self._redis is None:
                self._redis = admin_redis(self.settings, self._async_redis)
            return self._redis

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._redis is not None:
            self._redis.close()
