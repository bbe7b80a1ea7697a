"""A command Redis refuses (OOM under ``maxmemory``, WRONGTYPE, NOSCRIPT) is not Redis being down: serving's
circuit breaker stays closed, personalised answers are still served, the rate limit fails open (counted)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from redis.exceptions import (
    BusyLoadingError, ClusterDownError, ConnectionError, DataError, NoScriptError, OutOfMemoryError, ReadOnlyError,
    ResponseError, TimeoutError,
)

from api_helpers import metric, now_ms, pid, write_user_recs
from recsys.keys import KEY_IMPRESSIONS, KEY_RATE_LIMIT
from recsys.db.redis_errors import is_connectivity_error, is_refused_command
from recsys.keys import session_key
from recsys.serving.errors import DependencyDown

pytestmark = pytest.mark.anyio
PRODUCTS = [pid("Shoes", j) for j in (1, 2, 3, 4, 6, 7)]


def wrapped(exc: BaseException) -> DependencyDown:
    try:
        raise DependencyDown("redis", exc) from exc
    except DependencyDown as outer:
        return outer


@pytest.mark.parametrize("exc", [
    OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    NoScriptError("No matching script. Please use EVAL."),
    ReadOnlyError("You can't write against a read only replica."),
    ResponseError("BUSYGROUP Consumer Group name already exists"), DataError("Invalid input of type: 'dict'"),
])
def test_a_refused_command_is_not_a_connectivity_failure(exc):
    assert is_refused_command(exc) and not is_connectivity_error(exc)
    assert is_refused_command(wrapped(exc)) and not is_connectivity_error(wrapped(exc))


@pytest.mark.parametrize("exc", [
    ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), TimeoutError("Timeout reading"),
    asyncio.TimeoutError(), ConnectionResetError(), BusyLoadingError("Redis is loading the dataset in memory"),
    ClusterDownError("The cluster is down"), ResponseError("BUSY Redis is busy running a script."),
])
def test_a_connectivity_failure_is_not_a_refused_command(exc):
    assert is_connectivity_error(exc) and not is_refused_command(exc)
    assert is_connectivity_error(wrapped(exc)) and not is_refused_command(wrapped(exc))


def test_neither_for_no_error_or_another_error():
    assert not is_connectivity_error(None) and not is_refused_command(None)
    assert not is_connectivity_error(ValueError("x")) and not is_refused_command(ValueError("x"))


async def _sources(api, users) -> list[str]:
    answers = await asyncio.gather(*(api.get("/recommendations", params={"user_id": u, "num_items": 5})
                                     for u in users))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    return [r.json()["source"] for r in answers]


async def test_maxmemory_noeviction_during_traffic_keeps_personalised_answers(api, redis_client):
    """The operator's ``maxmemory`` with ``noeviction``: every write (the limiter's script, impressions, session
    updates, answers written back) is refused with OOM while reads still answer. Serving goes on."""
    warm, fresh = [11, 12, 13], [21, 22, 23]
    for user in warm + fresh:
        write_user_recs(redis_client, user, PRODUCTS, n_events=80)
    assert await _sources(api, warm) == ["personalized"] * 3  # loads the limiter's script, caches the answers
    state = api.app.state
    skipped = metric((await api.get("/metrics")).text, "recsys_rate_limit_unavailable_total")
    saved = redis_client.config_get("maxmemory")["maxmemory"], redis_client.config_get("maxmemory-policy")
    try:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", 1)
        sources = []
        for _ in range(3):  # more than one request per worker: an open breaker would show from the second on
            sources += await _sources(api, warm + fresh)
        click = await api.post("/events/click", json={"user_id": 21, "product_id": pid("Shoes", 1),
                                                      "timestamp": now_ms()})
        write_errors = state.serving.redis.write_errors
    finally:
        redis_client.config_set("maxmemory", saved[0])
        redis_client.config_set("maxmemory-policy", saved[1]["maxmemory-policy"])
    assert sources == ["personalized"] * 18
    assert click.status_code == 200 and click.json()["status"] == "logged"  # committed; its session update refused
    assert write_errors > 0  # the impressions of the round trips were refused, and dropped
    assert state.serving.redis.breaker.failures == 0 and state.rate_limiter.breaker.failures == 0
    text = (await api.get("/metrics")).text
    assert metric(text, "recsys_rate_limit_unavailable_total") - skipped >= 19  # each request above, unchecked
    assert await _sources(api, fresh) == ["personalized"] * 3  # and after the restore


async def test_a_bucket_redis_refuses_fails_the_limit_open_and_serving_goes_on(api, redis_client):
    """WRONGTYPE inside the limiter's script (its key holds a string): counted, served, no breaker opened."""
    write_user_recs(redis_client, 31, PRODUCTS, n_events=80)
    redis_client.set(KEY_RATE_LIMIT.format(name="tests"), "not a hash")
    assert await _sources(api, [31, 31, 31]) == ["personalized"] * 3
    r = await api.post("/events/click", json={"user_id": 31, "product_id": pid("Shoes", 2), "timestamp": now_ms()})
    assert r.status_code == 200
    assert await _sources(api, [31]) == ["personalized"]
    state = api.app.state
    assert state.serving.redis.breaker.failures == 0 and state.rate_limiter.breaker.failures == 0
    assert metric((await api.get("/metrics")).text, "recsys_rate_limit_unavailable_total") >= 5


async def test_a_refused_read_does_not_send_the_buffered_writes_twice(api, redis_client):
    """The hit's round trip carries the buffered impressions: when one of its reads is refused (a session key of
    another type), the writes were sent all the same and are not sent again."""
    write_user_recs(redis_client, 41, PRODUCTS, n_events=80)
    redis_client.set(session_key(42), "not a hash")
    for user in (41, 42, 41):
        r = await api.get("/recommendations", params={"user_id": user})
        assert r.status_code == 200
    await api.app.state.serving.redis.flush_buffer()
    request_ids = Counter(fields[b"rid"] for _, fields in redis_client.xrange(KEY_IMPRESSIONS))
    assert len(request_ids) == 3 and set(request_ids.values()) == {1}
