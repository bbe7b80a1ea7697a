"""``/events`` routes: HTTP only; validation rules and storage live in ``events.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from recsys.api.deps import client_named_request, get_event_service, get_request_id
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.events import EventService
from recsys.api.schemas import ClickEventIn, EventLogged, GenericEventIn, PurchaseEventIn

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
