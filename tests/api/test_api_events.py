"""POST /events*: stored first, validated with the field named, idempotent retries."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from api_helpers import now_ms, pid
from recsys.constants import MS_PER_DAY as MS_PER_DAY_
from recsys.api.schemas import EventLogged
from recsys.db.models import Product, User, UserEvent
from recsys.keys import events_key, session_key

pytestmark = pytest.mark.anyio


def stored(engine, **where):
    with engine.connect() as conn:
        stmt = select(UserEvent)
        for col, value in where.items():
            stmt = stmt.where(getattr(UserEvent, col) == value)
        return conn.execute(stmt).all()


async def test_click_purchase_and_generic_events_are_stored(api, catalog_engine, redis_client):
    ts = now_ms()
    r = await api.post("/events/click", json={"user_id": 7, "product_id": pid("Shoes", 1), "timestamp": ts,
                                              "session_id": "s1"})
    assert r.status_code == 200
    body = EventLogged.model_validate(r.json())
    assert body.status == "logged" and not body.duplicate and body.request_id == r.headers["x-request-id"]
    r = await api.post("/events/purchase", json={"user_id": 7, "product_id": pid("Shoes", 2), "price": 49.5,
                                                 "timestamp": ts})
    assert r.json()["status"] == "logged"
    for event_type in ("VIEW", "WISHLIST", "ADD_TO_CART", "RETURN", "view"):
        r = await api.post("/events", json={"user_id": 7, "product_id": pid("Shoes", 3), "timestamp": ts,
                                            "event_type": event_type})
        assert r.status_code == 200, r.text
    rows = stored(catalog_engine, user_id=7)
    assert sorted(r.event_type for r in rows) == sorted(
        ["CLICK", "PURCHASE", "VIEW", "WISHLIST", "ADD_TO_CART", "RETURN", "VIEW"])
    click = next(r for r in rows if r.event_type == "CLICK")
    assert (click.product_id, click.timestamp, click.session_id) == (pid("Shoes", 1), ts, "s1")
    assert click.request_id == body.request_id
    assert next(r for r in rows if r.event_type == "PURCHASE").price == 49.5
    with catalog_engine.connect() as conn:  # the nightly validation needs the new user's row
        assert conn.execute(select(User.user_id).where(User.user_id == 7)).scalar() == 7
    assert int(redis_client.get(events_key(7))) == 7
    assert redis_client.hget(session_key(7), "sid") == b"s1"


async def test_a_retry_with_the_same_event_id_is_logged_once(api, catalog_engine, redis_client):
    event = {"user_id": 8, "product_id": pid("Books", 1), "timestamp": now_ms(), "event_id": "ev-8-1"}
    first = (await api.post("/events/click", json=event)).json()
    second = (await api.post("/events/click", json=event)).json()
    assert first["status"] == second["status"] == "logged"
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["event_id"] == second["event_id"]
    assert len(stored(catalog_engine, client_event_id="ev-8-1")) == 1
    assert int(redis_client.get(events_key(8))) == 1


async def test_the_same_event_id_for_another_event_is_a_conflict(api, catalog_engine):
    event = {"user_id": 9, "product_id": pid("Books", 1), "timestamp": now_ms(), "event_id": "ev-9"}
    assert (await api.post("/events/click", json=event)).status_code == 200
    r = await api.post("/events/click", json={**event, "product_id": pid("Books", 2)})
    assert r.status_code == 409 and r.json()["field"] == "event_id"
    assert len(stored(catalog_engine, user_id=9)) == 1


async def test_concurrent_retries_store_one_event(api, catalog_engine):
    import asyncio

    event = {"user_id": 10, "product_id": pid("Home", 1), "timestamp": now_ms(), "event_id": "ev-10"}
    replies = await asyncio.gather(*(api.post("/events/click", json=event) for _ in range(8)))
    assert all(r.status_code == 200 for r in replies)
    assert sum(not r.json()["duplicate"] for r in replies) == 1
    assert len(stored(catalog_engine, client_event_id="ev-10")) == 1


async def test_a_product_newer_than_the_catalog_snapshot_is_accepted(api, catalog_engine, redis_client):
    with catalog_engine.begin() as conn:
        conn.execute(insert(Product), [{"product_id": 9001, "name": "Fresh", "category": "Garden", "price": 3.0}])
    r = await api.post("/events/click", json={"user_id": 11, "product_id": 9001, "timestamp": now_ms()})
    assert r.status_code == 200
    assert redis_client.hget(session_key(11), "cats") == b"Garden"


BASE = {"user_id": 12, "product_id": 101, "timestamp": None}


@pytest.mark.parametrize("path, change, field", [
    ("/events/click", {"user_id": "12"}, "user_id"),
    ("/events/click", {"user_id": 0}, "user_id"),
    ("/events/click", {"user_id": -4}, "user_id"),
    ("/events/click", {"user_id": 1.5}, "user_id"),
    ("/events/click", {"product_id": None}, "product_id"),
    ("/events/click", {"product_id": 424242}, "product_id"),  # unknown product
    ("/events/click", {"timestamp": "now"}, "timestamp"),
    ("/events/click", {"timestamp": "future"}, "timestamp"),
    ("/events/click", {"timestamp": "old"}, "timestamp"),
    ("/events/click", {"event_id": "has spaces"}, "event_id"),
    ("/events/purchase", {"price": -1}, "price"),
    ("/events/purchase", {}, "price"),  # missing
    ("/events", {"event_type": "TELEPORT"}, "event_type"),
    ("/events", {"event_type": "PURCHASE"}, "price"),
    ("/events", {}, "event_type"),
])
async def test_invalid_events_are_422_naming_the_field(api, catalog_engine, path, change, field):
    event = {**BASE, "timestamp": now_ms(), **change}
    if change.get("timestamp") == "future":
        event["timestamp"] = now_ms() + 3_600_000
    elif change.get("timestamp") == "old":
        event["timestamp"] = now_ms() - 400 * MS_PER_DAY_
    r = await api.post(path, json=event)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == field and field in body["detail"]
    assert body["request_id"] == r.headers["x-request-id"]
    assert stored(catalog_engine, user_id=12) == []


async def test_a_body_that_is_not_json_is_422(api):
    r = await api.post("/events/click", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
