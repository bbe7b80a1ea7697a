"""load_shop on PostgreSQL and SQLite: counts, idempotence, derived event ids, round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from recsys.data.loaders import read_event_log
from recsys.data.loading import load_shop
from recsys.data.synthetic import Shop, generate_shop
from recsys.db.models import Product, User, UserEvent

END = dt.date(2026, 11, 20)
REES46 = Path(__file__).resolve().parents[3] / "shared" / "data" / "rees46-sample" / "2019-Oct-sample.csv"
if not REES46.is_file():
    REES46 = Path("/work/shared/data/rees46-sample/2019-Oct-sample.csv")


@pytest.fixture(scope="module")
def tiny_shop():
    return generate_shop(n_users=200, n_products=60, days=7, seed=5, end_date=END)


def _table_counts(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in
                ("users", "products", "user_events")}


def _load_twice(engine, shop):
    first = load_shop(engine, shop)
    counts = _table_counts(engine)
    second = load_shop(engine, shop)
    assert _table_counts(engine) == counts
    return first, second, counts


def test_load_twice_on_postgres(engine, small_shop):
    first, second, counts = _load_twice(engine, small_shop)
    n_events = len(small_shop.events)
    assert counts == {"users": len(small_shop.users), "products": len(small_shop.products), "user_events": n_events}
    assert first == {"users": len(small_shop.users), "products": len(small_shop.products), "events": n_events,
                     "events_skipped": 0}
    assert second["events"] == 0 and second["events_skipped"] == n_events


def test_load_twice_on_sqlite(sqlite_engine, tiny_shop):
    first, second, counts = _load_twice(sqlite_engine, tiny_shop)
    assert counts["user_events"] == len(tiny_shop.events) == first["events"]
    assert second["events"] == 0


@pytest.mark.parametrize("which", ["engine", "sqlite_engine"])
def test_values_round_trip(request, which, tiny_shop):
    engine = request.getfixturevalue(which)
    load_shop(engine, tiny_shop)
    user = tiny_shop.users.iloc[3]
    product = tiny_shop.products.iloc[5]
    with Session(engine) as session:
        db_user = session.get(User, int(user["user_id"]))
        db_product = session.get(Product, int(product["product_id"]))
        first_seen = db_user.first_seen_at.replace(tzinfo=dt.timezone.utc)  # SQLite hands back naive UTC
        assert first_seen == user["first_seen_at"].to_pydatetime()
        assert (db_user.country, db_user.device_type) == (user["country"], user["device_type"])
        assert (db_product.name, db_product.price, db_product.in_stock) == (
            product["name"], product["price"], bool(product["in_stock"]))
        stored = session.execute(select(UserEvent).where(UserEvent.client_event_id == "syn-5-0")).scalar_one()
        ev = tiny_shop.events.iloc[0]
        assert (stored.user_id, stored.product_id, stored.event_type, stored.timestamp) == (
            ev["user_id"], ev["product_id"], ev["event_type"], ev["timestamp"])


def test_reload_updates_attributes_but_never_duplicates_events(engine, tiny_shop):
    load_shop(engine, tiny_shop)
    changed = Shop(users=tiny_shop.users, products=tiny_shop.products.assign(price=1.25), events=tiny_shop.events)
    load_shop(engine, changed)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(Product.price != 1.25)).scalar() == 0
    assert _table_counts(engine)["user_events"] == len(tiny_shop.events)


def test_events_without_client_event_id_get_deterministic_ones(engine, tiny_shop):
    events = tiny_shop.events.drop(columns=["client_event_id"])
    partly = tiny_shop.events.copy()
    partly.loc[partly.index[:20], "client_event_id"] = None
    shop = Shop(users=tiny_shop.users, products=tiny_shop.products, events=events)
    first, second, counts = _load_twice(engine, shop)
    assert first["events"] == len(events) and second["events"] == 0
    with engine.connect() as conn:
        ids = conn.execute(select(UserEvent.client_event_id)).scalars().all()
    assert all(i.startswith("shop-") for i in ids) and len(set(ids)) == len(events)
    load_shop(engine, Shop(users=tiny_shop.users, products=tiny_shop.products, events=partly))
    # the 20 rows without an id hash to the ids already stored; the others are new syn-* ids
    assert _table_counts(engine)["user_events"] == 2 * len(events) - 20


def test_real_log_loads_idempotently(engine):
    if not REES46.is_file():
        pytest.skip("shared/data not present")
    shop = read_event_log(REES46, "rees46")
    first, second, counts = _load_twice(engine, shop)
    assert counts == {"users": 330, "products": len(shop.products), "user_events": 1000}
    assert second["events"] == 0


def test_missing_columns_are_reported(sqlite_engine, tiny_shop):
    bad = Shop(users=tiny_shop.users.drop(columns=["country"]), products=tiny_shop.products,
               events=tiny_shop.events)
    with pytest.raises(ValueError, match=r"shop.users lacks column\(s\) \['country'\]"):
        load_shop(sqlite_engine, bad)
    no_ids = Shop(users=tiny_shop.users.assign(user_id=pd.NA), products=tiny_shop.products, events=tiny_shop.events)
    with pytest.raises(ValueError, match="shop.users has rows without user_id"):
        load_shop(sqlite_engine, no_ids)
