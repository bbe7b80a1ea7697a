"""``redis_wire.WirePipeline`` on the real Redis: replies in order, an error reply in its place, one timeout
for the round trip, a connection Redis closed while idle, and the hit path's read through it."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from api_helpers import REDIS_URL
from recsys.keys import KEY_IMPRESSIONS
from recsys.keys import events_key, recs_key, session_key
from recsys.serving.stores.redis_store import RedisStore
from recsys.serving.stores.redis_wire import WirePipeline, pairs

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(redis_client):  # redis_client: the test's Redis database, flushed
    c = Redis.from_url(REDIS_URL, socket_timeout=0.3)
    yield c
    await c.aclose()


async def test_replies_in_order_and_an_error_reply_in_its_place(client, redis_client):
    redis_client.hset("h", mapping={"a": "1", "b": "2"})
    wire = WirePipeline(client)
    try:
        out = await wire.execute([("SET", "k", b"v", "EX", 60), ("MGET", "k", "missing"), ("GET", "h"),
                                  ("HGETALL", "h"), ("INCRBY", "n", 3)])
        assert out[0] == b"OK" and out[1] == [b"v", None]
        assert isinstance(out[2], ResponseError) and "WRONGTYPE" in str(out[2])
        assert pairs(out[3]) == {b"a": b"1", b"b": b"2"} and out[4] == 3
        assert await wire.execute([("INCRBY", "n", 1)]) == [4]  # the connection read whole is used again
        assert len(wire._idle) == 1
        assert redis_client.ttl("k") > 0
    finally:
        await wire.aclose()


async def test_one_timeout_bounds_the_round_trip_and_the_connection_is_dropped(client):
    wire = WirePipeline(client)
    try:
        with pytest.raises(TimeoutError):
            await wire.execute([("PING",), ("BLPOP", "nothing", 2)])  # blocks 2 s, the timeout is 0.3 s
        assert wire._idle == []  # half read: never reused
        assert await wire.execute([("PING",)]) == [b"PONG"]
    finally:
        await wire.aclose()


async def test_a_connection_closed_by_redis_while_idle_is_replaced(client, redis_client):
    wire = WirePipeline(client)
    try:
        [client_id] = await wire.execute([("CLIENT", "ID")])
        assert redis_client.client_kill_filter(_id=client_id) == 1
        assert await wire.execute([("PING",)]) == [b"PONG"]  # tried again on a fresh connection
    finally:
        await wire.aclose()


async def test_the_hit_read_through_the_wire_equals_the_pipeline_read(client, redis_client):
    """``read_user_view`` on a plain Redis (the wire) and through redis-py's pipeline (the Redis Cluster
    path, forced here) read the same view and send the same buffered writes."""
    redis_client.set(recs_key(7), b'{"items": []}')
    redis_client.set(events_key(7), 61)
    redis_client.hset(session_key(7), mapping={"cats": "Shoes", "ts": "5"})
    views = []
    for wire in (True, False):
        store = RedisStore(client)
        if not wire:
            await store.aclose()
            store._wire = None
        store.buffer.add_set(f"probe:{wire}", b"x", 60)
        store.buffer.add_impression({"user_id": "7", "wire": str(wire)})
        views.append(await store.read_user_view(7))
        await store.aclose()
    a, b = views
    assert (a.recs_raw, a.n_events, dict(a.session_raw)) == (b.recs_raw, b.n_events, dict(b.session_raw))
    assert a.n_events == 61 and a.session.categories == ("Shoes",)
    assert redis_client.get("probe:True") == redis_client.get("probe:False") == b"x"
    entries = [fields for _, fields in redis_client.xrange(KEY_IMPRESSIONS)]
    assert entries == [{b"user_id": b"7", b"wire": b"True"}, {b"user_id": b"7", b"wire": b"False"}]


async def test_opening_a_connection_does_not_count_against_the_round_trip(redis_client, monkeypatch):
    """24 concurrent trips on a fresh wire, each opening a connection that takes longer than the trip's
    timeout (0.3 s) to connect: all answered, since a connection's set-up is bounded on its own (the connect
    timeout, 1 s, plus the trip's)."""
    from redis.asyncio.connection import Connection

    client = Redis.from_url(REDIS_URL, socket_timeout=0.3, socket_connect_timeout=1.0)

    real = Connection._connect

    async def slow_connect(self):  # the socket's connect, under every path that opens a connection
        await asyncio.sleep(0.35)
        await real(self)

    monkeypatch.setattr(Connection, "_connect", slow_connect)
    wire = WirePipeline(client)
    try:
        out = await asyncio.gather(*(wire.execute([("PING",)]) for _ in range(24)))
        assert out == [[b"PONG"]] * 24 and len(wire._idle) == 24
    finally:
        await wire.aclose()
        await client.aclose()
