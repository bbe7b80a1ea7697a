"""Redis adapter of the API (redis.asyncio): the hot-path read, session updates, lists.

Every failure (refused, timeout, protocol) becomes ``DependencyDown("redis")``,
so that callers fall back to the other tiers; connection failures and timeouts
also open the circuit breaker (a command Redis refuses, such as a key of another
type, concerns one request and opens nothing).
The cache-hit path is ``read_user_view``: one pipelined round trip, which also
carries the writes buffered since the previous request (impressions, A/B
assignments: ``recsys.abtest.impressions``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recsys.abtest.impressions import ImpressionBuffer, PendingWrite, queue_writes
from recsys.api.breaker import CircuitBreaker
from recsys.api.errors import DependencyDown
from recsys.api.session_state import (
    EMPTY_SESSION, SEED_USER_LUA, UPDATE_SESSION_LUA, SessionState, parse_session,
)
from recsys.constants import (
    KEY_AB_ASSIGNMENT,
    KEY_BESTSELLERS,
    KEY_CATEGORIES,
    KEY_NEW_ARRIVALS,
    KEY_RECS,
    KEY_RECS_MODEL,
    KEY_SESSION,
    KEY_TRENDING,
    KEY_USER_EMBEDDING,
    KEY_USER_EVENTS,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

def loads_or_none(raw) -> dict | list | None:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("ignoring a Redis value that is not JSON: %r", raw[:80])
        return None


def _int_or_none(raw) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class UserView:
    """What Redis holds for one user, read in one round trip."""

    recs: Mapping | None = None
    model_recs: Mapping | None = None  # recs:{model_id}:{user_id} of the A/B treatment model, if asked
    ab: Mapping | None = None
    session: SessionState = EMPTY_SESSION
    n_events: int | None = None


class RedisStore:
    def __init__(self, client: Redis, breaker: CircuitBreaker | None = None, buffer: ImpressionBuffer | None = None):
        self.client = client
        self.breaker = breaker or CircuitBreaker("redis")
        self.buffer = buffer if buffer is not None else ImpressionBuffer()
        self._update = client.register_script(UPDATE_SESSION_LUA)
        self._seed = client.register_script(SEED_USER_LUA)
        self.write_errors = 0

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.available():
            raise DependencyDown("redis", "circuit open after a recent failure")
        try:
            result = await call()
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)):
                self.breaker.record_failure()  # a refused command (a key of another type) opens nothing
            raise DependencyDown("redis", exc) from exc
        self.breaker.record_success()
        return result

    async def ping(self) -> bool:
        return bool(await self._guard(self.client.ping))

    async def read_user_view(self, user_id: int, model_id: str | None = None) -> UserView:
        """recs, an A/B arm model's recs (when ``model_id``), assignment, counter (one MGET) and session
        (HGETALL): one round trip, two commands.

        The buffered writes go in the same pipeline; they are buffered again when it fails.
        A key of another type reads as missing (MGET answers nil for it).
        """
        pending = self.buffer.drain()
        keys = [KEY_RECS.format(user_id=user_id), KEY_AB_ASSIGNMENT.format(user_id=user_id),
                KEY_USER_EVENTS.format(user_id=user_id)]
        if model_id:
            keys.append(KEY_RECS_MODEL.format(model_id=model_id, user_id=user_id))

        async def run():
            pipe = self.client.pipeline(transaction=False)
            pipe.mget(keys)
            pipe.hgetall(KEY_SESSION.format(user_id=user_id))
            queue_writes(pipe, pending)
            out = await pipe.execute(raise_on_error=False)
            reads, writes = out[:2], out[2:]
            for value in reads:
                if isinstance(value, Exception):
                    raise value
            self._count_write_errors(pending, writes)
            return reads

        values, session_raw = await self._sent_with(pending, run)
        recs_raw, ab_raw, count_raw, *model_raw = values
        return UserView(recs=loads_or_none(recs_raw), model_recs=loads_or_none(model_raw[0]) if model_id else None,
                        ab=loads_or_none(ab_raw), session=parse_session(session_raw),
                        n_events=_int_or_none(count_raw))

    async def _sent_with(self, pending: list[PendingWrite], run: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._guard(run)
        except DependencyDown:
            self.buffer.requeue(pending)
            raise

    def _count_write_errors(self, pending: list[PendingWrite], results: list) -> None:
        for item, result in zip(pending, results):
            if isinstance(result, Exception):  # a refused command (wrong type...): retrying will not help
                self.write_errors += 1
                log.warning("buffered %s to %s refused by Redis: %s", item.kind, item.key, result)

    async def flush_buffer(self) -> int:
        """Send the buffered writes now (idle periods, shutdown); returns how many were sent."""
        pending = self.buffer.drain()
        if not pending:
            return 0

        async def run():
            pipe = self.client.pipeline(transaction=False)
            queue_writes(pipe, pending)
            self._count_write_errors(pending, await pipe.execute(raise_on_error=False))

        await self._sent_with(pending, run)
        return len(pending)

    async def get_json(self, key: str):
        return loads_or_none(await self._guard(lambda: self.client.get(key)))

    async def user_embedding(self, user_id: int) -> Mapping | None:
        return await self.get_json(KEY_USER_EMBEDDING.format(user_id=user_id))

    async def model_recs(self, model_id: str, user_id: int) -> Mapping | None:
        return await self.get_json(KEY_RECS_MODEL.format(model_id=model_id, user_id=user_id))

    async def write_recs(self, user_id: int, payload: Mapping, ttl_seconds: int, model_id: str | None = None) -> None:
        """``recs:{user_id}``, or ``recs:{model_id}:{user_id}`` for a model that is not LIVE."""
        data = orjson.dumps(payload)
        key = KEY_RECS_MODEL.format(model_id=model_id, user_id=user_id) if model_id else KEY_RECS.format(user_id=user_id)
        await self._guard(lambda: self.client.set(key, data, ex=ttl_seconds))

    async def record_event(self, user_id: int, args: list[str]) -> None:
        """Apply one event to ``session:{user_id}`` and its counter (one script, ``update_args``)."""
        keys = [KEY_SESSION.format(user_id=user_id), KEY_USER_EVENTS.format(user_id=user_id)]
        await self._guard(lambda: self._update(keys=keys, args=args))

    async def seed_user(self, user_id: int, n_events: int, fields: Mapping[str, str],
                        session_ttl: int, counter_ttl: int) -> None:
        """First sight of a user: counter and history fields, never overwriting fresher values (one script)."""
        keys = [KEY_SESSION.format(user_id=user_id), KEY_USER_EVENTS.format(user_id=user_id)]
        args = [n_events, counter_ttl, session_ttl, *[part for item in fields.items() for part in item]]
        await self._guard(lambda: self._seed(keys=keys, args=args))

    async def read_lists(self) -> dict:
        """trending, new arrivals, categories and every category's bestsellers (two round trips)."""
        trending, new, cats = await self._guard(
            lambda: self.client.mget([KEY_TRENDING, KEY_NEW_ARRIVALS, KEY_CATEGORIES]))
        categories = [str(c) for c in (loads_or_none(cats) or [])]
        best = {}
        if categories:
            keys = [KEY_BESTSELLERS.format(category=c) for c in categories]
            values = await self._guard(lambda: self.client.mget(keys))
            best = {c: loads_or_none(v) for c, v in zip(categories, values) if v is not None}
        return {"trending": loads_or_none(trending), "new_arrivals": loads_or_none(new),
                "categories": categories, "bestsellers": best}
