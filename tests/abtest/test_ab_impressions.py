"""Impression logging: the buffer rides with the next read, the flusher commits before it acknowledges."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import func, select

from ab_helpers import REDIS_URL
from recsys.abtest.flusher import flush_impressions, write_entries
from recsys.serving.impressions import ImpressionBuffer, decode_entry, impression_fields
from recsys.keys import IMPRESSIONS_GROUP, KEY_IMPRESSIONS
from recsys.db.models import ABImpression, User, UserEvent
from recsys.keys import ab_key
from recsys.serving.errors import DependencyDown
from recsys.serving.stores.redis_store import RedisStore


def fields(rid: str, user: int = 7, products=(1, 2, 3), test_id=4, arm="treatment"):
    return impression_fields(request_id=rid, user_id=user, ts_ms=1_700_000_000_000, products=list(products),
                             model_id="m-treat", arm=arm, test_id=test_id, source="personalized")


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar() for t in (ABImpression, UserEvent, User))


def test_entry_round_trip():
    row, events = decode_entry(b"1-0", {k.encode(): v.encode() for k, v in fields("r1").items()})
    assert row == {"impression_id": "1-0", "request_id": "r1", "user_id": 7, "timestamp": 1_700_000_000_000,
                   "test_id": 4, "arm": "treatment", "model_id": "m-treat", "source": "personalized",
                   "products": [1, 2, 3]}
    assert [e["client_event_id"] for e in events] == ["imp:1-0:0", "imp:1-0:1", "imp:1-0:2"]
    assert {e["event_type"] for e in events} == {"IMPRESSION"}
    row, _ = decode_entry("2-0", fields("", test_id=None, arm=None, products=()))
    assert (row["request_id"], row["test_id"], row["arm"], row["products"]) == (None, None, None, [])


def test_flush_writes_each_impression_once_and_acknowledges_after_the_commit(engine, redis_client):
    for i in range(5):
        redis_client.xadd(KEY_IMPRESSIONS, fields(f"r{i}", user=10 + i % 2))
    done = flush_impressions(engine, redis_client, batch=2)
    assert (done["impressions"], done["events"], done["batches"]) == (5, 15, 3)
    assert counts(engine) == (5, 15, 2) and redis_client.xlen(KEY_IMPRESSIONS) == 0
    assert flush_impressions(engine, redis_client)["impressions"] == 0


def test_a_failed_commit_leaves_the_entries_pending_and_a_retry_writes_them_once(engine, redis_client, monkeypatch):
    import recsys.abtest.flusher as imp

    for i in range(3):
        redis_client.xadd(KEY_IMPRESSIONS, fields(f"r{i}"))
    real = imp.upsert_rows
    calls = {"n": 0}

    def fail_on_events(engine_, table, df, **kw):
        calls["n"] += 1
        if table == "user_events":
            raise RuntimeError("database went away")
        return real(engine_, table, df, **kw)

    monkeypatch.setattr(imp, "upsert_rows", fail_on_events)
    with pytest.raises(RuntimeError):
        flush_impressions(engine, redis_client, consumer="a")
    assert redis_client.xpending(KEY_IMPRESSIONS, IMPRESSIONS_GROUP)["pending"] == 3  # not acknowledged
    assert counts(engine)[0] == 0  # one transaction per batch: nothing half written
    monkeypatch.setattr(imp, "upsert_rows", real)
    done = flush_impressions(engine, redis_client, consumer="b", claim_idle_ms=0)  # another flusher takes over
    assert done["claimed"] == 3 and counts(engine) == (3, 9, 1)
    assert redis_client.xpending(KEY_IMPRESSIONS, IMPRESSIONS_GROUP)["pending"] == 0
    assert redis_client.xlen(KEY_IMPRESSIONS) == 0


def test_writing_the_same_entries_twice_changes_nothing(engine):
    entries = [("5-0", fields("r5")), ("6-0", fields("r6", user=8))]
    write_entries(engine, entries)
    write_entries(engine, entries)
    assert counts(engine) == (2, 6, 2)


def test_buffer_cap_and_requeue_order():
    buf = ImpressionBuffer(max_items=3)
    for i in range(5):
        buf.add_impression({"rid": str(i)})
    assert len(buf) == 3 and buf.dropped == 2
    items = buf.drain()
    assert [i.value["rid"] for i in items] == ["2", "3", "4"] and buf.oldest_age() is None
    buf.add_impression({"rid": "5"})
    buf.requeue(items)
    assert [i.value["rid"] for i in buf.drain()] == ["3", "4", "5"] and buf.dropped == 3


@pytest.mark.anyio
async def test_buffered_writes_ride_with_the_next_read_and_survive_a_failure(redis_client):
    client = AsyncRedis.from_url(REDIS_URL)
    store = RedisStore(client)
    try:
        store.buffer.add_impression(fields("r1"))
        store.buffer.add_set(ab_key(7), b'{"test_id": 4}', 60)
        view = await store.read_user_view(7)
        assert view.ab == {"test_id": 4} or view.ab is None  # read before the SET of the same pipeline
        assert redis_client.xlen(KEY_IMPRESSIONS) == 1 and redis_client.ttl(ab_key(7)) > 0
        store.buffer.add_impression(fields("r2"))
        await client.aclose()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        dead = AsyncRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        broken = RedisStore(dead, buffer=store.buffer)
        with pytest.raises(DependencyDown):
            await broken.read_user_view(7)
        assert len(store.buffer) == 1  # kept for the next attempt
        client = AsyncRedis.from_url(REDIS_URL)
        store = RedisStore(client, buffer=store.buffer)
        assert await store.flush_buffer() == 1 and redis_client.xlen(KEY_IMPRESSIONS) == 2
    finally:
        await client.aclose()


def test_flush_and_results_on_sqlite(sqlite_engine, redis_client, local_store):
    """The laptop default: the same flusher, tests and results on SQLite."""
    import datetime as dt

    from ab_helpers import register
    from recsys.abtest import results, service
    from recsys.serving.assignment import assign_arm

    register(sqlite_engine, local_store, "m-control", "LIVE", 1, prefer_low_ids=False)
    register(sqlite_engine, local_store, "m-treat", "TRAINING", 2, prefer_low_ids=True)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    test = service.start_test(sqlite_engine, treatment_model_id="m-treat", control_model_id="m-control",
                              treatment_fraction=0.5, now=start)
    ts = int((start + dt.timedelta(minutes=1)).timestamp() * 1000)
    for user in range(1, 21):
        arm = assign_arm(test["test_id"], user, 0.5)
        redis_client.xadd(KEY_IMPRESSIONS, impression_fields(
            request_id=f"q{user}", user_id=user, ts_ms=ts, products=[1, 2], model_id=test[f"{arm}_model_id"],
            arm=arm, test_id=test["test_id"], source="personalized"))
    assert flush_impressions(sqlite_engine, redis_client)["impressions"] == 20
    row = service.stop_test(sqlite_engine, test["test_id"])
    arms = row["results"]["arms"]
    assert row["status"] == "STOPPED" and arms["control"]["impressions"] + arms["treatment"]["impressions"] == 20
    assert results.compute_results(sqlite_engine, test["test_id"])["num_users"] == 20


def test_the_follow_flusher_writes_new_impressions_and_keeps_its_heartbeat_fresh(engine, pg_url, redis_client,
                                                                                 tmp_path):
    """``python -m recsys impressions flush --follow --heartbeat F``: the docker-compose flusher service."""
    import os
    import subprocess
    import sys
    import time

    heartbeat = tmp_path / "flusher.heartbeat"
    env = {**os.environ, "RECSYS_DATABASE_URL": pg_url, "RECSYS_REDIS_URL": REDIS_URL,
           "RECSYS_VAR_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "recsys", "impressions", "flush", "--follow", "--consumer",
                             "compose", "--heartbeat", str(heartbeat)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists():  # the first pass (empty stream) ends after its 1 s wait
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.1)
        first = heartbeat.stat().st_mtime
        for i in range(3):
            redis_client.xadd(KEY_IMPRESSIONS, fields(f"f{i}", user=20))
        while counts(engine)[0] < 3 or heartbeat.stat().st_mtime == first:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.1)
        assert counts(engine) == (3, 9, 1)
        assert redis_client.xpending(KEY_IMPRESSIONS, IMPRESSIONS_GROUP)["pending"] == 0  # acknowledged
    finally:
        proc.terminate()
        proc.wait(timeout=30)
