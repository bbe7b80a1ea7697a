"""Recently viewed: ``GET /recommendations/recent?user_id=...``.

The products the user browsed (views, clicks, wishlists, carts: the session's ``viewed`` field,
``recsys.serving.session_state``), most recent first: first the live session in Redis (it holds the last
``MAX_VIEWED`` products, updated by every event), then, when that is short or gone (expired, a new node, Redis
down), the event log (``user_events``, the same event types) fills the list with older ones. Products no
longer in the catalogue are left out; every item's reason is "Recently viewed" and its score ``1 / rank``.
"""

from __future__ import annotations

import logging

from recsys.constants import REASON_RECENTLY_VIEWED
from recsys.serving.errors import DependencyDown
from recsys.serving.filters import NO_FILTER, ItemFilter
from recsys.serving.session_state import BROWSE_EVENTS
from recsys.serving.state import ServingState

log = logging.getLogger(__name__)
SESSION, EVENTS = "session", "events"
RECENT_FILTERED_READ = 200  # event-log products a filtered request reads (the filter may leave few of them)


class RecentService:
    def __init__(self, state: ServingState):
        self.state = state

    async def _session_viewed(self, user_id: int) -> tuple[int, ...]:
        try:
            return (await self.state.redis.session(user_id)).viewed
        except DependencyDown as exc:
            log.warning("recently viewed of %s without the session: %s", user_id, exc)
            self.state.degraded("redis")
            return ()

    async def _logged_viewed(self, user_id: int, limit: int) -> list[int]:
        try:
            return await self.state.db.recent_products(user_id, BROWSE_EVENTS, limit)
        except DependencyDown as exc:
            log.warning("recently viewed of %s without the event log: %s", user_id, exc)
            self.state.degraded("database")
            return []

    def _accept(self, product_id: int, item_filter: ItemFilter = NO_FILTER) -> bool:
        """What the list may hold: products of the catalogue that the request's filters pass."""
        info = self.state.catalog.get(product_id)
        return info is not None and item_filter.accepts_info(product_id, info)

    async def recent(self, user_id: int, n: int, item_filter: ItemFilter = NO_FILTER) -> dict:
        """``{items: [{product_id, score, reason}], sources}``: ``sources`` lists where the items came from
        (``session``, ``events``); ``item_filter`` narrows both (a filtered request reads more of the event log:
        ``RECENT_FILTERED_READ``)."""
        def accept(pid: int) -> bool:
            return self._accept(pid, item_filter)

        viewed = [pid for pid in dict.fromkeys(await self._session_viewed(user_id)) if accept(pid)][:n]
        sources = [SESSION] if viewed else []
        if len(viewed) < n:
            taken = set(viewed)
            limit = n + len(taken) if not item_filter.active else max(n + len(taken), RECENT_FILTERED_READ)
            older = [pid for pid in await self._logged_viewed(user_id, limit) if pid not in taken and accept(pid)]
            viewed += older[:n - len(viewed)]
            sources += [EVENTS] if older else []
        return {"items": [{"product_id": pid, "score": round(1.0 / (i + 1), 6), "reason": REASON_RECENTLY_VIEWED}
                          for i, pid in enumerate(viewed)], "sources": sources}
