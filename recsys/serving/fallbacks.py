"""The in-process copy of the fallback lists: trending, new arrivals, bestsellers per category.

Refreshed in the background from the Redis lists that precompute writes; when
Redis has none (or is down at start), the same lists are computed from the
database's recent events. Tier 2 and Tier 3 answers, and the trending
endpoint, read only this copy: they keep working while Redis is down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from recsys.constants import EVENT_WEIGHTS, MS_PER_DAY, PURCHASE
from recsys.serving.catalog import CatalogSnapshot

LIST_SIZE = 100


@dataclass(frozen=True)
class RankedList:
    products: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    popularity: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, obj: Mapping | None) -> RankedList:
        """``{"products", "scores", "popularity"}`` (missing scores/popularity: zeros)."""
        if not obj or not obj.get("products"):
            return cls()
        products = tuple(int(p) for p in obj["products"])
        n = len(products)
        scores = tuple(float(s) for s in (obj.get("scores") or [0.0] * n))[:n]
        popularity = tuple(int(p) for p in (obj.get("popularity") or [0] * n))[:n]
        scores += (0.0,) * (n - len(scores))
        popularity += (0,) * (n - len(popularity))
        return cls(products, scores, popularity)

    def __len__(self) -> int:
        return len(self.products)

    def entries(self) -> list[tuple[int, float, int]]:
        return list(zip(self.products, self.scores, self.popularity))


@dataclass(frozen=True)
class FallbackLists:
    trending: RankedList = RankedList()
    new_arrivals: RankedList = RankedList()
    bestsellers: Mapping[str, RankedList] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    origin: str = "empty"  # redis | database | empty
    popularity: Mapping[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.trending and not self.new_arrivals and not self.bestsellers

    @classmethod
    def build(cls, trending: RankedList, new_arrivals: RankedList, bestsellers: Mapping[str, RankedList],
              categories: Iterable[str], origin: str) -> FallbackLists:
        popularity: dict[int, int] = {}
        for lst in (trending, new_arrivals, *bestsellers.values()):
            for pid, _, pop in lst.entries():
                popularity[pid] = max(pop, popularity.get(pid, 0))
        cats = frozenset(categories) | frozenset(bestsellers)
        return cls(trending, new_arrivals, dict(bestsellers), cats, origin, popularity)


def lists_from_redis(raw: Mapping) -> FallbackLists:
    """The lists of ``RedisStore.read_lists``."""
    best = {c: RankedList.from_json(v) for c, v in (raw.get("bestsellers") or {}).items()}
    return FallbackLists.build(RankedList.from_json(raw.get("trending")),
                               RankedList.from_json(raw.get("new_arrivals")), best,
                               raw.get("categories") or [], "redis")


def _ranked(counts: Mapping[int, float], popularity: Mapping[int, int], size: int) -> RankedList:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return RankedList(tuple(p for p, _ in top), tuple(float(s) for _, s in top),
                      tuple(popularity.get(p, 0) for p, _ in top))


def lists_from_counts(counts: Iterable[tuple[int, str, int]], catalog: CatalogSnapshot, *, now_ms: int,
                      new_days: int, size: int = LIST_SIZE) -> FallbackLists:
    """Lists from ``(product_id, event_type, n)`` counts of recent events (the database fallback).

    trending: event-weighted interactions; bestsellers: purchases per category;
    new arrivals: in-stock products created in the last ``new_days``, newest first.
    """
    weighted: dict[int, float] = {}
    popularity: dict[int, int] = {}
    bought: dict[str, dict[int, float]] = {}
    for pid, event_type, n in counts:
        if pid not in catalog.products:
            continue
        weighted[pid] = weighted.get(pid, 0.0) + max(EVENT_WEIGHTS.get(event_type, 0.0), 0.0) * n
        popularity[pid] = popularity.get(pid, 0) + n
        if event_type == PURCHASE:
            per_cat = bought.setdefault(catalog.category_of(pid), {})
            per_cat[pid] = per_cat.get(pid, 0.0) + n
    cutoff = now_ms - new_days * MS_PER_DAY
    fresh = {p.product_id: 1.0 - (now_ms - p.created_at_ms) / (new_days * MS_PER_DAY)
             for p in catalog.products.values()
             if p.in_stock and p.created_at_ms is not None and cutoff <= p.created_at_ms <= now_ms}
    best = {cat: _ranked(c, popularity, size) for cat, c in bought.items() if cat}
    return FallbackLists.build(_ranked(weighted, popularity, size), _ranked(fresh, popularity, size), best,
                               catalog.categories, "database")
