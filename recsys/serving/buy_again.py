"""Buy it again: ``GET /recommendations/buy-again`` and, when ``RECSYS_BUY_AGAIN_SLOTS`` > 0, the first items of
``GET /recommendations``.

A user's purchases of the last ``RECSYS_REPURCHASE_DAYS`` (``user_events``; a product returned after its last
purchase is left out) are ranked by ``recsys.ranking.repurchase.buy_again`` with the categories' repurchase
intervals the nightly ``lists`` step measured (``repurchase:categories``, in the serving state): products of
durable categories (no repurchase observed) are never suggested, and out-of-stock ones neither. The purchases
are kept in Redis (``purchases:{user_id}``, ``PURCHASES_TTL_SECONDS``), so ``/recommendations`` reads them in
its one round trip; a purchase or return event deletes the key (the session script), the next request reads
the database again (a purchase committed while that read runs may be missed until the key expires). In
``/recommendations`` only purchases that are due (``repurchase.DUE_FROM``) take the first
``RECSYS_BUY_AGAIN_SLOTS`` places, with the reason "Buy it again"; the rest of the list is what the tiers answer
(a cached answer too), without those products.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from recsys.constants import MS_PER_DAY, REASON_BUY_AGAIN
from recsys.ranking.repurchase import Purchase, buy_again
from recsys.ranking.rerank import Candidate
from recsys.serving.errors import DependencyDown
from recsys.serving.filters import NO_FILTER, ItemFilter
from recsys.serving.state import ServingState
from recsys.serving.tiers import fill

log = logging.getLogger(__name__)
PURCHASES_TTL_SECONDS = 3600


def encode_purchases(purchases: Sequence[Purchase]) -> bytes:
    return orjson.dumps([[p.product_id, p.last_ms, p.times] for p in purchases])


def decode_purchases(raw: bytes | None) -> list[Purchase] | None:
    """The purchases of a ``purchases:`` value; None when missing or malformed (read again)."""
    if raw is None:
        return None
    try:
        return [Purchase(int(p), int(t), int(n)) for p, t, n in orjson.loads(raw)]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None


class BuyAgainService:
    def __init__(self, state: ServingState):
        self.state = state

    async def purchases(self, user_id: int, raw: bytes | None = None, *, cached: bool = True) -> list[Purchase]:
        """The user's purchases: ``raw`` (the ``purchases:`` value read with the request), else the database,
        written back to Redis for the next requests (``cached``: Redis answered)."""
        found = decode_purchases(raw)
        if found is not None:
            return found
        state = self.state
        since = state.now_ms() - state.settings.repurchase_days * MS_PER_DAY
        try:
            rows = await state.db.user_purchases(user_id, since)
        except DependencyDown as exc:
            log.warning("buy it again of %s without purchases: %s", user_id, exc)
            state.degraded("database")
            return []
        found = [Purchase(*row) for row in rows]
        if cached:  # written now, not buffered: a purchase event's delete must not be overtaken by it
            try:
                await state.redis.set_purchases(user_id, encode_purchases(found), PURCHASES_TTL_SECONDS)
            except DependencyDown:
                state.degraded("redis")
        return found

    async def _stored(self, user_id: int) -> tuple[bytes | None, bool]:
        try:
            return await self.state.redis.purchases(user_id), True
        except DependencyDown as exc:
            log.warning("buy it again of %s: purchases not read from Redis: %s", user_id, exc)
            self.state.degraded("redis")
            return None, False

    def _accept(self, product_id: int, item_filter: ItemFilter = NO_FILTER) -> bool:
        """What the list may hold: products of the catalogue, in stock, that the request's filters pass."""
        info = self.state.catalog.get(product_id)
        return info is not None and info.in_stock and item_filter.accepts_info(product_id, info)

    def ranked(self, purchases: Sequence[Purchase], *, due_only: bool,
               item_filter: ItemFilter = NO_FILTER) -> list[Candidate]:
        """The purchases to suggest again, best first, as candidates with their reason (out of stock left out)."""
        state = self.state
        now = state.now_ms()
        out = []
        for pid, score in buy_again(purchases, state.catalog.category_of, state.repurchase, now, due_only=due_only):
            if self._accept(pid, item_filter):
                out.append(state.catalog.candidate(pid, round(score, 6), now_ms=now,
                                                   new_days=state.settings.new_product_days, reason=REASON_BUY_AGAIN))
        return out

    async def items(self, user_id: int, n: int, item_filter: ItemFilter = NO_FILTER) -> list[dict]:
        """``GET /recommendations/buy-again``: every purchase of a repeat category, best first (narrowed by the
        request's filters: the list has no other tier to fill it)."""
        raw, cached = await self._stored(user_id)
        ranked = self.ranked(await self.purchases(user_id, raw, cached=cached), due_only=False,
                             item_filter=item_filter)
        return [{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in ranked[:n]]

    async def due(self, user_id: int, raw: bytes | None, redis_ok: bool) -> list[Candidate]:
        """The first items of ``/recommendations``: due purchases, at most ``RECSYS_BUY_AGAIN_SLOTS``."""
        purchases = await self.purchases(user_id, raw, cached=redis_ok)
        return self.ranked(purchases, due_only=True)[:self.state.settings.buy_again_slots]


def with_buy_again(first: Sequence[Candidate], items: Sequence[Candidate], n: int) -> list[Candidate]:
    """``first`` (buy it again), then ``items`` without those products: ``n`` at most."""
    return fill(first, items, n)


def without_reason(item: dict) -> dict:
    return {"product_id": item["product_id"], "score": item["score"]}


def answer_with_buy_again(first: Sequence[Candidate], items_bytes: bytes, n: int) -> list[dict]:
    """A cached answer's encoded items (``CachedAnswer.items_bytes``) behind ``first``: ``n`` items at most."""
    taken = {c.product_id for c in first}
    lead = [{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in first]
    rest = [item for item in orjson.loads(b"[" + items_bytes + b"]") if item["product_id"] not in taken]
    return [*lead, *rest][:n]
