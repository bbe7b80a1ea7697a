"""Request and response models: the OpenAPI schema at ``/docs`` is the contract.

Ids are strict positive integers (``"5"``, ``5.5`` and ``true`` are refused),
prices finite and ``>= 0``, timestamps epoch milliseconds. Business rules that
need the catalog or the clock (known product, timestamp window) are checked by
the event service and answered with the same 422 shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.constants import CLICK, EVENT_TYPES, PURCHASE

PositiveId = Annotated[int, Field(gt=0, le=2**63 - 1, strict=True)]
EpochMs = Annotated[int, Field(gt=0, strict=True, description="epoch milliseconds, UTC")]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Source = Literal["personalized", "category", "trending"]


# --- recommendations -----------------------------------------------------------
class RecItem(BaseModel):
    product_id: int
    score: float
    reason: str


class RecommendationsResponse(BaseModel):
    items: list[RecItem]
    model_version: str | None = Field(description="model id of the list; null for the fallback tiers")
    source: Source = Field(description="which tier answered: personalized | category | trending")
    request_id: str


class TrendingItem(BaseModel):
    product_id: int
    score: float
    popularity: int


class TrendingResponse(BaseModel):
    items: list[TrendingItem]
    category: str | None
    request_id: str


class SimilarItem(BaseModel):
    product_id: int
    score: float
    reason: str


class SimilarResponse(BaseModel):
    product_id: int
    items: list[SimilarItem]
    model_version: str | None
    request_id: str


# --- events --------------------------------------------------------------------
EXAMPLE_EVENT = {"user_id": 42, "product_id": 101, "timestamp": 1764547200000, "session_id": "s-42-1",
                 "event_id": "shop-ev-42-1", "request_id": "3f9c2a71d04b8e65a1c0d2e3f4a5b6c7"}


def _example(**extra) -> ConfigDict:
    return ConfigDict(extra="ignore", json_schema_extra={"examples": [{**EXAMPLE_EVENT, **extra}]})


class EventIn(BaseModel):
    model_config = _example()

    user_id: PositiveId
    product_id: PositiveId
    timestamp: EpochMs
    session_id: str | None = Field(default=None, min_length=1, max_length=255)
    event_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$",
        description="client event id: a retry with the same id is logged once",
    )
    request_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$",
        description="request_id of the /recommendations answer that showed the product (A/B attribution)",
    )

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

    event_type: Literal[EVENT_TYPES] = Field(description="VIEW, WISHLIST, ADD_TO_CART, RETURN (CLICK, PURCHASE too)")
    price: Price | None = None

    @field_validator("event_type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    def event_type_name(self) -> str:
        return self.event_type

    def price_value(self) -> float | None:
        return self.price


class EventLogged(BaseModel):
    status: Literal["logged"]
    event_id: int | None = Field(description="the server's id of the stored event")
    duplicate: bool = Field(description="true when this client event id was already logged (a retry)")
    request_id: str


# --- operations ----------------------------------------------------------------
class ModelStatus(BaseModel):
    status: str = Field(description="registry status of the serving model, NO_MODEL when none is LIVE")
    model_version: str | None
    version: int | None
    last_trained_at: str | None
    training_accuracy: float | None
    metrics: dict[str, Any]
    request_id: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    redis: str
    database: str
    catalog_products: int
    model_version: str | None
    request_id: str


class ErrorBody(BaseModel):
    detail: str
    field: str | None
    errors: list[dict[str, Any]]
    request_id: str
