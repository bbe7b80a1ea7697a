"""``/recommendations`` routes: HTTP only; the tiers live in ``serving.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from recsys.api.deps import get_recommender, get_request_id, get_similar_service, get_state, impression_request_id
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.item_lists import SimilarService, trending_items
from recsys.api.schemas import NumItems, RecommendationsResponse, SimilarResponse, TrendingResponse, id_query
from recsys.api.serving import RecommendationService
from recsys.api.state import ServingState

router = APIRouter(prefix="/recommendations", tags=["recommendations"])
RequestId = Annotated[str, Depends(get_request_id)]


@router.get("", response_model=RecommendationsResponse, responses=error_responses(422))
async def recommendations(
    request: Request,
    user_id: Annotated[int, id_query("the user's id, as the calling backend authenticated it")],
    recommender: Annotated[RecommendationService, Depends(get_recommender)],
    num_items: NumItems = 10,
):
    """The user's list. ``request_id`` is signed by the server: send it back with the clicks and
    purchases of this list (``POST /events/click``) so that they count for the list's A/B arm."""
    request_id = impression_request_id(request)
    rec = await recommender.recommend(user_id, num_items, request_id=request_id)
    request.state.request_id = request_id
    items = [{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in rec.items]
    return OrjsonResponse({"items": items, "model_version": rec.model_version, "source": rec.source,
                           "request_id": request_id})


@router.get("/trending", response_model=TrendingResponse, responses=error_responses(404, 422))
async def trending(
    state: Annotated[ServingState, Depends(get_state)],
    request_id: RequestId,
    category: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    num_items: NumItems = 10,
):
    items = trending_items(state, category, num_items)
    return OrjsonResponse({"items": items, "category": category, "request_id": request_id})


@router.get("/similar", response_model=SimilarResponse, responses=error_responses(404, 422))
async def similar(
    product_id: Annotated[int, id_query("the product's id")],
    service: Annotated[SimilarService, Depends(get_similar_service)],
    request_id: RequestId,
    num_items: NumItems = 10,
):
    items, model_version = await service.similar(product_id, num_items)
    return OrjsonResponse({"product_id": product_id, "items": items, "model_version": model_version,
                           "request_id": request_id})
