"""One transaction's statements for a batch of events (the group commit of ``db_store.DbStore``).

In one transaction, whatever the batch size:
1. the batch's new users, one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` (ids sorted, so two
   workers' batches never wait on each other in opposite orders);
2. the events with a client event id, one multi-row ``INSERT ... ON CONFLICT (client_event_id) DO
   NOTHING RETURNING``: an id already stored (a retry, or a reuse) is then read back in one query and
   compared (same user, product and type: a duplicate; else a conflict). The batcher never puts two
   events with the same id in one batch;
3. the events without one, one ``INSERT ... RETURNING`` in parameter order;
4. the inserted users' event counts (impressions excluded), one ``GROUP BY`` query. Each event gets
   the count as of itself: the user's count after the batch minus their later events of the batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recsys.api.session_state import COUNTED_EVENTS
from recsys.db.models import User, UserEvent

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


async def _insert_with_ids(conn: AsyncConnection, dialect: str, rows: list[Mapping]) -> dict[str, tuple]:
    """client id -> (event_id, identity of the stored row, inserted now) for every row."""
    stmt = (_insert(dialect, _EVENTS).values(list(rows))
            .on_conflict_do_nothing(index_elements=["client_event_id"])
            .returning(_EVENTS.c.client_event_id, _EVENTS.c.event_id))
    out = {cid: (int(eid), None, True) for cid, eid in await conn.execute(stmt)}
    old = [r["client_event_id"] for r in rows if r["client_event_id"] not in out]
    if old:
        found = await conn.execute(select(_EVENTS.c.client_event_id, _EVENTS.c.event_id, _EVENTS.c.user_id,
                                          _EVENTS.c.product_id, _EVENTS.c.event_type)
                                   .where(_EVENTS.c.client_event_id.in_(old)))
        for cid, eid, user, product, etype in found:
            out[cid] = (int(eid), (user, product, etype), False)
    return out


async def _insert_without_ids(conn: AsyncConnection, dialect: str, rows: list[Mapping]) -> list[int]:
    stmt = _insert(dialect, _EVENTS).returning(_EVENTS.c.event_id, sort_by_parameter_order=True)
    return [int(eid) for eid in (await conn.execute(stmt, [dict(r) for r in rows])).scalars()]


async def _counts(conn: AsyncConnection, users: set[int]) -> dict[int, int]:
    if not users:
        return {}
    rows = await conn.execute(select(_EVENTS.c.user_id, func.count()).where(
        _EVENTS.c.user_id.in_(sorted(users)), _EVENTS.c.event_type.in_(_COUNTED)).group_by(_EVENTS.c.user_id))
    return {int(u): int(n) for u, n in rows}


async def write_event_batch(conn: AsyncConnection, dialect: str, rows: Sequence[Mapping]) -> list[EventWrite]:
    """Store ``rows`` (and their new users) in the open transaction of ``conn``; one result per row, in order."""
    await conn.execute(_insert(dialect, _USERS).values(_seen_rows(rows))
                       .on_conflict_do_nothing(index_elements=["user_id"]))
    with_ids = [r for r in rows if r.get("client_event_id")]
    without = [r for r in rows if not r.get("client_event_id")]
    by_cid = await _insert_with_ids(conn, dialect, with_ids) if with_ids else {}
    new_ids = iter(await _insert_without_ids(conn, dialect, without) if without else [])
    written: list[tuple[int | None, bool, bool]] = []  # event id, inserted, same event
    for r in rows:
        cid = r.get("client_event_id")
        if not cid:
            written.append((next(new_ids), True, True))
            continue
        event_id, stored, inserted = by_cid.get(cid, (None, None, False))
        written.append((event_id, inserted, inserted or (stored is not None and stored == _identity(r))))
    counts = await _counts(conn, {r["user_id"] for r, w in zip(rows, written) if w[1]})
    later: dict[int, int] = {}  # counted events of the user inserted after this one, in this batch
    results: list[EventWrite] = []
    for r, (event_id, inserted, same) in zip(reversed(rows), reversed(written)):
        n = counts.get(r["user_id"], 0) - later.get(r["user_id"], 0)
        if inserted and r["event_type"] in COUNTED_EVENTS:
            later[r["user_id"]] = later.get(r["user_id"], 0) + 1
        results.append(EventWrite(inserted=inserted, event_id=event_id, n_events=max(n, 0), same_event=same))
    return results[::-1]


__all__ = ["EventWrite", "write_event_batch"]
