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

from recsys.constants import REASON_BOUGHT_TOGETHER, REASON_POPULAR_IN, REASON_SIMILAR
from recsys.ranking.rerank import Candidate, demote_out_of_stock
from recsys.serving.errors import DependencyDown, NotFoundError
from recsys.serving.fallbacks import RankedList
from recsys.serving.state import ServingState

log = logging.getLogger(__name__)
SIMILAR_POOL = 50
SIMILAR_CACHE_SECONDS = 600.0
SIMILAR_CACHE_SIZE = 10_000
CO_PURCHASE_WEIGHT = 0.5  # of the blended score; the embedding cosine has the rest


def trending_items(state: ServingState, category: str | None, n: int) -> list[dict]:
    """``[{product_id, score, popularity}]``; ``NotFoundError`` for an unknown category."""
    lists = state.lists
    if category is None:
        ranked = lists.trending
    else:
        if category not in lists.categories and category not in state.catalog.categories:
            known = ", ".join(sorted(lists.categories | state.catalog.categories)[:20])
            raise NotFoundError(f"unknown category {category!r}; known categories: {known}", field="category")
        ranked = lists.bestsellers.get(category, RankedList())
    entries = ranked.entries()
    candidates = [state.catalog.candidate(pid, score, now_ms=0, new_days=1, popularity=pop)
                  for pid, score, pop in entries]
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

    async def similar(self, product_id: int, n: int) -> tuple[list[dict], str | None]:
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
        if not items and info is not None:  # nothing known about it: its category's bestsellers
            best = state.lists.bestsellers.get(info.category, RankedList())
            items = [Candidate(product_id=pid, score=score, in_stock=self._in_stock(pid),
                               reason=REASON_POPULAR_IN.format(category=info.category))
                     for pid, score, _ in best.entries() if pid != product_id]
        ordered = demote_out_of_stock(items, "drop")
        return ([{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in ordered[:n]],
                emb.model_id if emb is not None else None)

    def _in_stock(self, product_id: int) -> bool:
        info = self.state.catalog.get(product_id)
        return info.in_stock if info else True
