"""Frequently bought together for a basket: ``GET /recommendations/basket?product_ids=...``.

The co-purchase lists of the basket's products (``bought_together:{product_id}``, written by the nightly
``lists`` step, read with one MGET) are combined by ``recsys.ranking.bought_together.basket_list``, the
function the offline ``basket`` protocol measures. When they are missing or short (a product never bought
with others, a list not computed yet, Redis down), the bestsellers of the basket's categories fill the list,
then trending, each item with the reason of the list it came from. The basket's products are never
recommended, nor are products out of stock or unknown to the catalogue. Ids unknown to the catalogue are
left out of the basket and named in the answer; a basket of unknown products only is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from recsys.constants import REASON_BOUGHT_WITH_BASKET, REASON_POPULAR_IN, REASON_TRENDING
from recsys.ranking.bought_together import basket_list
from recsys.serving.errors import DependencyDown, NotFoundError
from recsys.serving.fallbacks import RankedList
from recsys.serving.filters import NO_FILTER, ItemFilter
from recsys.serving.state import ServingState

log = logging.getLogger(__name__)
MAX_BASKET = 50  # products a basket request may name
BOUGHT_TOGETHER, CATEGORY, TRENDING = "bought_together", "category", "trending"


def stored_list(value: Mapping | None) -> list[tuple[int, float]]:
    """A ``bought_together:`` value as ``[(product_id, score)]`` (empty when missing or malformed)."""
    if not value:
        return []
    try:
        return [(int(p), float(s)) for p, s in zip(value["products"], value["scores"])]
    except (KeyError, TypeError, ValueError):
        return []


class BasketService:
    def __init__(self, state: ServingState):
        self.state = state

    async def _co_purchases(self, basket: list[int]) -> dict[int, list[tuple[int, float]]]:
        try:
            values = await self.state.redis.bought_together(basket)
        except DependencyDown as exc:
            log.warning("basket without co-purchases: %s", exc)
            self.state.degraded("redis")
            return {}
        return {pid: stored_list(value) for pid, value in zip(basket, values)}

    def _accept(self, product_id: int, item_filter: ItemFilter = NO_FILTER) -> bool:
        """What a basket list may hold: products of the catalogue, in stock, that the request's filters pass."""
        info = self.state.catalog.get(product_id)
        return info is not None and info.in_stock and item_filter.accepts_info(product_id, info)

    async def basket(self, product_ids: Sequence[int], n: int, item_filter: ItemFilter = NO_FILTER) -> dict:
        """``{items: [{product_id, score, reason}], source, unknown_product_ids}``; ``source``: the list of the
        first item (``bought_together``, ``category`` or ``trending``; null without items). ``item_filter``
        narrows every list; with categories, their bestsellers follow the basket's categories'."""
        catalog, lists = self.state.catalog, self.state.lists
        basket = list(dict.fromkeys(product_ids))
        known = [pid for pid in basket if catalog.get(pid) is not None]
        unknown = [pid for pid in basket if catalog.get(pid) is None]
        if not known:
            raise NotFoundError(f"no product of the basket is in the catalogue: unknown product_ids {unknown}",
                                field="product_ids")
        categories = [c for c in dict.fromkeys([*(catalog.category_of(pid) for pid in known),
                                                *sorted(item_filter.categories)])
                      if c in lists.bestsellers and item_filter.category_ok(c)]
        tiers = [(REASON_BOUGHT_WITH_BASKET, BOUGHT_TOGETHER)]  # tier 0: the co-purchases
        tiers += [(REASON_POPULAR_IN.format(category=c), CATEGORY) for c in categories]
        tiers.append((REASON_TRENDING, TRENDING))
        fallbacks = [_pairs(lists.bestsellers[c]) for c in categories] + [_pairs(lists.trending)]
        ranked = basket_list(await self._co_purchases(known), known, n, fallbacks, accept=lambda pid: self._accept(pid, item_filter))
        return {"items": [{"product_id": pid, "score": round(score, 6), "reason": tiers[tier][0]}
                          for pid, score, tier in ranked],
                "source": tiers[ranked[0][2]][1] if ranked else None, "unknown_product_ids": unknown}


def _pairs(ranked: RankedList) -> list[tuple[int, float]]:
    return list(zip(ranked.products, ranked.scores))
