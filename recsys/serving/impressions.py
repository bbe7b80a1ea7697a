"""Impression logging, hot path: the stream entry, the API's in-process buffer, its Redis writes.

``ImpressionBuffer.add`` only appends to memory; the buffered writes ride along in
the *next* request's pipelined read (``RedisStore.read_user_view``), so a cache hit
stays one Redis round trip. Buffered writes older than ``impression_max_delay_seconds``
are sent by a background task, and on shutdown. Every ``XADD`` carries
``MAXLEN ~ impression_stream_max_len``, so a stuck flusher cannot grow Redis until
eviction reaches the cached lists; what the cap trims is counted
(``recsys.abtest.flusher.stream_counts``).

The cold path (stream -> database, dead letters) is ``recsys.abtest.flusher``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recsys.constants import IMPRESSION, MAX_DB_INT, RESERVED_EVENT_ID_PREFIX
from recsys.keys import KEY_IMPRESSIONS
from recsys.settings import default

log = logging.getLogger(__name__)
MAX_BUFFERED = 100_000  # beyond this (Redis down for long) the oldest buffered writes are dropped, and counted
STREAM_MAX_LEN = default("impression_stream_max_len")  # the API passes its settings' value


# --- the stream entry (pure) ----------------------------------------------------------
def impression_fields(*, request_id: str, user_id: int, ts_ms: int, products: Sequence[int], model_id: str | None,
                      arm: str | None, test_id: int | None, source: str) -> dict[str, str]:
    """The stream entry of one answer: request, user, time, products shown, model, arm, test, tier."""
    return {"rid": request_id or "", "uid": str(int(user_id)), "ts": str(int(ts_ms)),
            "items": ",".join(str(int(p)) for p in products), "model": model_id or "", "arm": arm or "",
            "test": "" if test_id is None else str(int(test_id)), "src": source}


class BadEntry(ValueError):
    """A stream entry that cannot become rows (the message says why)."""


# text fields and their column widths (ab_impressions)
_TEXT_LIMITS = {"rid": 64, "model": 26, "arm": 16, "src": 16}


def raw_text(value) -> str:
    """A stream field as text; bytes that are not UTF-8 are kept readable (``\\xff``)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def _text(value) -> str:
    try:
        return value.decode() if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError as exc:
        raise BadEntry(f"not UTF-8: {raw_text(value)[:40]!r}") from exc


def _int(name: str, value: str, low: int = 1) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadEntry(f"{name}: not an integer: {value[:40]!r}") from None
    if not low <= n <= MAX_DB_INT:
        raise BadEntry(f"{name} {value[:40]} is outside {low}..{MAX_DB_INT}")
    return n


def decode_entry(entry_id, fields: Mapping) -> tuple[dict, list[dict]]:
    """(``ab_impressions`` row, ``user_events`` IMPRESSION rows) of one stream entry; ``BadEntry`` if it has none."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    eid = _text(entry_id)
    for name in ("uid", "ts"):
        if name not in f:
            raise BadEntry(f"missing field {name!r}")
    for name, width in _TEXT_LIMITS.items():
        if len(f.get(name, "")) > width:
            raise BadEntry(f"{name}: longer than {width} characters")
    products = [_int("product id", p) for p in f.get("items", "").split(",") if p]
    user, ts, rid = _int("uid", f["uid"]), _int("ts", f["ts"], low=0), f.get("rid") or None
    row = {"impression_id": eid, "request_id": rid, "user_id": user, "timestamp": ts,
           "test_id": _int("test", f["test"]) if f.get("test") else None, "arm": f.get("arm") or None,
           "model_id": f.get("model") or None, "source": f.get("src") or None, "products": products}
    events = [{"user_id": user, "product_id": p, "event_type": IMPRESSION, "timestamp": ts,
               "client_event_id": f"{RESERVED_EVENT_ID_PREFIX}{eid}:{i}", "request_id": rid}
              for i, p in enumerate(products)]
    return row, events


# --- the in-process buffer of the API -------------------------------------------------------
@dataclass(frozen=True)
class PendingWrite:
    kind: str  # "xadd" | "set"
    key: str
    value: object  # fields (xadd) or bytes (set)
    ttl: int | None = None
    cap: int | None = None  # xadd: MAXLEN ~ cap
    created: float = field(default_factory=time.monotonic)


class ImpressionBuffer:
    """Writes waiting for the next pipeline: impressions (XADD) and A/B assignments (SET)."""

    def __init__(self, max_items: int = MAX_BUFFERED, stream_max_len: int | None = STREAM_MAX_LEN):
        self._items: deque[PendingWrite] = deque()
        self.max_items = max_items
        self.stream_max_len = stream_max_len  # each XADD trims the stream to about this many entries
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add_impression(self, fields: dict[str, str]) -> None:
        self._push(PendingWrite("xadd", KEY_IMPRESSIONS, fields, cap=self.stream_max_len))

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


def write_command(item: PendingWrite) -> tuple:
    """The Redis command of a buffered write: ``XADD key [MAXLEN ~ cap] * field value ...`` or
    ``SET key value [EX ttl]``."""
    if item.kind == "xadd":
        trim = ("MAXLEN", "~", item.cap) if item.cap is not None else ()
        return ("XADD", item.key, *trim, "*", *(part for field in item.value.items() for part in field))
    return ("SET", item.key, item.value, *(("EX", item.ttl) if item.ttl is not None else ()))


def queue_writes(pipe, items: Iterable[PendingWrite]) -> int:
    """Add the buffered writes to a Redis pipeline; returns how many commands were added."""
    n = 0
    for item in items:
        pipe.execute_command(*write_command(item))
        n += 1
    return n
