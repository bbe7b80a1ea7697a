"""The in-memory catalog snapshot: product attributes for re-ranking and event checks.

Loaded from ``products`` at start and refreshed in the background
(``settings.api_refresh_seconds``), so no request queries the database for a
product's category, stock, margin or age.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from recsys.constants import MS_PER_DAY
from recsys.ranking.rank_columns import RankInputs
from recsys.ranking.rerank import Candidate

UNKNOWN_PRODUCT = ("", True, 0.0, None)  # what a Candidate of an unknown product carries


@dataclass(frozen=True, slots=True)
class ProductInfo:
    product_id: int
    name: str
    category: str
    price: float
    margin: float
    in_stock: bool
    created_at_ms: int | None


def _ms(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    return int(value)


@dataclass(frozen=True)
class CatalogSnapshot:
    products: Mapping[int, ProductInfo] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    loaded_at: float = 0.0  # time.time() of the load; 0 = never loaded

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping]) -> CatalogSnapshot:
        """Rows with the ``products`` columns (name, category, price, margin, in_stock, created_at)."""
        products = {}
        for r in rows:
            pid = int(r["product_id"])
            products[pid] = ProductInfo(
                product_id=pid, name=str(r["name"] or ""), category=str(r["category"] or ""),
                price=float(r["price"] or 0.0), margin=float(r["margin"] or 0.0),
                in_stock=bool(r["in_stock"]) if r["in_stock"] is not None else True,
                created_at_ms=_ms(r["created_at"]),
            )
        categories = frozenset(p.category for p in products.values() if p.category)
        return cls(products=products, categories=categories, loaded_at=time.time())

    def __len__(self) -> int:
        return len(self.products)

    def get(self, product_id: int) -> ProductInfo | None:
        return self.products.get(product_id)

    def category_of(self, product_id: int) -> str:
        info = self.products.get(product_id)
        return info.category if info else ""

    def age_days(self, product_id: int, now_ms: int) -> float | None:
        info = self.products.get(product_id)
        if info is None or info.created_at_ms is None:
            return None
        return max(0.0, (now_ms - info.created_at_ms) / MS_PER_DAY)

    def candidate(self, product_id: int, score: float, *, now_ms: int, new_days: int,
                  popularity: int = 0, reason: str = "") -> Candidate:
        """A re-ranking candidate with this product's attributes (unknown products: neutral ones)."""
        info = self.products.get(product_id)
        if info is None:
            return Candidate(product_id=product_id, score=float(score), popularity=popularity, reason=reason)
        age = self.age_days(product_id, now_ms)
        return Candidate(
            product_id=product_id, score=float(score), category=info.category, in_stock=info.in_stock,
            margin=info.margin, is_new=age is not None and age < new_days, reason=reason,
            age_days=age, popularity=popularity,
        )

    @cached_property
    def _rank_attributes(self) -> dict[int, tuple[str, bool, float, int | None]]:
        """Per product (category, in stock, margin, created_at_ms): worked out once per snapshot."""
        return {pid: (p.category, p.in_stock, p.margin, p.created_at_ms) for pid, p in self.products.items()}

    def rank_inputs(self, products: Sequence[int], scores: Sequence[float], *, now_ms: int,
                    new_days: int) -> RankInputs:
        """What re-ranking reads about ``products``: the attributes ``candidate`` gives them, in columns."""
        attrs = self._rank_attributes
        rows = [attrs.get(pid, UNKNOWN_PRODUCT) for pid in products]
        categories, in_stock, margins, created = zip(*rows) if rows else ((), (), (), ())
        # max(0.0, x) of ``age_days``, written out (a builtin call per item costs more than the rest)
        ages = [None if c is None else (x if (x := (now_ms - c) / MS_PER_DAY) > 0.0 else 0.0) for c in created]
        is_new = [age is not None and age < new_days for age in ages]
        return RankInputs(scores, categories, in_stock, margins, is_new, ages)
