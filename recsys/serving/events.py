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

``log_batch`` (``POST /events/batch``) applies the same rules to each event of a batch and
submits them all to the same group commit: each event is answered on its own (``logged``,
or ``rejected`` with the 409/422 a single request would get), and the request is answered
after every transaction holding one of its events committed. A failed transaction makes the
whole request a 503; the events already committed in another transaction stay, so the client
retries the batch with its event ids (required there) and those are answered ``duplicate``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from recsys.constants import PURCHASE
from recsys.serving.errors import ConflictError, DependencyDown, InvalidInputError, ServingError
from recsys.serving.session_state import update_args
from recsys.serving.state import ServingState
from recsys.serving.stores.event_batch import EventWrite

log = logging.getLogger(__name__)


class Event(Protocol):
    """An event as the API validated it (``recsys.api.schemas.EventIn`` and its kinds)."""

    user_id: int
    product_id: int
    timestamp: int
    session_id: str | None
    event_id: str | None
    request_id: str | None

    def event_type_name(self) -> str: ...

    def price_value(self) -> float | None: ...


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

    async def log_event(self, event: Event, request_id: str, *, client_named: bool = False) -> dict:
        """Store one event. The row's ``request_id`` is the one the event names (the list it credits), else
        this request's own id unless the client named it (``client_named``: an unsigned id in an event row
        would make it count for no A/B arm)."""
        category, written = await self._store(event, request_id, client_named)
        if written.inserted:
            await self._update_session(event, category, written.n_events)
        return {**_logged(written), "request_id": request_id}

    async def log_batch(self, events: Sequence[Event], request_id: str, *, client_named: bool = False) -> dict:
        """Store a batch's events, each by ``log_event``'s rules, all submitted to the group commit at once
        (in order, so a repeated event id is logged first, then ``duplicate`` or 409; an event whose product
        is newer than the catalog snapshot joins after its product is read). Answers one result per
        event once every one is settled; a failed transaction (``DependencyDown``) answers the request 503,
        after the session updates of the events that were committed (their retry will be a duplicate)."""
        self.check_batch_size(len(events))
        outcomes = await asyncio.gather(*(self._store(e, request_id, client_named) for e in events),
                                        return_exceptions=True)
        stored = [(e, o) for e, o in zip(events, outcomes) if isinstance(o, tuple) and o[1].inserted]
        await self._update_sessions(stored)
        for outcome in outcomes:  # the database down (or a bug): the request fails as a whole
            if isinstance(outcome, BaseException) and (isinstance(outcome, DependencyDown)
                                                       or not isinstance(outcome, ServingError)):
                raise outcome
        return {"results": [_rejected(o) if isinstance(o, ServingError) else _logged(o[1]) for o in outcomes],
                "request_id": request_id}

    def check_batch_size(self, n_events: int) -> None:
        """A batch of more than ``RECSYS_EVENT_BATCH_MAX`` events is a 422 (before anything is charged)."""
        limit = self.state.settings.event_batch_max
        if n_events > limit:
            raise InvalidInputError(f"a batch holds at most {limit} events (RECSYS_EVENT_BATCH_MAX), got {n_events}: "
                                    "split it", field="events")

    async def _store(self, event: Event, request_id: str, client_named: bool) -> tuple[str, EventWrite]:
        """The per-event rules, then the commit: the product's category and the write (a 422 or 409 of its own
        as ``ServingError``; ``DependencyDown`` when the database is down)."""
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
        return category, written

    def _session_args(self, event: Event, category: str, n_events: int) -> list[str]:
        s = self.state.settings
        return update_args(event.event_type_name(), event.product_id, category, event.session_id,
                           now_ms=self.state.now_ms(), session_ttl=s.session_ttl_seconds, n_events=n_events,
                           counter_ttl=s.active_days * 86400, seen_types=s.exclude_seen_types)

    async def _update_session(self, event: Event, category: str, n_events: int) -> None:
        try:
            await self.state.redis.record_event(event.user_id, self._session_args(event, category, n_events))
        except DependencyDown as exc:
            log.warning("event of user %s kept, session not updated: %s", event.user_id, exc)
            self.state.degraded("redis")

    async def _update_sessions(self, stored: list[tuple[Event, tuple[str, EventWrite]]]) -> None:
        """``_update_session`` of each stored event of a batch, in order, in one pipeline."""
        if not stored:
            return
        updates = [(e, self._session_args(e, category, w.n_events)) for e, (category, w) in stored]
        try:
            await self.state.redis.record_events([(e.user_id, args) for e, args in updates])
        except DependencyDown as exc:
            log.warning("%d events kept, sessions not updated: %s", len(updates), exc)
            self.state.degraded("redis")


def _logged(written: EventWrite) -> dict:
    return {"status": "logged", "event_id": written.event_id, "duplicate": not written.inserted}


def _rejected(error: ServingError) -> dict:
    return {"status": "rejected", "code": error.status_code, "detail": error.message, "field": error.field}
