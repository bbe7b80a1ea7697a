"""Request and response models: the OpenAPI schema at ``/docs`` is the contract.

Ids are strict positive integers (``"5"``, ``5.5`` and ``true`` are refused) no larger
than the database's BigInteger (``MAX_DB_INT`` = 2^63-1): the route parameters below
(``id_query``, ``id_path``, ``NumItems``) and the body fields (``PositiveId``) are the one
place every route takes its bounds from, so an id the database cannot store is a 422,
never a database error. Prices are finite and ``>= 0``, timestamps epoch milliseconds.

Request bodies (events here, ``ABTestCreate``) forbid unknown fields (``additionalProperties: false``):
a misspelt optional field (``sesion_id``) is a 422 naming it, not silently dropped.
Clients cannot post ``IMPRESSION`` events (the server logs them from the answers
of ``/recommendations``) nor event ids in the server's reserved ``imp:`` form.
Business rules that need the catalog or the clock (known product, timestamp window)
are checked by the event service and answered with the same 422 shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.constants import (
    CLICK, CLIENT_EVENT_TYPES, IMPRESSION, MAX_DB_INT, PURCHASE, RESERVED_EVENT_ID_PREFIX,
)
from recsys.serving.answers import MAX_NUM_ITEMS

PositiveId = Annotated[int, Field(gt=0, le=MAX_DB_INT, strict=True)]
EpochMs = Annotated[int, Field(gt=0, le=MAX_DB_INT, strict=True, description="epoch milliseconds, UTC")]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Source = Literal["personalized", "category", "trending"]
NumItems = Annotated[int, Query(ge=1, le=MAX_NUM_ITEMS, description=f"list length, 1..{MAX_NUM_ITEMS}")]
WithReasons = Annotated[bool, Query(description="false: items without a reason (nothing in the answer says what "
                                                "the user bought, viewed or browsed)")]


def id_query(description: str):
    """A positive id in the query string, within the database's range."""
    return Query(gt=0, le=MAX_DB_INT, description=f"{description} (1..2^63-1)")


def id_path(description: str):
    """A positive id in the path, within the database's range."""
    return Path(gt=0, le=MAX_DB_INT, description=f"{description} (1..2^63-1)")


# --- recommendations -----------------------------------------------------------
class AppliedFilters(BaseModel):
    """The request's filters as the server read them; absent when the request set none."""

    category: list[str] | None = Field(default=None, description="only these categories (sorted)")
    price_min: float | None = None
    price_max: float | None = None
    in_stock_only: bool | None = None
    exclude: list[int] | None = Field(default=None, description="product ids left out (sorted)")


def filters_field():
    return Field(default=None, description="the filters applied (category, price_min, price_max, in_stock_only, "
                                           "exclude); absent without filters")


class ItemFields(BaseModel):
    """The product fields an item carries when the request asked for them (``fields=name,price,category``)."""

    name: str | None = Field(default=None, description="with fields=name: the product's name")
    price: float | None = Field(default=None, description="with fields=price: the product's price")
    category: str | None = Field(default=None, description="with fields=category: the product's category")


class RecItem(ItemFields):
    product_id: int
    score: float
    reason: str | None = Field(
        default=None, description="why the item is recommended (RECSYS_REASONS: personal or generic texts); "
                                  "absent when the request asked for reasons=false")


class RecommendationsResponse(BaseModel):
    items: list[RecItem]
    model_version: str | None = Field(description="model id of the list; null for the fallback tiers")
    source: Source = Field(description="which tier answered (with filters: the tier of the first item; a tier a "
                                       "filter left short is filled by the next): personalized | category | trending")
    request_id: str
    filters: AppliedFilters | None = filters_field()


class TrendingItem(ItemFields):
    product_id: int
    score: float
    popularity: int


class TrendingResponse(BaseModel):
    items: list[TrendingItem]
    category: str | None = Field(description="the category asked for (several: comma-separated, sorted)")
    request_id: str
    filters: AppliedFilters | None = filters_field()


class SimilarItem(ItemFields):
    product_id: int
    score: float
    reason: str


class SimilarResponse(BaseModel):
    product_id: int
    items: list[SimilarItem]
    model_version: str | None
    request_id: str
    filters: AppliedFilters | None = filters_field()


# --- merchandising lists: basket, buy it again, recently viewed ------------------
ProductIdList = Annotated[str, Query(
    min_length=1, max_length=1200, pattern=r"^[0-9]+(,[0-9]+)*$", examples=["101,102"],
    description="the basket: comma-separated product ids, 1..50 distinct, each in 1..2^63-1")]


class ListItem(ItemFields):
    product_id: int
    score: float = Field(description="the item's score in the list it came from (its reason says which)")
    reason: str


class BasketResponse(BaseModel):
    product_ids: list[int] = Field(description="the basket as read (distinct, in order)")
    items: list[ListItem] = Field(description="never a product of the basket, nor one out of stock")
    source: Literal["bought_together", "category", "trending"] | None = Field(
        description="the list of the first item: bought_together (co-purchases of the basket's products), "
                    "category (bestsellers of the basket's categories: no co-purchase data) or trending; "
                    "null without items")
    unknown_product_ids: list[int] = Field(description="basket ids not in the catalogue (left out of the basket)")
    request_id: str
    filters: AppliedFilters | None = filters_field()


class BuyAgainResponse(BaseModel):
    user_id: int
    items: list[ListItem] = Field(description="the user's purchases of repeat categories, by their category's "
                                              "repurchase interval (none of a durable category, none out of stock)")
    request_id: str
    filters: AppliedFilters | None = filters_field()


class RecentResponse(BaseModel):
    user_id: int
    items: list[ListItem] = Field(description="products the user viewed, clicked, wished or carted, newest first")
    sources: list[Literal["session", "events"]] = Field(
        description="where the items came from: the live session in Redis, then the event log")
    request_id: str
    filters: AppliedFilters | None = filters_field()


# --- events --------------------------------------------------------------------
EXAMPLE_EVENT = {"user_id": 42, "product_id": 101, "timestamp": 1764547200000, "session_id": "s-42-1",
                 "event_id": "shop-ev-42-1", "request_id": "3f9c2a71d04b8e65a1c0d2e3f4a5b6c7"}


ClientEventId = Annotated[str, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$",
    description=f"client event id: a retry with the same id is logged once ('{RESERVED_EVENT_ID_PREFIX}...' is reserved)",
)]


def _example(**extra) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [{**EXAMPLE_EVENT, **extra}]})


class EventIn(BaseModel):
    model_config = _example()

    user_id: PositiveId
    product_id: PositiveId
    timestamp: EpochMs
    session_id: str | None = Field(default=None, min_length=1, max_length=255)
    event_id: ClientEventId | None = None
    request_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$",
        description="request_id of the /recommendations answer that showed the product (A/B attribution)",
    )

    @field_validator("event_id")
    @classmethod
    def _not_reserved(cls, v: str | None) -> str | None:
        if v is not None and v.lower().startswith(RESERVED_EVENT_ID_PREFIX):
            raise ValueError(f"event ids starting with '{RESERVED_EVENT_ID_PREFIX}' are reserved for the "
                             "server's impression log")
        return v

    def event_type_name(self) -> str:
        return CLICK

    def price_value(self) -> float | None:
        return None


class ClickEventIn(EventIn):
    pass


class PurchaseEventIn(EventIn):
    model_config = _example(price=49.5)

    price: Price

    def event_type_name(self) -> str:
        return PURCHASE

    def price_value(self) -> float | None:
        return self.price


class GenericEventIn(EventIn):
    model_config = _example(event_type="VIEW")

    event_type: Literal[CLIENT_EVENT_TYPES] = Field(
        description="VIEW, WISHLIST, ADD_TO_CART, RETURN (CLICK, PURCHASE too); IMPRESSION is logged by the server")
    price: Price | None = None

    @field_validator("event_type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        v = v.strip().upper() if isinstance(v, str) else v
        if v == IMPRESSION:
            raise ValueError("IMPRESSION events are logged by the server from the /recommendations answers; "
                             "clients cannot post them")
        return v

    def event_type_name(self) -> str:
        return self.event_type

    def price_value(self) -> float | None:
        return self.price


class EventLogged(BaseModel):
    status: Literal["logged"]
    event_id: int | None = Field(description="the server's id of the stored event")
    duplicate: bool = Field(description="true when this client event id was already logged (a retry)")
    request_id: str


class BatchEventIn(GenericEventIn):
    """An element of ``POST /events/batch``: a generic event whose ``event_id`` is required, so that the
    retry of a batch that answered 503 (part of it may be committed) is answered ``duplicate`` for those."""

    model_config = _example(event_type="CLICK")

    event_id: ClientEventId


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [
        {**EXAMPLE_EVENT, "event_type": "CLICK"},
        {**EXAMPLE_EVENT, "event_type": "PURCHASE", "price": 49.5, "event_id": "shop-ev-42-2"}]}]})

    events: list[BatchEventIn] = Field(
        min_length=1, description="1..RECSYS_EVENT_BATCH_MAX events, each answered in this order")


class BatchEventLogged(BaseModel):
    status: Literal["logged"]
    event_id: int | None = Field(description="the server's id of the stored event")
    duplicate: bool = Field(description="true when this client event id was already logged (a retry)")


class BatchEventRejected(BaseModel):
    status: Literal["rejected"]
    code: Literal[409, 422] = Field(description="the status the event would get from POST /events")
    detail: str
    field: str | None


class EventBatchLogged(BaseModel):
    results: list[BatchEventLogged | BatchEventRejected] = Field(description="one per event, in request order")
    request_id: str


# --- operations ----------------------------------------------------------------
class ModelStatus(BaseModel):
    status: str = Field(description="registry status of the serving model, NO_MODEL when none is LIVE")
    model_version: str | None
    version: int | None
    last_trained_at: str | None
    training_accuracy: float | None
    metrics: dict[str, Any]
    model_type: str | None = Field(default=None,
                                   description="the model family (HYBRID, lightfm-cf, als, item-knn, SEQUENTIAL)")
    selection: dict[str, Any] | None = Field(
        default=None, description="the nightly model selection that chose it: metric, chosen candidate, the "
                                  "validation split (protocol, users, windows tried), the decision and every "
                                  "candidate's family, configuration, validation metrics with their bootstrap "
                                  "interval and seconds")
    request_id: str


class HealthStatus(BaseModel):
    """``/health`` without an API key: the status only."""

    status: Literal["ok", "degraded", "down"]
    request_id: str


class Health(HealthStatus):
    """``/health`` with an API key: each check (``ok`` or the error), the catalogue size, the served model."""

    redis: str
    database: str
    catalog_products: int
    model_version: str | None


class ErrorBody(BaseModel):
    detail: str
    field: str | None
    errors: list[dict[str, Any]]
    request_id: str
