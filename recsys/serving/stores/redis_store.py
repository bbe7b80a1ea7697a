"""Redis adapter of the API (redis.asyncio): the hot-path read, session updates, lists.

Every failure (refused, timeout, protocol) becomes ``DependencyDown("redis")``,
so that callers fall back to the other tiers; only a connectivity failure also opens
the circuit breaker (``recsys.db.redis_errors``: a command Redis refuses, such as a
write under ``maxmemory`` or a key of another type, concerns that command and opens
nothing). A refused write of the buffer is counted and dropped, never retried.
The cache-hit path is ``read_user_view``: one pipelined round trip, which also
carries the writes buffered since the previous request (impressions, A/B
assignments: ``recsys.serving.impressions``), sent by ``redis_wire.WirePipeline``
on a plain Redis (redis-py's cluster pipeline on a Redis Cluster).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from recsys.serving.impressions import ImpressionBuffer, PendingWrite, queue_writes, write_command
from recsys.db.redis_errors import REDIS_ERRORS, is_connectivity_error, is_refused_command
from recsys.keys import (
    KEY_REPURCHASE, ab_key, answer_key, bought_together_key, category_keys, encode_recs, events_key, list_keys,
    purchases_key, recs_key, session_key, user_embedding_key,
)
from recsys.serving.errors import DependencyDown
from recsys.serving.session_state import (
    SEED_USER_LUA, UPDATE_SESSION_LUA, SessionState, parse_session,
)
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.redis_wire import WirePipeline, pairs

log = logging.getLogger(__name__)
T = TypeVar("T")
ChargeCommand = tuple  # EVALSHA arguments: (sha, 1, key, rate, burst): ``RateLimiter.command``

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
    """What Redis holds for one user, read in one round trip: raw values, parsed on first use."""

    user_id: int = 0
    recs_raw: bytes | None = None
    model_recs_raw: bytes | None = None  # recs:<model_id>:{user_id} of the A/B treatment model, if asked
    answer_raw: bytes | None = None  # answer: of the list read (the model's when asked, else the LIVE one's)
    answer_model: str | None = None  # the model of answer_raw's key (None: the LIVE list's)
    ab_raw: bytes | None = None
    session_raw: Mapping | None = None
    n_events: int | None = None
    charge: object = None  # the rate limiter's script answer when it rode along (or its error)
    purchases_raw: bytes | None = None  # purchases:{user_id}, when asked (buy it again in /recommendations)

    @cached_property
    def recs(self) -> Mapping | None:
        return loads_or_none(self.recs_raw)

    @cached_property
    def model_recs(self) -> Mapping | None:
        return loads_or_none(self.model_recs_raw)

    @cached_property
    def ab(self) -> Mapping | None:
        return loads_or_none(self.ab_raw)

    @cached_property
    def session(self) -> SessionState:
        return parse_session(self.session_raw)


class RedisStore:
    def __init__(self, client: Redis, breaker: CircuitBreaker | None = None, buffer: ImpressionBuffer | None = None):
        self.client = client
        self.breaker = breaker or CircuitBreaker("redis")
        self.buffer = buffer if buffer is not None else ImpressionBuffer()
        self._update = client.register_script(UPDATE_SESSION_LUA)
        self._seed = client.register_script(SEED_USER_LUA)
        self.write_errors = 0
        self._wire = None if isinstance(client, RedisCluster) else WirePipeline(client)

    async def aclose(self) -> None:
        """Close the hit path's own connections (the client is closed by its owner)."""
        if self._wire is not None:
            await self._wire.aclose()

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.available():
            raise DependencyDown("redis", "circuit open after a recent failure")
        try:
            result = await call()
        except REDIS_ERRORS as exc:
            if is_connectivity_error(exc):
                self.breaker.record_failure()  # a refused command (OOM, a key of another type) opens nothing
            raise DependencyDown("redis", exc) from exc
        self.breaker.record_success()
        return result

    async def ping(self) -> bool:
        return bool(await self._guard(self.client.ping))

    async def read_user_view(self, user_id: int, model_id: str | None = None,
                             charge: ChargeCommand | None = None, *, purchases: bool = False) -> UserView:
        """recs, an A/B arm model's recs (when ``model_id``), the answer of the list read, assignment,
        counter, the user's purchases when ``purchases`` (one MGET) and session (HGETALL): one round trip, all in
        the user's hash slot.

        The buffered writes go in the same pipeline (they are buffered again when it fails), and so
        does the rate limiter's script when ``charge`` is given (its answer: ``UserView.charge``).
        A key of another type reads as missing (MGET answers nil for it).
        """
        pending = self.buffer.drain()
        keys = [recs_key(user_id), ab_key(user_id), events_key(user_id), answer_key(user_id, model_id)]
        if model_id:
            keys.append(recs_key(user_id, model_id))
        if purchases:
            keys.append(purchases_key(user_id))

        # the keys share a slot (redis-py's cluster pipeline refuses .mget)
        reads = [("MGET", *keys), ("HGETALL", session_key(user_id))]
        if charge is not None:
            reads.append(("EVALSHA", *charge))

        async def send() -> list:
            if self._wire is not None:
                return await self._wire.execute(reads + [write_command(item) for item in pending])
            pipe = self.client.pipeline(transaction=False)
            for command in reads:
                pipe.execute_command(*command)
            queue_writes(pipe, pending)
            return await pipe.execute(raise_on_error=False)

        async def run():
            out = await send()
            values, writes = out[:len(reads)], out[len(reads):]
            self._count_write_errors(pending, writes)
            for value in values[:2]:
                if isinstance(value, Exception):
                    raise value
            values[1] = pairs(values[1])
            return values

        values, session_raw, *charged = await self._sent_with(pending, run)
        recs_raw, ab_raw, count_raw, answer_raw, *more = values
        return UserView(user_id=user_id, recs_raw=recs_raw, model_recs_raw=more[0] if model_id else None,
                        answer_raw=answer_raw, answer_model=model_id or None,
                        ab_raw=ab_raw, session_raw=session_raw, n_events=_int_or_none(count_raw),
                        charge=charged[0] if charged else None, purchases_raw=more[-1] if purchases else None)

    async def _sent_with(self, pending: list[PendingWrite], run: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._guard(run)
        except DependencyDown as exc:
            if not is_refused_command(exc.__cause__):  # not sent, or not known to be: kept for the next trip
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
        return await self.get_json(user_embedding_key(user_id))

    async def model_recs(self, model_id: str, user_id: int) -> Mapping | None:
        return await self.get_json(recs_key(user_id, model_id))

    async def write_recs(self, user_id: int, payload: Mapping, ttl_seconds: int, model_id: str | None = None) -> None:
        """``recs:{user_id}``, or ``recs:{model_id}:{user_id}`` for a model that is not LIVE."""
        data = encode_recs(dict(payload))
        await self._guard(lambda: self.client.set(recs_key(user_id, model_id), data, ex=ttl_seconds))

    async def record_event(self, user_id: int, args: list[str]) -> None:
        """Apply one event to ``session:{user_id}`` and its counter (one script, ``update_args``); a purchase
        or a return deletes ``purchases:{user_id}``."""
        keys = [session_key(user_id), events_key(user_id), purchases_key(user_id)]
        await self._guard(lambda: self._update(keys=keys, args=args))

    async def record_events(self, updates: list[tuple[int, list[str]]]) -> None:
        """``record_event`` for each ``(user_id, args)``, in order, in one pipelined round trip (EVALSHA:
        a cluster pipeline refuses redis-py's script objects). An update Redis answers with NOSCRIPT (a
        restart, a flush, a node that has not run it yet) is sent again on its own, which loads it."""
        pipe = self.client.pipeline(transaction=False)
        for user_id, args in updates:
            pipe.execute_command("EVALSHA", self._update.sha, 3, session_key(user_id), events_key(user_id),
                                 purchases_key(user_id), *args)
        answers = await self._guard(lambda: pipe.execute(raise_on_error=False))
        for (user_id, args), answer in zip(updates, answers):
            if isinstance(answer, NoScriptError):
                await self.record_event(user_id, args)
            elif isinstance(answer, Exception):  # a refused command (a key of another type): this user only
                self.write_errors += 1
                log.warning("session update of user %s refused by Redis: %s", user_id, answer)

    async def seed_user(self, user_id: int, n_events: int, fields: Mapping[str, str],
                        session_ttl: int, counter_ttl: int) -> None:
        """First sight of a user: counter and history fields, never overwriting fresher values (one script)."""
        keys = [session_key(user_id), events_key(user_id)]
        args = [n_events, counter_ttl, session_ttl, *[part for item in fields.items() for part in item]]
        await self._guard(lambda: self._seed(keys=keys, args=args))

    async def session(self, user_id: int) -> SessionState:
        """``session:{user_id}`` (empty when missing)."""
        return parse_session(await self._guard(lambda: self.client.hgetall(session_key(user_id))))

    async def purchases(self, user_id: int) -> bytes | None:
        """The raw ``purchases:{user_id}`` (None when missing)."""
        return await self._guard(lambda: self.client.get(purchases_key(user_id)))

    async def set_purchases(self, user_id: int, value: bytes, ttl_seconds: int) -> None:
        await self._guard(lambda: self.client.set(purchases_key(user_id), value, ex=ttl_seconds))

    async def bought_together(self, product_ids: list[int]) -> list[Mapping | None]:
        """The ``bought_together:`` lists of ``product_ids``, in order (None where missing): one MGET."""
        values = await self._guard(lambda: self._mget_shared([bought_together_key(p) for p in product_ids]))
        return [loads_or_none(v) for v in values]

    async def repurchase(self) -> Mapping | None:
        """``repurchase:categories``, the nightly repurchase intervals."""
        return await self.get_json(KEY_REPURCHASE)

    async def _mget_shared(self, keys: list[str]):
        """MGET of shared keys: in a Redis Cluster they are in different slots (one MGET per node)."""
        if isinstance(self.client, RedisCluster):
            return await self.client.mget_nonatomic(keys)
        return await self.client.mget(keys)

    async def read_lists(self) -> dict:
        """trending, new arrivals, categories and every category's bestsellers (two round trips)."""
        trending, new, cats = await self._guard(lambda: self._mget_shared(list_keys()))
        categories = [str(c) for c in (loads_or_none(cats) or [])]
        best = {}
        if categories:
            values = await self._guard(lambda: self._mget_shared(category_keys(categories)))
            best = {c: loads_or_none(v) for c, v in zip(categories, values) if v is not None}
        return {"trending": loads_or_none(trending), "new_arrivals": loads_or_none(new),
                "categories": categories, "bestsellers": best}
