"""Merchandising rules (issue 24): boost, bury, pin, block and promote, as pure functions.

A rule matches products by id, by category or by a price range (ids or categories: either matches; a price
range narrows what they match, or alone matches by price), is live inside its optional time window, and has
a name. ``recsys.serving.tiers.finish`` applies the live rules in one place, after the model's ranking and
before diversity:
- ``block``: matching products are never in a list (like a filter);
- ``boost`` / ``bury``: ``weight`` times the spread of the list's scores is added to / taken from a matching
  product's score, so re-ranking (boosts, then diversity) sees the moved score;
- ``promote``: ``share`` of the list's slots is reserved for matching products (slots ``ceil(i / share)``: the
  first, then evenly spaced; any first m slots hold ``floor((m - 1) x share) + 1``), the best ranked first, then
  the rule's own products, its categories' bestsellers and trending;
- ``pin``: the rule's first matching product available takes slot ``slot`` (1-based).
Products placed by a promote or pin rule carry the reason ``REASON_FEATURED``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

BOOST, BURY, PIN, BLOCK, PROMOTE = "boost", "bury", "pin", "block", "promote"
ACTIONS = (BOOST, BURY, PIN, BLOCK, PROMOTE)
REASON_FEATURED = "Featured"


@dataclass(frozen=True)
class MerchRule:
    rule_id: int
    name: str
    action: str
    products: tuple[int, ...] = ()
    categories: frozenset[str] = frozenset()
    price_min: float | None = None
    price_max: float | None = None
    weight: float = 0.0  # boost / bury: share of the list's score spread
    slot: int | None = None  # pin: 1-based
    share: float = 0.0  # promote: share of the list
    starts_at_ms: int | None = None
    ends_at_ms: int | None = None

    def live(self, now_ms: int) -> bool:
        return (self.starts_at_ms is None or self.starts_at_ms <= now_ms) and (
            self.ends_at_ms is None or now_ms < self.ends_at_ms)

    def matches(self, product_id: int, category: str, price: float | None) -> bool:
        if (self.products or self.categories) and product_id not in self.products and category not in self.categories:
            return False
        if self.price_min is not None and (price is None or price < self.price_min):
            return False
        return not (self.price_max is not None and (price is None or price > self.price_max))


@dataclass(frozen=True)
class RuleSet:
    """The rules the serving node holds and the version it read them at (``max(updated_at)`` and count)."""

    version: str = ""
    rules: tuple[MerchRule, ...] = ()

    def live(self, now_ms: int) -> tuple[MerchRule, ...]:
        return tuple(r for r in self.rules if r.live(now_ms))

    def live_ids(self, now_ms: int) -> list[int]:
        return [r.rule_id for r in self.live(now_ms)]


Attributes = Callable[[int], tuple[str, float | None]]  # product id -> (category, price)


def blocked(rules: Iterable[MerchRule], product_id: int, attrs: Attributes) -> bool:
    return any(r.action == BLOCK and r.matches(product_id, *attrs(product_id)) for r in rules)


def adjusted_scores(rules: Sequence[MerchRule], products: Sequence[int], scores: Sequence[float],
                    attrs: Attributes) -> list[float]:
    """Scores with the boost and bury rules applied: ``± weight x (max - min)`` of the list's scores."""
    moves = [r for r in rules if r.action in (BOOST, BURY)]
    if not moves or not scores:
        return list(scores)
    spread = (max(scores) - min(scores)) or 1.0
    out = []
    for pid, score in zip(products, scores):
        category, price = attrs(pid)
        for r in moves:
            if r.matches(pid, category, price):
                score += (r.weight if r.action == BOOST else -r.weight) * spread
        out.append(score)
    return out


def promoted_slots(share: float, n: int) -> list[int]:
    """The 0-based positions a promote rule of ``share`` reserves in a list of ``n``: ``ceil(i / share)``, so any
    first m positions hold ``floor((m - 1) x share) + 1`` of them whatever n is (a cached answer of 100 items
    cut to m is the answer of m)."""
    out, i = [], 0
    while share > 0 and (pos := math.ceil(i / share - 1e-9)) < n:
        out.append(pos)
        i += 1
    return out


def place(items: Sequence, n: int, rules: Sequence[MerchRule], pool: Sequence, attrs: Attributes,
          featured: Callable[[object], object]) -> list:
    """``items`` (the ranked list, objects with ``product_id``) with the promote and pin rules applied, ``n``
    at most. ``pool``: other available products, best first (what a rule may bring in); ``featured(item)``
    returns the item with the reason ``REASON_FEATURED``."""
    out = list(items)
    for r in (r for r in rules if r.action == PROMOTE and r.share > 0):
        positions = promoted_slots(r.share, n)
        taken = {c.product_id for c in out}
        matching = [c for c in out if r.matches(c.product_id, *attrs(c.product_id))]
        matching += [c for c in pool if c.product_id not in taken and r.matches(c.product_id, *attrs(c.product_id))]
        chosen = [featured(c) for c in matching[:len(positions)]]
        chosen_ids = {c.product_id for c in chosen}
        rest = [c for c in out if c.product_id not in chosen_ids]
        merged, ci, ri, reserved = [], iter(chosen), iter(rest), set(positions)
        for i in range(len(rest) + len(chosen)):
            first, second = (ci, ri) if i in reserved else (ri, ci)
            nxt = next(first, None) or next(second, None)
            if nxt is not None:
                merged.append(nxt)
        out = merged
    for r in sorted((r for r in rules if r.action == PIN and r.slot), key=lambda r: r.slot):
        candidates = [c for c in [*out, *pool] if r.matches(c.product_id, *attrs(c.product_id))]
        if r.products:  # the rule's own order of products
            order = {pid: i for i, pid in enumerate(r.products)}
            candidates.sort(key=lambda c: order.get(c.product_id, len(order)))
        if not candidates:
            continue
        pinned = featured(candidates[0])
        out = [c for c in out if c.product_id != pinned.product_id]
        out.insert(min(r.slot, n, len(out) + 1) - 1, pinned)
    return out[:n]


def _ms(value) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives naive UTC datetimes
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp() * 1000)


def rule_from_row(row: Mapping) -> MerchRule:
    """A ``merch_rules`` row (``recsys.db.merch_rules``) as a rule."""
    return MerchRule(rule_id=int(row["rule_id"]), name=str(row["name"]), action=str(row["action"]),
                     products=tuple(int(p) for p in row["products"] or ()),
                     categories=frozenset(str(c) for c in row["categories"] or ()),
                     price_min=row["price_min"], price_max=row["price_max"], weight=float(row["weight"] or 0.0),
                     slot=row["slot"], share=float(row["share"] or 0.0), starts_at_ms=_ms(row["starts_at"]),
                     ends_at_ms=_ms(row["ends_at"]))


def rule_set(version: str, rows: Iterable[Mapping]) -> RuleSet:
    return RuleSet(version, tuple(rule_from_row(r) for r in rows))
