"""``/recommendations`` routes: HTTP only; the work is ``recsys.serving.service`` and ``item_lists``.

``GET /recommendations`` has two routes. ``FastRecommendationsRoute`` (first in the app's routes)
takes the plain request, ``user_id`` and ``num_items`` as canonical integers in range and a known
API key, without FastAPI's per-request dependency resolution and validation: the key's rate-limit
token rides in the cache hit's Redis round trip. Every other request (no or unknown key, a value
FastAPI must validate or refuse, other parameters) is handed to the declared route below, which
answers it exactly as before (401, 422, ...); that route is also the OpenAPI contract.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound

from recsys.api.auth import API_KEY_HEADER
from recsys.api.deps import (
    Shape, get_recommender, get_request_id, get_similar_service, get_state, impression_request_id,
)
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.schemas import (
    NumItems, RecommendationsResponse, SimilarResponse, TrendingResponse, WithReasons, id_query,
)
from recsys.constants import MAX_DB_INT
from recsys.serving.answers import MAX_NUM_ITEMS
from recsys.serving.item_lists import SimilarService, trending_items
from recsys.serving.paging import served_before
from recsys.serving.service import RecommendationService
from recsys.serving.state import ServingState

router = APIRouter(prefix="/recommendations", tags=["recommendations"])
RequestId = Annotated[str, Depends(get_request_id)]


@router.get("", response_model=RecommendationsResponse, responses=error_responses(404, 422))
async def recommendations(
    request: Request,
    user_id: Annotated[int, id_query("the user's id, as the calling backend authenticated it")],
    recommender: Annotated[RecommendationService, Depends(get_recommender)],
    shape: Shape,
    num_items: NumItems = 10,
    reasons: WithReasons = True,
    after: Annotated[str | None, Query(
        min_length=32, max_length=32, pattern="^[0-9a-f]{32}$",
        description="the request_id of this user's previous answer: the next items of the same ranking, none of "
                    "those it or its earlier pages served (kept RECSYS_PAGE_TTL_SECONDS, default 30 minutes)")] = None,
):
    """The user's list. ``request_id`` is signed by the server: send it back with the clicks and
    purchases of this list (``POST /events/click``) so that they count for the list's A/B arm.
    ``reasons=false``: the same items and scores, without their reasons. Filters narrow every tier: the
    user's cached answer when enough of it passes, else the user's cached candidates, then the category and
    trending tiers fill what is short (each item keeps its reason); ``filters`` says which applied.
    ``after``: the next page of that answer (``recsys.serving.paging``); ``fields``: product fields per item."""
    item_filter = shape.filter
    if after is not None:
        served = await served_before(recommender.state, request.app.state.request_ids, after, user_id)
        item_filter = dataclasses.replace(item_filter, paged=frozenset(served))
    request_id = impression_request_id(request)
    body = await recommender.respond(user_id, num_items, request_id, reasons=reasons, item_filter=item_filter)
    request.state.request_id = request_id
    return Response(shape.encoded(body), media_type="application/json")


@router.get("/trending", response_model=TrendingResponse, responses=error_responses(404, 422))
async def trending(
    state: Annotated[ServingState, Depends(get_state)],
    request_id: RequestId,
    shape: Shape,
    num_items: NumItems = 10,
):
    """Global trending; with ``category``, the bestsellers of those categories, then trending in them."""
    items = trending_items(state, num_items, shape.filter)
    category = ",".join(sorted(shape.filter.categories)) or None
    return OrjsonResponse(shape.body({"items": items, "category": category, "request_id": request_id}))


@router.get("/similar", response_model=SimilarResponse, responses=error_responses(404, 422))
async def similar(
    product_id: Annotated[int, id_query("the product's id")],
    service: Annotated[SimilarService, Depends(get_similar_service)],
    request_id: RequestId,
    shape: Shape,
    num_items: NumItems = 10,
):
    """Items similar to the product; filters narrow them, its category's bestsellers then trending fill."""
    items, model_version = await service.similar(product_id, num_items, shape.filter)
    return OrjsonResponse(shape.body({"product_id": product_id, "items": items, "model_version": model_version,
                                      "request_id": request_id}))


_KEY_HEADER = API_KEY_HEADER.lower().encode()
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _positive(raw: bytes, top: int) -> int | None:
    """A canonical decimal in 1..top (no sign, no leading zero, no space), else None."""
    if not raw.isdigit() or raw[:1] == b"0" or len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= top else None


def simple_query(query: bytes) -> tuple[int, int] | None:
    """(user_id, num_items) of a query string holding only them, each once and valid; else None."""
    found: dict[bytes, bytes] = {}
    for part in query.split(b"&") if query else ():
        name, sep, value = part.partition(b"=")
        if not sep or name in found or name not in (b"user_id", b"num_items"):
            return None
        found[name] = value
    user_id = _positive(found.get(b"user_id", b""), MAX_DB_INT)
    n = _positive(found[b"num_items"], MAX_NUM_ITEMS) if b"num_items" in found else 10
    return (user_id, n) if user_id is not None and n is not None else None


class FastRecommendationsRoute(BaseRoute):
    """``GET /recommendations`` without per-request dependency resolution (module docstring)."""

    def __init__(self, declared: APIRoute):
        self.declared = declared
        self.path = declared.path  # the metrics' endpoint label

    def matches(self, scope) -> tuple[Match, dict]:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.path:
            return Match.FULL, {"endpoint": self.declared.endpoint, "path_params": {}}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params):
        raise NoMatchFound(name, path_params)

    async def handle(self, scope, receive, send) -> None:
        app = scope["app"]
        parsed = simple_query(scope.get("query_string", b""))
        key = next((v for k, v in scope["headers"] if k == _KEY_HEADER), None) if parsed else None
        name = app.state.api_keys.name_of(key.decode("latin-1")) if key else None
        if name is None:
            scope["route"] = self.declared
            await self.declared.handle(scope, receive, send)
            return
        state = scope["state"]
        state["api_key_name"] = name
        request_id = app.state.request_ids.new() if state.get("client_request_id") else state["request_id"]
        body = await app.state.recommender.respond(parsed[0], parsed[1], request_id,
                                                   limiter=app.state.rate_limiter, key_name=name)
        state["request_id"] = request_id
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def install_fast_route(app) -> None:
    """Put ``FastRecommendationsRoute`` in front of the declared ``GET /recommendations``."""
    declared = next(r for r in app.router.routes
                    if isinstance(r, APIRoute) and r.path == "/recommendations" and "GET" in r.methods)
    app.router.routes.insert(0, FastRecommendationsRoute(declared))
