"""FastAPI dependencies: the app's serving state and its services, from ``app.state``.

They are ``async def`` because they only read ``app.state``: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import orjson

from fastapi import Depends, Query, Request

from recsys.serving.basket import BasketService
from recsys.serving.buy_again import BuyAgainService
from recsys.serving.events import EventService
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.filters import MAX_EXCLUDE, MAX_FILTER_CATEGORIES, ItemFilter, parse_filter
from recsys.serving.item_fields import ITEM_FIELDS, parse_fields, with_fields
from recsys.serving.item_lists import SimilarService
from recsys.serving.recent import RecentService
from recsys.serving.service import RecommendationService
from recsys.serving.state import ServingState


def serving_state(request: Request) -> ServingState:
    """The serving state, for code that is not itself a dependency."""
    return request.app.state.serving


async def get_state(request: Request) -> ServingState:
    return serving_state(request)


async def get_recommender(request: Request) -> RecommendationService:
    return request.app.state.recommender


async def get_event_service(request: Request) -> EventService:
    return request.app.state.event_service


async def get_similar_service(request: Request) -> SimilarService:
    return request.app.state.similar_service


async def get_basket_service(request: Request) -> BasketService:
    return request.app.state.basket_service


async def get_buy_again_service(request: Request) -> BuyAgainService:
    return request.app.state.buy_again_service


async def get_recent_service(request: Request) -> RecentService:
    return request.app.state.recent_service


async def get_request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def impression_request_id(request: Request) -> str:
    """The id an answer's impression is logged under: the request's own when the server made it, a new
    server-signed one when the client named the request (``X-Request-ID``), so every impression id is
    signed and unique. The route puts it on the request once it answers."""
    if getattr(request.state, "client_request_id", None):
        return request.app.state.request_ids.new()
    return request.state.request_id


async def client_named_request(request: Request) -> bool:
    """True when the request id is the client's ``X-Request-ID`` (not signed by the server)."""
    return bool(getattr(request.state, "client_request_id", None))


async def get_item_filter(
    request: Request,
    category: Annotated[list[str] | None, Query(
        max_length=MAX_FILTER_CATEGORIES, description="only products of these categories: repeat the parameter or "
        f"give a comma list (at most {MAX_FILTER_CATEGORIES}, each a known category)")] = None,
    price_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="only products priced at least "
                                             "this")] = None,
    price_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="only products priced at most "
                                             "this (>= price_min)")] = None,
    in_stock_only: Annotated[bool, Query(description="only products in stock")] = False,
    exclude: Annotated[list[str] | None, Query(
        max_length=MAX_EXCLUDE, description=f"product ids never to return (the page already shows them): repeat or "
        f"comma list, at most {MAX_EXCLUDE}")] = None,
) -> ItemFilter:
    """The request's filters (``recsys.serving.filters``), checked against the served catalog's categories."""
    state = serving_state(request)
    return parse_filter(category=category, price_min=price_min, price_max=price_max, in_stock_only=in_stock_only,
                        exclude=exclude, known_categories=state.catalog.categories | state.lists.categories)


@dataclass(frozen=True)
class ListShape:
    """What a list request asks of its answer besides its items: the filters, the product fields per item."""

    filter: ItemFilter
    fields: tuple[str, ...]
    catalog: CatalogSnapshot

    def body(self, body: dict) -> dict:
        """The answer with the product fields on each item and ``filters`` naming those applied (when any)."""
        if self.fields:
            body = {**body, "items": with_fields(body["items"], self.catalog, self.fields)}
        return {**body, "filters": self.filter.applied()} if self.filter.requested else body

    def encoded(self, body: bytes) -> bytes:
        """``body`` for an answer the service encoded already (``GET /recommendations``)."""
        return orjson.dumps(self.body(orjson.loads(body))) if self.fields else body


async def get_list_shape(
    request: Request,
    item_filter: Annotated[ItemFilter, Depends(get_item_filter)],
    fields: Annotated[list[str] | None, Query(
        max_length=len(ITEM_FIELDS), description=f"product fields to add to each item: {', '.join(ITEM_FIELDS)} "
        "(repeat or comma list; null for a product the catalog does not know)")] = None,
) -> ListShape:
    return ListShape(item_filter, parse_fields(fields), serving_state(request).catalog)


Shape = Annotated[ListShape, Depends(get_list_shape)]
