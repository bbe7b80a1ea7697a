"""Request-time filters of the list endpoints: ``category``, ``price_min`` / ``price_max``, ``in_stock_only``,
``exclude`` (issue 24).

An ``ItemFilter`` is a pure predicate over the in-memory catalog: every tier (and every list of the
merchandising endpoints) asks ``accepts`` of each candidate, so a filter narrows every tier, and the caller
fills a short tier from the next one. ``parse_filter`` is the one place their bounds are checked; a value out of
them is an ``InvalidInputError`` (422) naming the parameter, an unknown category a ``NotFoundError`` (404). A product unknown to the catalog has no category
nor price, so it passes only a filter that asks nothing of them (``exclude`` alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recsys.constants import MAX_DB_INT
from recsys.serving.catalog import CatalogSnapshot, ProductInfo
from recsys.serving.errors import InvalidInputError, NotFoundError

MAX_FILTER_CATEGORIES = 20  # categories one request may name
MAX_CATEGORY_LENGTH = 128
MAX_EXCLUDE = 200  # product ids one request may exclude (a page of products already shown)


@dataclass(frozen=True)
class ItemFilter:
    categories: frozenset[str] = frozenset()
    price_min: float | None = None
    price_max: float | None = None
    in_stock_only: bool = False
    exclude: frozenset[int] = frozenset()
    paged: frozenset[int] = frozenset()  # served by the earlier pages (``after``): never again, not reported

    @property
    def active(self) -> bool:
        return self.requested or bool(self.paged)

    @property
    def requested(self) -> bool:
        """True when the request set a filter (paging alone is not one: ``applied`` would be empty)."""
        return bool(self.categories or self.price_min is not None or self.price_max is not None
                    or self.in_stock_only or self.exclude)

    @property
    def needs_attributes(self) -> bool:
        """True when the filter reads the product's attributes (so an unknown product never passes it)."""
        return bool(self.categories or self.price_min is not None or self.price_max is not None or self.in_stock_only)

    def accepts_info(self, product_id: int, info: ProductInfo | None) -> bool:
        if product_id in self.exclude or product_id in self.paged:
            return False
        if info is None:
            return not self.needs_attributes
        if self.categories and info.category not in self.categories:
            return False
        if self.price_min is not None and info.price < self.price_min:
            return False
        if self.price_max is not None and info.price > self.price_max:
            return False
        return info.in_stock or not self.in_stock_only

    def accepts(self, catalog: CatalogSnapshot, product_id: int) -> bool:
        return self.accepts_info(product_id, catalog.get(product_id))

    def category_ok(self, category: str) -> bool:
        return not self.categories or category in self.categories

    def applied(self) -> dict:
        """What the response reports: each filter the request set, as read (categories sorted)."""
        out: dict = {}
        if self.categories:
            out["category"] = sorted(self.categories)
        if self.price_min is not None:
            out["price_min"] = self.price_min
        if self.price_max is not None:
            out["price_max"] = self.price_max
        if self.in_stock_only:
            out["in_stock_only"] = True
        if self.exclude:
            out["exclude"] = sorted(self.exclude)
        return out


NO_FILTER = ItemFilter()


def _split(values: Iterable[str] | None) -> list[str]:
    """Repeated parameters and comma lists alike: ``category=A&category=B,C`` -> ``[A, B, C]``."""
    return [part.strip() for value in values or () for part in value.split(",")]


def parse_filter(*, category: Sequence[str] | None = None, price_min: float | None = None,
                 price_max: float | None = None, in_stock_only: bool = False, exclude: Sequence[str] | None = None,
                 known_categories: Iterable[str] = ()) -> ItemFilter:
    """The request's filter; ``InvalidInputError`` (422) naming the parameter for a value out of bounds.
    ``known_categories``: a category outside them is a 404, as ``/recommendations/trending`` has always answered
    it (it could only empty the list)."""
    categories = list(dict.fromkeys(_split(category)))
    if any(not c for c in categories):
        raise InvalidInputError("category: an empty category name (two commas, or a trailing one)", field="category")
    if len(categories) > MAX_FILTER_CATEGORIES:
        raise InvalidInputError(f"category: at most {MAX_FILTER_CATEGORIES} categories, got {len(categories)}",
                                field="category")
    too_long = next((c for c in categories if len(c) > MAX_CATEGORY_LENGTH), None)
    if too_long is not None:
        raise InvalidInputError(f"category: a name is at most {MAX_CATEGORY_LENGTH} characters", field="category")
    known = set(known_categories)
    unknown = [c for c in categories if c not in known]
    if unknown:
        listed = ", ".join(sorted(known)[:20])
        raise NotFoundError(f"unknown category {unknown[0]!r}; known categories: {listed}", field="category")
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidInputError(f"price_min ({price_min}) is greater than price_max ({price_max})", field="price_min")
    ids: list[int] = []
    for part in _split(exclude):
        if not (part.isascii() and part.isdigit()) or not 0 < int(part) <= MAX_DB_INT:
            raise InvalidInputError(f"exclude: product ids are integers in 1..2^63-1, not {part!r}", field="exclude")
        ids.append(int(part))
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_EXCLUDE:
        raise InvalidInputError(f"exclude: at most {MAX_EXCLUDE} product ids, got {len(ids)}", field="exclude")
    return ItemFilter(frozenset(categories), price_min, price_max, bool(in_stock_only), frozenset(ids))
