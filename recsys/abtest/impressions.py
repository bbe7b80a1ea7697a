"""Impression logging: an in-process buffer, a Redis stream, and the flusher into the database.

Hot path (the API): ``ImpressionBuffer.add`` only appends to memory; the buffered
writes ride along in the *next* request's pipelined read (``RedisStore.read_user_view``),
so a cache hit stays one Redis round trip. Buffered writes older than
``impression_max_delay_seconds`` are sent by a background task, and on shutdown.

Cold path (``flush_impressions``, run by ``python -m recsys impressions flush``, the
hourly DAG and the A/B endpoints): read the stream in a consumer group, write the
users, ``ab_impressions`` and one ``user_events`` IMPRESSION row per product shown
(idempotently: keys derive from the stream entry id), and only then XACK and XDEL the
entries. A flusher that dies between commit and XACK leaves the entries pending; the
next one claims them and re-writes nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from redis.exceptions import ResponseError
from sqlalchemy import Engine

from recsys.constants import IMPRESSION, IMPRESSIONS_GROUP, KEY_IMPRESSIONS
from recsys.db.bulk import upsert_rows

log = logging.getLogger(__name__)
MAX_BUFFERED = 100_000  # beyond this (Redis down for long) the oldest buffered writes are dropped, and counted


# --- the stream entry (pure) ----------------------------------------------------------
def impression_fields(*, request_id: str, user_id: int, ts_ms: int, products: Sequence[int], model_id: str | None,
                      arm: str | None, test_id: int | None, source: str) -> dict[str, str]:
    """The stream entry of one answer: request, user, time, products shown, model, arm, test, tier."""
    return {"rid": request_id or "", "uid": str(int(user_id)), "ts": str(int(ts_ms)),
            "items": ",".join(str(int(p)) for p in products), "model": model_id or "", "arm": arm or "",
            "test": "" if test_id is None else str(int(test_id)), "src": source}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_entry(entry_id, fields: Mapping) -> tuple[dict, list[dict]]:
    """(``ab_impressions`` row, ``user_events`` IMPRESSION rows) of one stream entry."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    eid = _text(entry_id)
    products = [int(p) for p in f.get("items", "").split(",") if p]
    user, ts, rid = int(f["uid"]), int(f["ts"]), f.get("rid") or None
    row = {"impression_id": eid, "request_id": rid, "user_id": user, "timestamp": ts,
           "test_id": int(f["test"]) if f.get("test") else None, "arm": f.get("arm") or None,
           "model_id": f.get("model") or None, "source": f.get("src") or None, "products": products}
    events = [{"user_id": user, "product_id": p, "event_type": IMPRESSION, "timestamp": ts,
               "client_event_id": f"imp:{eid}:{i}", "request_id": rid} for i, p in enumerate(products)]
    return row, events


# --- the in-process buffer of the API -------------------------------------------------------
@dataclass(frozen=True)
class PendingWrite:
    kind: str  # "xadd" | "set"
    key: str
    value: object  # fields (xadd) or bytes (set)
    ttl: int | None = None
    created: float = field(default_factory=time.monotonic)


class ImpressionBuffer:
    """Writes waiting for the next pipeline: impressions (XADD) and A/B assignments (SET)."""

    def __init__(self, max_items: int = MAX_BUFFERED):
        self._items: deque[PendingWrite] = deque()
        self.max_items = max_items
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add_impression(self, fields: dict[str, str]) -> None:
        self._push(PendingWrite("xadd", KEY_IMPRESSIONS, fields))

    def add_set(self, key: str, value: bytes, ttl: int) -> None:
        self._push(PendingWrite("set", key, value, ttl))

    def _push(self, item: PendingWrite) -> None:
        self._items.append(item)
        while len(self._items) > self.max_items:
            self._items.popleft()
            self.dropped += 1

    def drain(self) -> list[PendingWrite]:
        items = list(self._items)
        self._items.clear()
        return items

    def requeue(self, items: Sequence[PendingWrite]) -> None:
        """Put writes that could not be sent back in front, oldest first (the cap still holds)."""
        self._items.extendleft(reversed(items))
        while len(self._items) > self.max_items:
            self._items.popleft()
            self.dropped += 1

    def oldest_age(self, now: float | None = None) -> float | None:
        if not self._items:
            return None
        return (now if now is not None else time.monotonic()) - self._items[0].created


def queue_writes(pipe, items: Iterable[PendingWrite]) -> int:
    """Add the buffered writes to a Redis pipeline; returns how many commands were added."""
    n = 0
    for item in items:
        if item.kind == "xadd":
            pipe.xadd(item.key, item.value)
        else:
            pipe.set(item.key, item.value, ex=item.ttl)
        n += 1
    return n


# --- the flusher (sync: CLI, DAG, admin endpoints in a thread) ------------------------------
def ensure_group(redis) -> None:
    try:
        redis.xgroup_create(KEY_IMPRESSIONS, IMPRESSIONS_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def write_entries(engine: Engine, entries: Sequence[tuple]) -> dict:
    """Write stream entries to the database (idempotent); returns counts."""
    rows, events = [], []
    for entry_id, fields in entries:
        if fields is None:  # deleted after it was delivered: nothing to write, only to acknowledge
            continue
        row, evs = decode_entry(entry_id, fields)
        rows.append(row)
        events.extend(evs)
    if not rows:
        return {"impressions": 0, "events": 0}
    users = pd.DataFrame({"user_id": sorted({r["user_id"] for r in rows})})
    upsert_rows(engine, "users", users, conflict_cols=["user_id"])
    frame = pd.DataFrame(rows)
    frame["products"] = [json.dumps(p) for p in frame["products"]]
    frame["test_id"] = frame["test_id"].astype("Int64")
    upsert_rows(engine, "ab_impressions", frame, conflict_cols=["impression_id"])
    if events:
        upsert_rows(engine, "user_events", pd.DataFrame(events), conflict_cols=["client_event_id"])
    return {"impressions": len(rows), "events": len(events)}


def _acknowledge(redis, ids: Sequence) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.xack(KEY_IMPRESSIONS, IMPRESSIONS_GROUP, *ids)
    pipe.xdel(KEY_IMPRESSIONS, *ids)
    pipe.execute()


def _entries(reply) -> list[tuple]:
    return [(eid, fields) for _, items in (reply or []) for eid, fields in items]


def flush_impressions(engine: Engine, redis, *, consumer: str = "flusher", batch: int = 2000,
                      claim_idle_ms: int = 60_000, max_batches: int | None = None, block_ms: int | None = None) -> dict:
    """Move the stream into the database until it is empty (or ``max_batches``); returns counts.

    First the entries another consumer left pending for ``claim_idle_ms`` (a crashed
    flusher), then this consumer's own pending ones, then new ones. ``block_ms`` waits
    that long for new entries once the stream is empty (``--follow``).
    """
    ensure_group(redis)
    claimed = redis.xautoclaim(KEY_IMPRESSIONS, IMPRESSIONS_GROUP, consumer, claim_idle_ms, "0-0", count=batch)
    done = {"impressions": 0, "events": 0, "batches": 0, "claimed": len(claimed[1])}
    pending = list(claimed[1])
    pending += _entries(redis.xreadgroup(IMPRESSIONS_GROUP, consumer, {KEY_IMPRESSIONS: "0"}, count=batch))
    while max_batches is None or done["batches"] < max_batches:
        entries = pending or _entries(redis.xreadgroup(IMPRESSIONS_GROUP, consumer, {KEY_IMPRESSIONS: ">"},
                                                       count=batch, block=block_ms))
        pending = []
        if not entries:
            break
        counts = write_entries(engine, entries)
        _acknowledge(redis, [eid for eid, _ in entries])
        done["impressions"] += counts["impressions"]
        done["events"] += counts["events"]
        done["batches"] += 1
    return done
