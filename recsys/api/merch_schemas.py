"""Request and response models of the merchandising rules' admin endpoints (the OpenAPI contract)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from recsys.api.schemas import PositiveId, Price, RecItem
from recsys.ranking.merch_rules import BLOCK, BOOST, BURY, PIN, PROMOTE

Category = Annotated[str, Field(min_length=1, max_length=128)]
MOMENT_MAX_LENGTH = 64


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MOMENT_MAX_LENGTH:
        raise ValueError(f"a date-time is at most {MOMENT_MAX_LENGTH} characters")
    return value


# an ISO 8601 date-time with its zone, bounded like every string of a request
Moment = Annotated[dt.datetime, BeforeValidator(_short), Field(json_schema_extra={"maxLength": MOMENT_MAX_LENGTH})]
MAX_RULE_PRODUCTS = 200
MAX_RULE_CATEGORIES = 20


class MerchRuleFields(BaseModel):
    """What a rule is: its action, what it matches, its amount, its window."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Winter boots week", "action": "promote", "categories": ["Shoes"], "price_max": 120, "share": 0.2,
         "starts_at": "2026-12-10T00:00:00Z", "ends_at": "2026-12-17T00:00:00Z"}]})

    name: str = Field(min_length=1, max_length=128)
    action: Literal["boost", "bury", "pin", "block", "promote"] = Field(
        description="boost / bury: weight x the list's score spread added / taken; pin: a fixed slot; block: never "
                    "shown; promote: a share of the list reserved for matching products")
    products: list[PositiveId] = Field(default_factory=list, max_length=MAX_RULE_PRODUCTS,
                                       description="product ids the rule matches (pin: in order of preference)")
    categories: list[Category] = Field(default_factory=list, max_length=MAX_RULE_CATEGORIES,
                                       description="categories the rule matches")
    price_min: Price | None = Field(default=None, description="matches only products priced at least this")
    price_max: Price | None = Field(default=None, description="matches only products priced at most this")
    weight: float = Field(default=0.0, ge=0, le=10, allow_inf_nan=False,
                          description="boost / bury: the share of the list's score spread (1 = the whole spread)")
    slot: int | None = Field(default=None, ge=1, le=100, description="pin: the 1-based position")
    share: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False,
                         description="promote: the share of the list reserved (rounded up)")
    starts_at: Moment | None = Field(default=None, description="live from (UTC; none: now)")
    ends_at: Moment | None = Field(default=None, description="live until (UTC; none: until expired)")

    @model_validator(mode="after")
    def _consistent(self):
        if not (self.products or self.categories or self.price_min is not None or self.price_max is not None):
            raise ValueError("a rule matches products, categories or a price range: give at least one")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min is greater than price_max")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone (say Z for UTC)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at is not after starts_at")
        if self.action in (BOOST, BURY) and not self.weight:
            raise ValueError(f"a {self.action} rule needs a weight > 0")
        if self.action == PIN and self.slot is None:
            raise ValueError("a pin rule needs a slot")
        if self.action == PROMOTE and not self.share:
            raise ValueError("a promote rule needs a share > 0")
        if self.action == BLOCK and (self.weight or self.slot or self.share):
            raise ValueError("a block rule takes no weight, slot or share")
        return self


class MerchRulePatch(BaseModel):
    """The fields to change; the rule with them must still be valid (``MerchRuleFields``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    action: Literal["boost", "bury", "pin", "block", "promote"] | None = None
    products: list[PositiveId] | None = Field(default=None, max_length=MAX_RULE_PRODUCTS)
    categories: list[Category] | None = Field(default=None, max_length=MAX_RULE_CATEGORIES)
    price_min: Price | None = None
    price_max: Price | None = None
    weight: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False)
    slot: int | None = Field(default=None, ge=1, le=100)
    share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class MerchRuleView(MerchRuleFields):
    model_config = ConfigDict(extra="ignore")

    rule_id: int
    live: bool = Field(description="in its window and not expired, now")
    expired_at: dt.datetime | None
    revision: int = Field(description="1 when created, one more per change")
    created_by: str
    created_at: dt.datetime
    updated_by: str
    updated_at: dt.datetime
    request_id: str | None = None


class MerchRuleList(BaseModel):
    rules: list[MerchRuleView]
    version: str = Field(description="the rules' version as the API nodes poll it (max(updated_at)/count)")
    request_id: str


class RulesPreview(BaseModel):
    user_id: int
    with_rules: list[RecItem]
    without_rules: list[RecItem]
    source: str
    live_rules: list[dict[str, Any]] = Field(description="the rules live now: rule_id, name, action")
    request_id: str
