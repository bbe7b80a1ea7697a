"""Benchmark state: a throw-away PostgreSQL database, Redis DB 10, a shop with a LIVE model.

``bench_database`` creates ``recsys_bench_<name>`` (migrated with Alembic) and drops it at
the end; ``bench_redis`` flushes the benchmark's Redis database before and after.
``serve_ready_shop`` loads a synthetic shop ending yesterday, trains, promotes and
publishes a model and precomputes every active user's list: what a nightly run leaves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from bench.common import log
from recsys.clients import make_engine
from recsys.db.url import normalise_database_url

PG_ADMIN_URL = os.environ.get("RECSYS_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RECSYS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")


@contextlib.contextmanager
def bench_database(name: str):
    """A fresh migrated database ``recsys_bench_<name>``; yields its URL, dropped on exit."""
    from recsys.db.migrate import upgrade

    db = f"recsys_bench_{name}"
    admin = create_engine(normalise_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = normalise_database_url(PG_ADMIN_URL).rsplit("/", 1)[0] + f"/{db}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def bench_redis():
    """The benchmark's Redis database (``RECSYS_BENCH_REDIS_URL``, DB 10), flushed before and after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@dataclass
class ServedShop:
    url: str
    artifact_dir: str
    model_id: str
    day: dt.date
    users: int
    products: int
    events: int
    seconds: dict


def serve_ready_shop(url: str, redis_client, artifact_dir: str, *, n_users: int, n_products: int,
                     days: int = 30, epochs: int = 5, seed: int = 42) -> ServedShop:
    """Load a shop whose last day is yesterday (UTC) and run the nightly steps on it, each timed."""
    from recsys import registry
    from recsys.artifacts import LocalArtifactStore
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model
    from recsys.settings import get_settings

    engine, store = make_engine(url), LocalArtifactStore(artifact_dir)
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    secs: dict[str, float] = {}

    def step(name, fn):
        start = time.perf_counter()
        out = fn()
        secs[name] = round(time.perf_counter() - start, 2)
        return out

    shop = step("generate", lambda: generate_shop(n_users=n_users, n_products=n_products, days=days, seed=seed,
                                                  end_date=day))
    step("load", lambda: load_shop(engine, shop))
    params = TrainParams(window_days=days, epochs=epochs, seed=seed)
    trained = step("train", lambda: train_model(engine, store, day + dt.timedelta(days=1), params))
    model_id = trained["model_id"]
    step("promote", lambda: registry.promote(engine, model_id, reason="benchmark"))
    step("publish", lambda: publish_model(engine, store, model_id))
    step("precompute", lambda: precompute_all(engine, store, redis_client, day, settings=get_settings()))
    engine.dispose()
    log(f"served shop ready: {n_users} users, {n_products} products, {len(shop.events)} events; {secs}")
    return ServedShop(url, artifact_dir, model_id, day, n_users, n_products, len(shop.events), secs)
