"""The merchandising lists under ``/recommendations``: a basket's frequently bought together, buy it again and
recently viewed. HTTP only; the work is ``recsys.serving.basket``, ``buy_again`` and ``recent``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from recsys.api.deps import (
    Shape, get_basket_service, get_buy_again_service, get_recent_service, get_request_id,
)
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.schemas import (
    BasketResponse, BuyAgainResponse, NumItems, ProductIdList, RecentResponse, id_query,
)
from recsys.constants import MAX_DB_INT
from recsys.serving.basket import MAX_BASKET, BasketService
from recsys.serving.buy_again import BuyAgainService
from recsys.serving.errors import InvalidInputError
from recsys.serving.recent import RecentService

router = APIRouter(prefix="/recommendations", tags=["recommendations"])
RequestId = Annotated[str, Depends(get_request_id)]
UserId = Annotated[int, id_query("the user's id, as the calling backend authenticated it")]


def basket_ids(text: str) -> list[int]:
    """The distinct ids of ``product_ids`` (the schema checked its form), each in range, at most ``MAX_BASKET``."""
    ids = list(dict.fromkeys(int(part) for part in text.split(",")))
    bad = [i for i in ids if not 0 < i <= MAX_DB_INT]
    if bad:
        raise InvalidInputError(f"product ids are in 1..2^63-1, not {bad[0]}", field="product_ids")
    if len(ids) > MAX_BASKET:
        raise InvalidInputError(f"a basket names at most {MAX_BASKET} distinct products, got {len(ids)}",
                                field="product_ids")
    return ids


@router.get("/basket", response_model=BasketResponse, responses=error_responses(404, 422))
async def basket(
    product_ids: ProductIdList,
    service: Annotated[BasketService, Depends(get_basket_service)],
    request_id: RequestId,
    shape: Shape,
    num_items: NumItems = 10,
):
    """Frequently bought together for a basket: products bought in the same orders as the basket's, from the
    nightly co-purchase lists; without co-purchase data the bestsellers of the basket's categories, then
    trending (each item's reason says which). The basket's products are never in the answer."""
    ids = basket_ids(product_ids)
    found = await service.basket(ids, num_items, shape.filter)
    return OrjsonResponse(shape.body({"product_ids": ids, **found, "request_id": request_id}))


@router.get("/buy-again", response_model=BuyAgainResponse, responses=error_responses(404, 422))
async def buy_again(
    user_id: UserId,
    service: Annotated[BuyAgainService, Depends(get_buy_again_service)],
    request_id: RequestId,
    shape: Shape,
    num_items: NumItems = 10,
):
    """The user's purchases worth buying again: products of categories the shop's customers buy again, ranked by
    how close the time since the user's last purchase is to the category's observed repurchase interval."""
    items = await service.items(user_id, num_items, shape.filter)
    return OrjsonResponse(shape.body({"user_id": user_id, "items": items, "request_id": request_id}))


@router.get("/recent", response_model=RecentResponse, responses=error_responses(404, 422))
async def recent(
    user_id: UserId,
    service: Annotated[RecentService, Depends(get_recent_service)],
    request_id: RequestId,
    shape: Shape,
    num_items: NumItems = 10,
):
    """Recently viewed: the products the user browsed, newest first, from the live session, then the event log."""
    found = await service.recent(user_id, num_items, shape.filter)
    return OrjsonResponse(shape.body({"user_id": user_id, **found, "request_id": request_id}))
