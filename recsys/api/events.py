"""Event ingestion: validate, commit to ``user_events``, then update the real-time session.

An event answered ``logged`` is in the database: the insert (with the user's
row when the user is new, so the nightly validation knows them) commits
first, in the batch of concurrent events its worker's group commit writes
together (``DbStore.insert_event``), and a failure of that transaction answers
503 so that the client retries. A
client ``event_id`` is stored as ``client_event_id`` (unique): a retry is
answered ``logged`` with ``duplicate: true`` and changes nothing; the same id
for a different event is a 409. The Redis session update comes after the
commit and is best effort (Redis down: the event is kept, counted degraded).
"""

from __future__ import annotations

import logging

from recsys.api.errors import ConflictError, DependencyDown, InvalidInputError
from recsys.api.schemas import EventIn
from recsys.api.session_state import update_args
from recsys.api.state import ServingState
from recsys.constants import PURCHASE

log = logging.getLogger(__name__)


def check_timestamp(ts_ms: int, now_ms: int, *, skew_seconds: int, max_age_days: int) -> None:
    """Refuse a timestamp in the future (beyond the clock skew) or older than ``max_age_days``."""
    if ts_ms > now_ms + skew_seconds * 1000:
        raise InvalidInputError(
            f"timestamp {ts_ms} is in the future (now {now_ms}, {skew_seconds}s clock skew allowed)",
            field="timestamp")
    if ts_ms < now_ms - max_age_days * 86_400_000:
        raise InvalidInputError(
            f"timestamp {ts_ms} is more than {max_age_days} days old (epoch milliseconds expected)",
            field="timestamp")


class EventService:
    def __init__(self, state: ServingState):
        self.state = state

    async def _category(self, product_id: int) -> str:
        info = self.state.catalog.get(product_id)
        if info is not None:
            return info.category
        category = await self.state.db.product_category(product_id)  # newer than the snapshot?
        if category is None:
            raise InvalidInputError(f"unknown product_id {product_id}", field="product_id")
        return category

    async def log_event(self, event: EventIn, request_id: str, *, client_named: bool = False) -> dict:
        """Store one event. The row's ``request_id`` is the one the event names (the list it credits), else
        this request's own id unless the client named it (``client_named``: an unsigned id in an event row
        would make it count for no A/B arm)."""
        s = self.state.settings
        event_type, price = event.event_type_name(), event.price_value()
        if event_type == PURCHASE and price is None:
            raise InvalidInputError("price is required for a PURCHASE", field="price")
        check_timestamp(event.timestamp, self.state.now_ms(), skew_seconds=s.event_clock_skew_seconds,
                        max_age_days=s.event_max_age_days)
        try:
            category = await self._category(event.product_id)
            written = await self.state.db.insert_event({
                "user_id": event.user_id, "product_id": event.product_id, "event_type": event_type,
                "session_id": event.session_id, "timestamp": event.timestamp, "price": price,
                "client_event_id": event.event_id,
                "request_id": event.request_id or (None if client_named else request_id) or None,
            })
        except DependencyDown:
            self.state.degraded("database")
            raise
        if not written.same_event:
            raise ConflictError(f"event_id {event.event_id!r} was already used for a different event",
                                field="event_id")
        if written.inserted:
            self.state.metrics.events.labels(event_type=event_type).inc()
            await self._update_session(event, event_type, category, written.n_events)
        return {"status": "logged", "event_id": written.event_id, "duplicate": not written.inserted,
                "request_id": request_id}

    async def _update_session(self, event: EventIn, event_type: str, category: str, n_events: int) -> None:
        s = self.state.settings
        args = update_args(event_type, event.product_id, category, event.session_id, now_ms=self.state.now_ms(),
                           session_ttl=s.session_ttl_seconds, n_events=n_events, counter_ttl=s.active_days * 86400,
                           seen_types=s.exclude_seen_types)
        try:
            await self.state.redis.record_event(event.user_id, args)
        except DependencyDown as exc:
            log.warning("event of user %s kept, session not updated: %s", event.user_id, exc)
            self.state.degraded("redis")
