"""One transaction's statements for a batch of events (the group commit of ``db_store.DbStore``).

In one transaction, whatever the batch size:
1. the batch's users, one ``INSERT ... ON CONFLICT DO NOTHING`` (ids sorted, so two workers'
   batches never wait on each other in opposite orders);
2. the events, one ``INSERT ... ON CONFLICT (client_event_id) DO NOTHING RETURNING``; an event
   whose client id is already stored (a retry, or a reuse) is read back in one query and compared
   (same user, product and type: a duplicate; else a conflict). The batcher never puts two events
   with the same id in one batch;
3. the inserted users' event counts (impressions excluded), one query. Each event gets the count as
   of itself: the user's count after the batch minus their later events of the batch. With a
   ``count_cap`` (the API passes ``RECSYS_PERSONALIZED_MIN_EVENTS``, the only use of the count) a user's
   rows are counted up to the cap plus their later events of the batch: a user with years of history
   costs as much as one at the threshold, and every event is still on the same side of the threshold
   as its exact count (an event at or past it gets at least the cap; one below gets its exact count).
On PostgreSQL the statements have one text whatever the batch size (arrays through ``unnest``, the
event ids drawn from the table's sequence first so that each row knows its id), so they are
compiled and prepared once; a multi-row ``VALUES`` would be compiled again for every batch size.
SQLite (the laptop default) uses SQLAlchemy Core's multi-row insert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from recsys.db.models import User, UserEvent
from recsys.serving.session_state import COUNTED_EVENTS

_EVENTS = UserEvent.__table__
_USERS = User.__table__
_COUNTED = sorted(COUNTED_EVENTS)


@dataclass(frozen=True)
class EventWrite:
    inserted: bool  # False: the client event id was already logged (a retry)
    event_id: int | None
    n_events: int  # the user's events after this one (impressions excluded)
    same_event: bool = True  # False: the client event id names a different event


def _insert(dialect: str, table):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _identity(row) -> tuple:
    return row["user_id"], row["product_id"], row["event_type"]


def _seen_rows(rows: Sequence[Mapping]) -> list[dict]:
    """One users row per user of the batch: first and last seen from its events' timestamps."""
    spans: dict[int, tuple[int, int]] = {}
    for r in rows:
        lo, hi = spans.get(r["user_id"], (r["timestamp"], r["timestamp"]))
        spans[r["user_id"]] = (min(lo, r["timestamp"]), max(hi, r["timestamp"]))

    def utc(ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)

    return [{"user_id": u, "first_seen_at": utc(lo), "last_seen_at": utc(hi)} for u, (lo, hi) in sorted(spans.items())]


_COLUMNS = ("user_id", "product_id", "event_type", "session_id", "timestamp", "price", "client_event_id",
            "request_id")
_PG_TYPES = ("BIGINT", "BIGINT", "TEXT", "TEXT", "BIGINT", "DOUBLE PRECISION", "TEXT", "TEXT")
_PG_USERS = text("INSERT INTO users (user_id, first_seen_at, last_seen_at) SELECT * FROM unnest("
                 "CAST(:user_id AS BIGINT[]), CAST(:first AS TIMESTAMPTZ[]), CAST(:last AS TIMESTAMPTZ[])) "
                 "ON CONFLICT (user_id) DO NOTHING")
_PG_NEW_IDS = text("SELECT nextval(pg_get_serial_sequence('user_events', 'event_id')) FROM generate_series(1, :n)")
_PG_EVENTS = text(
    "INSERT INTO user_events (event_id, " + ", ".join(f'"{c}"' for c in _COLUMNS) + ") SELECT * FROM unnest("
    "CAST(:event_id AS BIGINT[]), " + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(_COLUMNS, _PG_TYPES))
    + ") ON CONFLICT (client_event_id) DO NOTHING RETURNING event_id")
Written = tuple  # (event id, inserted now, same event as the stored one)


async def _stored(conn: AsyncConnection, cids: list[str]) -> dict[str, tuple[int, tuple]]:
    """client id -> (event id, identity) of the rows already stored under those ids."""
    found = await conn.execute(select(_EVENTS.c.client_event_id, _EVENTS.c.event_id, _EVENTS.c.user_id,
                                      _EVENTS.c.product_id, _EVENTS.c.event_type)
                               .where(_EVENTS.c.client_event_id.in_(cids)))
    return {cid: (int(eid), (user, product, etype)) for cid, eid, user, product, etype in found}


def _resolve(row: Mapping, stored: dict[str, tuple[int, tuple]]) -> Written:
    """A row that was not inserted: the stored row of its client id, the same event or not."""
    event_id, identity = stored.get(row["client_event_id"], (None, None))
    return event_id, False, identity is not None and identity == _identity(row)


async def _write_postgresql(conn: AsyncConnection, rows: Sequence[Mapping]) -> list[Written]:
    """Rows go in client-id order: two transactions inserting the same ids wait in one order, never deadlock."""
    order = sorted(range(len(rows)), key=lambda i: rows[i].get("client_event_id") or "")
    rows = [rows[i] for i in order]
    users = _seen_rows(rows)
    await conn.execute(_PG_USERS, {"user_id": [u["user_id"] for u in users],
                                   "first": [u["first_seen_at"] for u in users],
                                   "last": [u["last_seen_at"] for u in users]})
    ids = [int(i) for i in (await conn.execute(_PG_NEW_IDS, {"n": len(rows)})).scalars()]
    params = {"event_id": ids, **{c: [r.get(c) for r in rows] for c in _COLUMNS}}
    inserted = {int(i) for i in (await conn.execute(_PG_EVENTS, params)).scalars()}
    old = [r["client_event_id"] for r, i in zip(rows, ids) if i not in inserted]
    stored = await _stored(conn, old) if old else {}
    written = [(i, True, True) if i in inserted else _resolve(r, stored) for r, i in zip(rows, ids)]
    out: list[Written] = [()] * len(rows)
    for position, w in zip(order, written):
        out[position] = w
    return out


async def _write_core(conn: AsyncConnection, dialect: str, rows: Sequence[Mapping]) -> list[Written]:
    await conn.execute(_insert(dialect, _USERS).values(_seen_rows(rows))
                       .on_conflict_do_nothing(index_elements=["user_id"]))
    with_ids = [dict(r) for r in rows if r.get("client_event_id")]
    new: dict[str, int] = {}
    if with_ids:
        stmt = (_insert(dialect, _EVENTS).values(with_ids).on_conflict_do_nothing(index_elements=["client_event_id"])
                .returning(_EVENTS.c.client_event_id, _EVENTS.c.event_id))
        new = {cid: int(eid) for cid, eid in await conn.execute(stmt)}
    without = [dict(r) for r in rows if not r.get("client_event_id")]
    stmt = _insert(dialect, _EVENTS).returning(_EVENTS.c.event_id, sort_by_parameter_order=True)
    new_ids = iter([int(e) for e in (await conn.execute(stmt, without)).scalars()] if without else [])
    old = [r["client_event_id"] for r in with_ids if r["client_event_id"] not in new]
    stored = await _stored(conn, old) if old else {}
    out: list[Written] = []
    for r in rows:
        cid = r.get("client_event_id")
        out.append((next(new_ids), True, True) if not cid else (new[cid], True, True) if cid in new
                   else _resolve(r, stored))
    return out


_PG_CAPPED_COUNTS = text(
    "SELECT u.user_id, (SELECT count(*) FROM (SELECT 1 FROM user_events e WHERE e.user_id = u.user_id"
    " AND e.event_type = ANY(CAST(:types AS TEXT[])) LIMIT u.cap) AS s)"
    " FROM unnest(CAST(:user_id AS BIGINT[]), CAST(:cap AS BIGINT[])) AS u(user_id, cap)")


async def _counts(conn: AsyncConnection, dialect: str, batch_counted: Mapping[int, int],
                  count_cap: int | None) -> dict[int, int]:
    """user -> their counted events, for the users of ``batch_counted`` (their counted events inserted by this
    batch). With ``count_cap`` on PostgreSQL a user's rows are read up to ``count_cap`` plus their batch's."""
    if not batch_counted:
        return {}
    users = sorted(batch_counted)
    if count_cap is not None and dialect == "postgresql":
        rows = await conn.execute(_PG_CAPPED_COUNTS, {"user_id": users, "types": _COUNTED,
                                                      "cap": [count_cap + batch_counted[u] for u in users]})
    else:
        rows = await conn.execute(select(_EVENTS.c.user_id, func.count()).where(
            _EVENTS.c.user_id.in_(users), _EVENTS.c.event_type.in_(_COUNTED)).group_by(_EVENTS.c.user_id))
    return {int(u): int(n) for u, n in rows}


async def write_event_batch(conn: AsyncConnection, dialect: str, rows: Sequence[Mapping], *,
                            count_cap: int | None = None) -> list[EventWrite]:
    """Store ``rows`` (and their new users) in the open transaction of ``conn``; one result per row, in order.
    ``count_cap``: each event's ``n_events`` is exact below it, at least it otherwise (module docstring)."""
    if dialect == "postgresql":
        written = await _write_postgresql(conn, rows)
    else:
        written = await _write_core(conn, dialect, rows)
    batch_counted: dict[int, int] = {}  # users with an event inserted now -> their counted events of it
    for r, w in zip(rows, written):
        if w[1]:
            batch_counted[r["user_id"]] = batch_counted.get(r["user_id"], 0) + (r["event_type"] in COUNTED_EVENTS)
    counts = await _counts(conn, dialect, batch_counted, count_cap)
    later: dict[int, int] = {}  # counted events of the user inserted after this one, in this batch
    results: list[EventWrite] = []
    for r, (event_id, inserted, same) in zip(reversed(rows), reversed(written)):
        n = counts.get(r["user_id"], 0) - later.get(r["user_id"], 0)
        if inserted and r["event_type"] in COUNTED_EVENTS:
            later[r["user_id"]] = later.get(r["user_id"], 0) + 1
        results.append(EventWrite(inserted=inserted, event_id=event_id, n_events=max(n, 0), same_event=same))
    return results[::-1]


__all__ = ["EventWrite", "write_event_batch"]
