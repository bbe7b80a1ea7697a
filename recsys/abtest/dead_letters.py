"""The impression dead letters: stream entries the flusher set aside, in ``impression_dead_letters``.

An entry lands here when it cannot be decoded (a missing or malformed field, an id
outside the database's range) or when the database refuses it (a ``DataError`` or
``IntegrityError`` found by bisecting the batch). It is stored with its raw fields
and the reason, and the stream entry is acknowledged, so it never blocks the
entries behind it. ``python -m recsys impressions dead-letters list | replay |
discard`` inspects, retries (after a fix) and drops them; the pipeline exporter
publishes their number as ``recsys_impression_dead_letters``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select

from recsys.db.bulk import upsert_rows
from recsys.db.models import ImpressionDeadLetter

REASON_MAX = 512


@dataclass(frozen=True)
class DeadLetter:
    stream_id: str
    fields: Mapping[str, str]
    reason: str


def record(target: Engine | Connection, letters: Sequence[DeadLetter], now: dt.datetime | None = None) -> int:
    """Store (or refresh the reason of) each dead letter; idempotent on the stream id."""
    if not letters:
        return 0
    at = now or dt.datetime.now(dt.timezone.utc)
    frame = pd.DataFrame({
        "stream_id": [d.stream_id for d in letters],
        "fields": [json.dumps(dict(d.fields)) for d in letters],
        "reason": [d.reason.replace("\x00", "")[:REASON_MAX] for d in letters],
        "failed_at": [at] * len(letters),
    })
    return upsert_rows(target, "impression_dead_letters", frame, conflict_cols=["stream_id"],
                       update_cols=["fields", "reason", "failed_at"])


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ImpressionDeadLetter)).scalar() or 0)


def load(engine: Engine, stream_ids: Sequence[str] | None = None, limit: int | None = None) -> list[dict]:
    """The dead letters (oldest stream id first), all or the ones named."""
    query = select(ImpressionDeadLetter).order_by(ImpressionDeadLetter.failed_at, ImpressionDeadLetter.stream_id)
    if stream_ids:
        query = query.where(ImpressionDeadLetter.stream_id.in_(list(stream_ids)))
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [{"stream_id": r.stream_id, "fields": r.fields, "reason": r.reason,
             "failed_at": r.failed_at.isoformat() if r.failed_at else None} for r in rows]


def remove(engine: Engine, stream_ids: Sequence[str]) -> int:
    if not stream_ids:
        return 0
    with engine.begin() as conn:
        return conn.execute(delete(ImpressionDeadLetter).where(
            ImpressionDeadLetter.stream_id.in_(list(stream_ids)))).rowcount or 0


def replay(engine: Engine, stream_ids: Sequence[str] | None = None) -> dict:
    """Write the dead letters again (after a fix); the ones written leave the table, the others
    stay with their new reason. Writing is idempotent, so replaying twice changes nothing."""
    from recsys.abtest.flusher import write_entries

    letters = load(engine, stream_ids)
    before = {d["stream_id"] for d in letters}
    counts = write_entries(engine, [(d["stream_id"], d["fields"]) for d in letters])
    written = sorted(before - set(counts["refused"]))
    remove(engine, written)
    return {"replayed": len(written), "still_refused": len(counts["refused"]), "impressions": counts["impressions"],
            "events": counts["events"]}


def dead_letters_command(args, show) -> int:
    """``python -m recsys impressions dead-letters list|replay|discard [IDS] [--all]``; ``show`` prints a dict."""
    from recsys.abtest.flusher import stream_counts
    from recsys.clients import get_engine, get_redis

    engine = get_engine()
    if args.action == "list":
        try:
            stream = stream_counts(get_redis())
        except Exception as exc:  # the table is still worth showing with Redis down
            stream = {"error": f"{type(exc).__name__}: {exc}"}
        show({"dead_letters": count(engine), "stream": stream, "entries": load(engine, args.ids, limit=args.limit)})
        return 0
    if not args.ids and not args.all:
        print(f"error: name the stream ids to {args.action}, or pass --all", file=sys.stderr)
        return 2
    if args.action == "replay":
        done = replay(engine, args.ids or None)
        show(done)
        return 1 if done["still_refused"] else 0
    show({"discarded": remove(engine, args.ids or [d["stream_id"] for d in load(engine)])})
    return 0
