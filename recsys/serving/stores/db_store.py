"""Database adapter of the API: SQLAlchemy async (asyncpg on PostgreSQL, aiosqlite on SQLite).

Why async and not a threadpool: every click is a write, and an async pool lets
one worker keep many writes in flight without a thread per request; the same
Core tables of ``recsys.db.models`` keep the SQL portable between the two
databases. A failure becomes ``DependencyDown("database")`` (503, or the read's
fallback); a circuit breaker keeps reads from waiting on a database that just
became unreachable, and only that opens it: one request's bad value is its own
422 and never degrades the other clients.

Events are written by a group commit (``group_commit.GroupCommit`` over
``event_batch.write_event_batch``): one transaction per batch of concurrent
events, each request answered after its batch committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy import case, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from recsys.constants import MS_PER_DAY, PURCHASE, RETURN, STATUS_LIVE
from recsys.db.errors import is_connectivity_error, is_input_error, short_reason
from recsys.db.merch_rules import active_statement, version_of, version_statement
from recsys.db.models import ABTest, Product, RecommendationModel, UserEvent, UserProductInteraction
from recsys.serving.errors import DependencyDown, InvalidInputError
from recsys.serving.session_state import COUNTED_EVENTS
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.event_batch import EventWrite, write_event_batch
from recsys.serving.stores.group_commit import GroupCommit

log = logging.getLogger(__name__)
T = TypeVar("T")
_EVENTS = UserEvent.__table__
_COUNTED = sorted(COUNTED_EVENTS)


async def _version(conn) -> str:
    return version_of((await conn.execute(version_statement())).one())


def async_database_url(url: str) -> str:
    """``postgresql[+psycopg]://`` -> ``postgresql+asyncpg://``; ``sqlite://`` -> ``sqlite+aiosqlite://``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    return url


def make_async_engine(url: str, timeout_seconds: float = 2.0) -> AsyncEngine:
    url = async_database_url(url)
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=timeout_seconds,
        connect_args={"timeout": timeout_seconds, "command_timeout": timeout_seconds},
    )


class DbStore:
    def __init__(self, engine: AsyncEngine, breaker: CircuitBreaker | None = None, *, batch_max: int = 256,
                 batch_wait_ms: float = 1.0, batches_in_flight: int = 2, count_cap: int | None = None):
        self.engine = engine
        self.count_cap = count_cap  # events' n_events exact below it (``event_batch``): the personalisation threshold
        self.breaker = breaker or CircuitBreaker("database")
        self.dialect = engine.dialect.name
        self.events: GroupCommit[Mapping, EventWrite] = GroupCommit(
            self._write_events, max_batch=batch_max, max_wait_s=batch_wait_ms / 1000, max_in_flight=batches_in_flight,
            key=lambda row: row.get("client_event_id") or None)

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``; only a connectivity failure opens the breaker (``recsys.db.errors``).

        A value of this request the database refuses is this request's 422; any other
        database error is this request's 503 (the read paths fall back) and opens nothing.
        """
        if not self.breaker.available():
            raise DependencyDown("database", "circuit open after a recent failure")
        try:
            result = await call()
        except (SQLAlchemyError, OSError, asyncio.TimeoutError, OverflowError) as exc:
            if is_input_error(exc):
                raise InvalidInputError(f"the database refused a value of this request: {short_reason(exc, 200)}"
                                        ) from exc
            if is_connectivity_error(exc):
                self.breaker.record_failure()
            else:
                log.error("database error (breaker left closed): %s", short_reason(exc))
            raise DependencyDown("database", type(exc).__name__) from exc
        self.breaker.record_success()
        return result

    async def _read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def run():
            async with self.engine.connect() as conn:
                return await fn(conn)

        return await self._guard(run)

    async def ping(self) -> bool:
        return await self._read(lambda c: c.scalar(text("SELECT 1"))) == 1

    async def insert_event(self, row: Mapping) -> EventWrite:
        """Store one event (and its user, if new) and count the user's events; returns after the commit of
        the batch holding it (``group_commit``). Its own bad value: ``InvalidInputError``; the batch's
        transaction failed: ``DependencyDown``."""
        return await self.events.submit(row)

    async def drain(self) -> None:
        """Wait for the queued events' batches (app shutdown)."""
        await self.events.drain()

    async def _write_events(self, rows: list[Mapping]) -> list[EventWrite | Exception]:
        """One transaction for ``rows``. A row the database refuses is found by bisecting (each half in
        its own transaction) and gets its 422; the others are written. A half whose transaction fails
        otherwise gets its 503, the halves already committed keep their answer."""
        async def run():
            async with self.engine.begin() as conn:
                return await write_event_batch(conn, self.dialect, rows, count_cap=self.count_cap)

        try:
            return await self._guard(run)
        except InvalidInputError as exc:
            if len(rows) == 1:
                return [exc]
        except DependencyDown as exc:
            return [exc] * len(rows)
        mid = len(rows) // 2
        return await self._write_events(rows[:mid]) + await self._write_events(rows[mid:])

    async def product_category(self, product_id: int) -> str | None:
        """The product's category ("" when it has none); None when the product is unknown."""
        row = await self._read(lambda c: c.execute(
            select(Product.category).where(Product.product_id == product_id)))
        found = row.first()
        return None if found is None else (found[0] or "")

    async def user_history(self, user_id: int, limit: int = 50) -> tuple[int, list[tuple[int, str]]]:
        """The user's event count and latest ``limit`` ``(product_id, event_type)``, newest first."""

        async def fn(conn):
            n = await conn.scalar(select(func.count()).select_from(_EVENTS).where(
                _EVENTS.c.user_id == user_id, _EVENTS.c.event_type.in_(_COUNTED)))
            rows = (await conn.execute(
                select(_EVENTS.c.product_id, _EVENTS.c.event_type)
                .where(_EVENTS.c.user_id == user_id, _EVENTS.c.event_type.in_(_COUNTED))
                .order_by(_EVENTS.c.timestamp.desc()).limit(limit))).all()
            return int(n or 0), [(int(p), str(e)) for p, e in rows if p is not None]

        return await self._read(fn)

    async def catalog_rows(self) -> list[dict]:
        cols = [Product.product_id, Product.name, Product.category, Product.price, Product.margin,
                Product.in_stock, Product.created_at]
        rows = await self._read(lambda c: c.execute(select(*cols)))
        return [dict(r._mapping) for r in rows]

    async def merch_rules_version(self) -> str:
        """The rules' version (``recsys.db.merch_rules.version_of``): one small aggregate query."""
        return await self._read(lambda c: _version(c))

    async def merch_rules(self) -> list[dict]:
        """The merchandising rules not expired."""
        async def fn(conn):
            return [dict(r._mapping) for r in await conn.execute(active_statement())]

        return await self._read(fn)

    async def live_model(self) -> dict | None:
        async def fn(conn):
            row = (await conn.execute(select(RecommendationModel.__table__)
                                      .where(RecommendationModel.status == STATUS_LIVE))).first()
            return dict(row._mapping) if row else None

        return await self._read(fn)

    async def model_artifacts(self, model_id: str) -> dict[str, str]:
        """The checksums the registry recorded for a model's files (empty when none or no such model)."""
        stmt = select(RecommendationModel.artifacts).where(RecommendationModel.model_id == model_id)
        return dict(await self._read(lambda c: c.scalar(stmt)) or {})

    async def model_type(self, model_id: str) -> str | None:
        """The registry's ``model_type`` of a model (its family; None when no such model)."""
        stmt = select(RecommendationModel.model_type).where(RecommendationModel.model_id == model_id)
        return await self._read(lambda c: c.scalar(stmt))

    async def running_ab_test(self) -> dict | None:
        async def fn(conn):
            row = (await conn.execute(select(ABTest.__table__).where(ABTest.status == "RUNNING")
                                      .order_by(ABTest.test_id.desc()).limit(1))).first()
            return dict(row._mapping) if row else None

        return await self._read(fn)

    async def event_counts(self, days: int) -> tuple[int | None, list[tuple[int, str, int]]]:
        """The newest event's time and ``(product_id, event_type, n)`` over the ``days`` days before it."""

        async def fn(conn):
            newest = await conn.scalar(select(func.max(_EVENTS.c.timestamp)))
            if newest is None:
                return None, []
            rows = await conn.execute(
                select(_EVENTS.c.product_id, _EVENTS.c.event_type, func.count())
                .where(_EVENTS.c.timestamp > newest - days * MS_PER_DAY, _EVENTS.c.product_id.is_not(None))
                .group_by(_EVENTS.c.product_id, _EVENTS.c.event_type))
            return int(newest), [(int(p), str(e), int(n)) for p, e, n in rows]

        return await self._read(fn)

    async def user_purchases(self, user_id: int, since_ms: int) -> list[tuple[int, int, int]]:
        """The user's purchases since ``since_ms``: ``(product_id, last purchase ms, times)``, leaving out a
        product returned after its last purchase."""
        e = _EVENTS.c
        bought = e.event_type == PURCHASE
        last = func.max(case((bought, e.timestamp))).label("last")
        returned = func.max(case((e.event_type == RETURN, e.timestamp))).label("returned")
        stmt = (select(e.product_id, last, func.count(case((bought, 1))), returned)
                .where(e.user_id == user_id, e.event_type.in_((PURCHASE, RETURN)), e.timestamp >= since_ms,
                       e.product_id.is_not(None))
                .group_by(e.product_id))
        rows = await self._read(lambda c: c.execute(stmt))
        return [(int(p), int(t), int(n)) for p, t, n, r in rows if t is not None and (r is None or r < t)]

    async def recent_products(self, user_id: int, event_types, limit: int) -> list[int]:
        """The user's ``limit`` products of ``event_types`` events, most recent first."""
        e = _EVENTS.c
        newest = func.max(e.timestamp).label("newest")
        stmt = (select(e.product_id, newest)
                .where(e.user_id == user_id, e.event_type.in_(sorted(event_types)), e.product_id.is_not(None))
                .group_by(e.product_id).order_by(newest.desc(), e.product_id).limit(limit))
        rows = await self._read(lambda c: c.execute(stmt))
        return [int(p) for p, _ in rows]

    async def co_purchases(self, product_id: int, limit: int) -> list[tuple[int, int]]:
        """Products bought by the buyers of ``product_id``: ``(product_id, buyers)``, most first."""
        a, b = UserProductInteraction.__table__.alias("a"), UserProductInteraction.__table__.alias("b")
        n = func.count().label("n")
        stmt = (select(b.c.product_id, n).select_from(a.join(b, a.c.user_id == b.c.user_id))
                .where(a.c.product_id == product_id, a.c.purchases > 0, b.c.purchases > 0,
                       b.c.product_id != product_id)
                .group_by(b.c.product_id).order_by(n.desc(), b.c.product_id).limit(limit))
        rows = await self._read(lambda c: c.execute(stmt))
        return [(int(p), int(k)) for p, k in rows]


__all__ = ["DbStore", "EventWrite", "async_database_url", "make_async_engine"]
