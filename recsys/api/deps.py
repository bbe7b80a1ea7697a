"""FastAPI dependencies: the app's serving state and its services, from ``app.state``.

They are ``async def`` because they only read ``app.state``: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from fastapi import Request

from recsys.serving.basket import BasketService
from recsys.serving.buy_again import BuyAgainService
from recsys.serving.events import EventService
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
