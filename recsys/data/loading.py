"""Write a ``Shop`` into the database, idempotently.

Users and products are upserted by primary key (a re-load refreshes their
attributes); events are inserted with ``ON CONFLICT (client_event_id) DO
NOTHING``, so loading the same shop or log twice adds nothing the second time.
Events without a ``client_event_id`` get one derived from their content
(``recsys.data.ids.derive_event_ids``). Bulk writes go through
``recsys.db.bulk.upsert_rows`` (COPY on PostgreSQL).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from recsys.data.ids import derive_event_ids
from recsys.data.synthetic import PRODUCT_COLUMNS, SHOP_EVENT_COLUMNS, USER_COLUMNS, Shop
from recsys.db.bulk import upsert_rows


def _columns(df: pd.DataFrame, columns: tuple[str, ...], what: str, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns and c not in optional]
    if missing:
        raise ValueError(f"shop.{what} lacks column(s) {missing}; expected {list(columns)}")
    return df[[c for c in columns if c in df.columns]]


def _sqlite_datetimes(df: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as the text SQLAlchemy's SQLite ``DateTime`` stores (UTC wall time):
    ``upsert_rows`` binds raw values, and sqlite3 cannot bind pandas Timestamps."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            stamps = out[col] if out[col].dt.tz is None else out[col].dt.tz_convert("UTC")
            out[col] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    return out


def _unique_by(df: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    if df[key].isna().any():
        raise ValueError(f"shop.{what} has rows without {key}")
    return df.drop_duplicates(subset=[key], keep="last")


def _events_with_ids(events: pd.DataFrame) -> pd.DataFrame:
    events = _columns(events, SHOP_EVENT_COLUMNS, "events", optional=("client_event_id",)).copy()
    if "client_event_id" not in events.columns:
        events["client_event_id"] = derive_event_ids(events, "shop")
    elif events["client_event_id"].isna().any():
        missing = events["client_event_id"].isna()
        events.loc[missing, "client_event_id"] = derive_event_ids(events.loc[missing], "shop")
    return events


def load_shop(engine: Engine, shop: Shop) -> dict:
    """Upsert ``shop`` into ``users``, ``products`` and ``user_events``.

    Returns the rows written per table: ``{"users", "products", "events"}``
    (``events`` counts only new events) plus ``events_skipped`` (already loaded).
    """
    users = _unique_by(_columns(shop.users, USER_COLUMNS, "users"), "user_id", "users")
    products = _unique_by(_columns(shop.products, PRODUCT_COLUMNS, "products"), "product_id", "products")
    events = _events_with_ids(shop.events)
    if engine.dialect.name == "sqlite":
        users, products = _sqlite_datetimes(users), _sqlite_datetimes(products)
    written_users = upsert_rows(
        engine, "users", users, conflict_cols=["user_id"], update_cols=list(USER_COLUMNS[1:])
    )
    written_products = upsert_rows(
        engine, "products", products, conflict_cols=["product_id"], update_cols=list(PRODUCT_COLUMNS[1:])
    )
    written_events = upsert_rows(engine, "user_events", events, conflict_cols=["client_event_id"])
    return {
        "users": written_users,
        "products": written_products,
        "events": written_events,
        "events_skipped": len(events) - written_events,
    }
