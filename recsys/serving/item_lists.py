"""Non-personal lists: trending (global or per category) and similar items.

Similar items ("Customers who bought this also bought") blend two sources:
co-purchases (buyers of the product, from ``user_product_interactions``,
cached in process for ``SIMILAR_CACHE_SECONDS``) and the cosine of the item
embeddings (memory-mapped), which also covers new products without purchases.
Without either, the product's category bestsellers answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from recsys.constants import REASON_BOUGHT_TOGETHER, REASON_POPULAR_IN, REASON_SIMILAR, REASON_TRENDING
from recsys.ranking.rerank import Candidate, demote_out_of_stock
from recsys.serving.errors import DependencyDown, NotFoundError
from recsys.serving.fallbacks import RankedList
from recsys.serving.filters import NO_FILTER, ItemFilter
from recsys.serving.state import ServingState

log = logging.getLogger(__name__)
SIMILAR_POOL = 50
SIMILAR_CACHE_SECONDS = 600.0
SIMILAR_CACHE_SIZE = 10_000
CO_PURCHASE_WEIGHT = 0.5  # of the blended score; the embedding cosine has the rest


def trending_items(state: ServingState, n: int, item_filter: ItemFilter = NO_FILTER) -> list[dict]:
    """``[{product_id, score, popularity}]``: global trending, or with a category filter the bestsellers of its
    categories (by score), then trending; narrowed by the filter, out-of-stock products last."""
    lists = state.lists
    entries = []
    if item_filter.categories:
        entries = sorted((e for c in item_filter.categories for e in lists.bestsellers.get(c, RankedList()).entries()),
                         key=lambda e: -e[1])
    entries += lists.trending.entries()
    catalog = state.catalog
    seen: set[int] = set()
    candidates = []
    for pid, score, pop in entries:
        if pid not in seen and (not item_filter.active or item_filter.accepts(catalog, pid)):
            seen.add(pid)
            candidates.append(catalog.candidate(pid, score, now_ms=0, new_days=1, popularity=pop))
    ordered = demote_out_of_stock(candidates, "demote")
    return [{"product_id": c.product_id, "score": c.score, "popularity": c.popularity} for c in ordered[:n]]


def blend(co: Sequence[tuple[int, int]], cosine: Sequence[tuple[int, float]], weight: float = CO_PURCHASE_WEIGHT
          ) -> list[tuple[int, float, bool]]:
    """``(product_id, score, co_purchased)``, best first: ``weight * buyers/max + (1 - weight) * cosine``."""
    top = max((k for _, k in co), default=0)
    scores: dict[int, float] = {}
    bought = set()
    for pid, k in co:
        scores[pid] = weight * (k / top if top else 0.0)
        bought.add(pid)
    for pid, cos in cosine:
        scores[pid] = scores.get(pid, 0.0) + (1.0 - weight) * max(cos, 0.0)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(pid, score, pid in bought) for pid, score in ordered]


class SimilarService:
    def __init__(self, state: ServingState):
        self.state = state

    async def _co_purchases(self, product_id: int) -> list[tuple[int, int]]:
        cache = self.state.similar_cache
        hit = cache.get(product_id)
        if hit and time.monotonic() - hit[0] < SIMILAR_CACHE_SECONDS:
            return hit[1]
        try:
            rows = await self.state.db.co_purchases(product_id, SIMILAR_POOL)
        except DependencyDown as exc:
            log.warning("similar items of %s without co-purchases: %s", product_id, exc)
            self.state.degraded("database")
            return hit[1] if hit else []
        if len(cache) >= SIMILAR_CACHE_SIZE:
            cache.clear()
        cache[product_id] = (time.monotonic(), rows)
        return rows

    async def similar(self, product_id: int, n: int, item_filter: ItemFilter = NO_FILTER
                      ) -> tuple[list[dict], str | None]:
        """The product's similar items; ``item_filter`` narrows them, and when that leaves fewer than n the
        bestsellers of the product's category, then of the filter's categories, then trending fill the list."""
        state = self.state
        emb = state.embeddings
        info = state.catalog.get(product_id)
        if info is None and (emb is None or not emb.has_item(product_id)):
            raise NotFoundError(f"unknown product_id {product_id}", field="product_id")
        cosine = emb.similar_items(product_id, SIMILAR_POOL) if emb is not None else []
        blended = blend(await self._co_purchases(product_id), cosine)
        name = info.name if info else str(product_id)
        items = [Candidate(product_id=pid, score=score, in_stock=self._in_stock(pid),
                           reason=REASON_BOUGHT_TOGETHER if co else REASON_SIMILAR.format(product=name))
                 for pid, score, co in blended if pid != product_id]
        if item_filter.active:
            items = self._filled(product_id, info, items, n, item_filter)
        elif not items and info is not None:  # nothing known about it: its category's bestsellers
            items = self._bestsellers(info.category, product_id)
        ordered = demote_out_of_stock(items, "drop")
        return ([{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in ordered[:n]],
                emb.model_id if emb is not None else None)

    def _bestsellers(self, category: str, product_id: int) -> list[Candidate]:
        best = self.state.lists.bestsellers.get(category, RankedList())
        return [Candidate(product_id=pid, score=score, in_stock=self._in_stock(pid),
                          reason=REASON_POPULAR_IN.format(category=category))
                for pid, score, _ in best.entries() if pid != product_id]

    def _filled(self, product_id: int, info, items: list[Candidate], n: int, item_filter: ItemFilter
                ) -> list[Candidate]:
        """The similar items the filter lets through, then (while short of n) the bestsellers of the product's
        category, of the filter's categories, then trending: each keeps the reason of its list."""
        catalog = self.state.catalog
        categories = [info.category] if info is not None else []
        categories += [c for c in sorted(item_filter.categories) if c not in categories]
        trending = [Candidate(product_id=pid, score=score, in_stock=self._in_stock(pid), reason=REASON_TRENDING)
                    for pid, score, _ in self.state.lists.trending.entries() if pid != product_id]
        out: list[Candidate] = []
        taken: set[int] = set()
        for source in (items, *(self._bestsellers(c, product_id) for c in categories), trending):
            for c in source:
                if c.in_stock and c.product_id not in taken and item_filter.accepts(catalog, c.product_id):
                    taken.add(c.product_id)
                    out.append(c)
            if len(out) >= n:
                break
        return out

    def _in_stock(self, product_id: int) -> bool:
        info = self.state.catalog.get(product_id)
        return info.in_stock if info else True
