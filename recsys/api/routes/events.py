"""``/events`` routes: HTTP only; validation rules and storage live in ``events.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from recsys.api.deps import client_named_request, get_event_service, get_request_id
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.schemas import (
    ClickEventIn, EventBatchIn, EventBatchLogged, EventLogged, GenericEventIn, PurchaseEventIn,
)
from recsys.serving.events import EventService

router = APIRouter(prefix="/events", tags=["events"])
Service = Annotated[EventService, Depends(get_event_service)]
RequestId = Annotated[str, Depends(get_request_id)]
ClientNamed = Annotated[bool, Depends(client_named_request)]
_ERRORS = error_responses(409, 413, 422, 503)  # a body that is not UTF-8 is a 422 too


@router.post("/click", response_model=EventLogged, responses=_ERRORS)
async def log_click(event: ClickEventIn, service: Service, request_id: RequestId, client_named: ClientNamed):
    return OrjsonResponse(await service.log_event(event, request_id, client_named=client_named))


@router.post("/purchase", response_model=EventLogged, responses=_ERRORS)
async def log_purchase(event: PurchaseEventIn, service: Service, request_id: RequestId, client_named: ClientNamed):
    return OrjsonResponse(await service.log_event(event, request_id, client_named=client_named))


@router.post("", response_model=EventLogged, responses=_ERRORS)
async def log_event(event: GenericEventIn, service: Service, request_id: RequestId, client_named: ClientNamed):
    """VIEW, WISHLIST, ADD_TO_CART, RETURN (and the other known types) with the same rules."""
    return OrjsonResponse(await service.log_event(event, request_id, client_named=client_named))


BATCH_DESCRIPTION = """Many events in one request (a shop's backend forwarding its events), each stored by the rules of
`POST /events` and submitted to the same group commit.

- The body is validated first: a malformed body, an element that fails the schema (its index and field are
  named, e.g. `events[3].timestamp`), more than `RECSYS_EVENT_BATCH_MAX` events: 422, nothing stored.
  Every element needs an `event_id`.
- Each event costs one token of the key's rate limit (429 when the bucket lacks them; a batch larger than
  the bucket is a 422).
- Otherwise 200 with `results`, one per event in request order: `{"status": "logged", "event_id", "duplicate"}`,
  or `{"status": "rejected", "code": 409|422, "detail", "field"}` for an event refused on its own (an
  `event_id` already used for a different event, an unknown product, a timestamp out of the window, a
  PURCHASE without price, a value the database refuses). The answer is sent after every logged event's
  transaction committed. The same `event_id` twice in a batch: the first is logged, the next `duplicate`
  (or 409 when the events differ), as for two requests.
- 503 when a transaction failed (database down): events of the batch may already be committed in another
  transaction, so retry the whole batch with the same event ids; those are answered `duplicate: true`.
"""


@router.post("/batch", response_model=EventBatchLogged, responses=error_responses(413, 422, 503),
             description=BATCH_DESCRIPTION)  # a 409 is one event's result, not the request's
async def log_batch(batch: EventBatchIn, request: Request, service: Service, request_id: RequestId,
                    client_named: ClientNamed):
    service.check_batch_size(len(batch.events))
    await request.app.state.rate_limiter.charge_events(request.state.api_key_name, len(batch.events))
    return OrjsonResponse(await service.log_batch(batch.events, request_id, client_named=client_named))
