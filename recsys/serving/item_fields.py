"""Optional product fields on list items (``fields=name,price,category``, issue 24): a front end gets what it
shows with the list, without a second call. Read from the in-memory catalog; a product it does not know gets
``null`` for each field asked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.errors import InvalidInputError

ITEM_FIELDS = ("name", "price", "category")


def parse_fields(values: Iterable[str] | None) -> tuple[str, ...]:
    """The fields asked for (repeated parameters or comma lists), in ``ITEM_FIELDS`` order; ``InvalidInputError``
    (422) for any other name."""
    asked = {part.strip() for value in values or () for part in value.split(",")}
    unknown = sorted(asked - set(ITEM_FIELDS))
    if unknown:
        raise InvalidInputError(f"fields: unknown field {unknown[0]!r}; the fields are {', '.join(ITEM_FIELDS)}",
                                field="fields")
    return tuple(f for f in ITEM_FIELDS if f in asked)


def with_fields(items: Sequence[dict], catalog: CatalogSnapshot, fields: Sequence[str]) -> list[dict]:
    """Each item with the product's ``fields`` added (``null`` for a product the catalog does not know)."""
    if not fields:
        return list(items)
    out = []
    for item in items:
        info = catalog.get(item["product_id"])
        out.append({**item, **{f: getattr(info, f) if info is not None else None for f in fields}})
    return out
