"""The merchandising lists through the real API on PostgreSQL and Redis (issue 24): frequently bought together
for a basket (from the nightly lists task's co-purchases), buy it again (from the nightly repurchase intervals, and
as the first items of /recommendations when the shop enables it) and recently viewed (session, then event log)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from api_helpers import (
    RoundTrips, get_recs, insert_events, now_ms, open_client, pid, tier_work, write_lists,
    write_user_recs,
)
from recsys.api.app import create_app
from recsys.api.schemas import BasketResponse, BuyAgainResponse, RecentResponse
from recsys.artifacts import LocalArtifactStore
from recsys.constants import MS_PER_DAY
from recsys.db.models import UserEvent
from recsys.flows import nightly
from recsys.keys import purchases_key
from recsys.settings import Settings

pytestmark = pytest.mark.anyio
TODAY = dt.datetime.now(dt.timezone.utc).date()
SHOES = [pid("Shoes", j) for j in range(1, 11)]  # 105 is out of stock


def insert_orders(engine, orders) -> None:
    """``(user_id, session_id, [product_id, ...], ms)``: one PURCHASE per product, a second apart."""
    rows = [{"user_id": user, "product_id": p, "event_type": "PURCHASE", "session_id": session,
             "timestamp": at + i * 1000, "price": 10.0} for user, session, products, at in orders
            for i, p in enumerate(products)]
    with engine.begin() as conn:
        conn.execute(insert(UserEvent), rows)


def run_lists(engine, redis_client, tmp_path) -> dict:
    """The nightly lists task for today, then the documented fallback lists again (the tests' known ones)."""
    out = nightly.lists(engine, LocalArtifactStore(tmp_path / "store"), redis_client, TODAY, {})
    write_lists(redis_client)
    return out


async def app_client(settings: Settings):
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    client.app = app
    return client, close


# --- frequently bought together --------------------------------------------------------------
async def test_basket_from_the_nightly_co_purchases(catalog_engine, redis_client, api_settings, tmp_path):
    t = now_ms() - 2 * MS_PER_DAY
    shoe, fashion, tv, radio, boots = pid("Shoes", 1), pid("Fashion", 1), pid("Electronics", 1), \
        pid("Electronics", 2), pid("Shoes", 5)
    insert_orders(catalog_engine, [(1, "o1", [shoe, fashion, tv], t), (2, "o2", [shoe, fashion], t),
                                   (3, "o3", [shoe, radio], t), (4, "o4", [shoe, radio], t),
                                   (5, "o5", [shoe, boots], t), (6, "o6", [shoe, boots], t)])
    assert run_lists(catalog_engine, redis_client, tmp_path)["bought_together"] == 4  # shoe, fashion, radio, boots
    api, close = await app_client(api_settings)
    try:
        r = await api.get("/recommendations/basket", params={"product_ids": str(shoe), "num_items": 6})
        assert r.status_code == 200, r.text
        body = BasketResponse.model_validate(r.json())
        assert body.request_id == r.headers["x-request-id"] and body.product_ids == [shoe]
        assert body.source == "bought_together" and body.unknown_product_ids == []
        # 2 orders together each (the TV only once: noise); the boots are out of stock; then Shoes' bestsellers
        assert [(i.product_id, i.reason) for i in body.items] == [
            (fashion, "Frequently bought together"), (radio, "Frequently bought together"),
            *((pid("Shoes", j), "Popular in Shoes") for j in (2, 3, 4, 6))]
        assert body.items[0].score == pytest.approx(2 / (6 * 2) ** 0.5, abs=1e-6)

        r = await api.get("/recommendations/basket", params={"product_ids": f"{shoe},{fashion},{shoe}"})
        body = BasketResponse.model_validate(r.json())
        assert body.product_ids == [shoe, fashion]
        assert body.items[0].product_id == radio and not {shoe, fashion} & {i.product_id for i in body.items}
        assert {i.reason for i in body.items[1:]} <= {"Popular in Shoes", "Popular in Fashion"}
        assert len(body.items) == 10
    finally:
        await close()


async def test_basket_without_co_purchase_data_falls_back_and_bad_input_is_a_4xx(api, redis_client):
    book = pid("Books", 1)
    r = await api.get("/recommendations/basket", params={"product_ids": f"{book},999999", "num_items": 5})
    assert r.status_code == 200, r.text
    body = BasketResponse.model_validate(r.json())
    assert body.source == "category" and body.unknown_product_ids == [999999]
    assert [(i.product_id, i.reason) for i in body.items] == [
        (pid("Books", j), "Popular in Books") for j in (2, 3, 4, 6, 7)]  # 5 is out of stock
    r = await api.get("/recommendations/basket", params={"product_ids": "999999,888888"})
    assert r.status_code == 404 and "999999" in r.json()["detail"] and r.json()["field"] == "product_ids"
    for bad in ("0", "abc", "1,,2", " 101", "9223372036854775808", ",".join(str(i) for i in range(1, 52))):
        r = await api.get("/recommendations/basket", params={"product_ids": bad})
        assert r.status_code == 422, bad
        assert r.json()["field"] == "product_ids" and r.json()["detail"], bad
    r = await api.get("/recommendations/basket")
    assert r.status_code == 422 and r.json()["field"] == "product_ids"
    r = await api.get("/recommendations/basket", params={"product_ids": book, "num_items": 0})
    assert r.status_code == 422 and r.json()["field"] == "num_items"


# --- buy it again ------------------------------------------------------------------------------
def repurchase_history(engine) -> None:
    """Shoes are bought again after 30 days (two customers), Electronics never: a durable category.
    User 20 bought shoe 3 30 days ago (due), shoe 4 three days ago (not due yet), shoe 6 and returned it, the
    out-of-stock shoe 5, and a TV 30 days ago."""
    now = now_ms()
    insert_orders(engine, [(11, "a1", [pid("Shoes", 1)], now - 70 * MS_PER_DAY),
                           (11, "a2", [pid("Shoes", 1)], now - 40 * MS_PER_DAY),
                           (12, "b1", [pid("Shoes", 2), pid("Electronics", 2)], now - 65 * MS_PER_DAY),
                           (12, "b2", [pid("Shoes", 2)], now - 35 * MS_PER_DAY),
                           (20, "c1", [pid("Shoes", 3), pid("Electronics", 1), pid("Shoes", 5)],
                            now - 30 * MS_PER_DAY),
                           (20, "c2", [pid("Shoes", 6)], now - 20 * MS_PER_DAY),
                           (20, "c3", [pid("Shoes", 4)], now - 3 * MS_PER_DAY)])
    insert_events(engine, 20, [pid("Shoes", 6)], "RETURN", start_ms=now - 19 * MS_PER_DAY)


async def test_buy_again_ranks_purchases_by_their_categorys_interval(catalog_engine, redis_client, api_settings,
                                                                     tmp_path):
    repurchase_history(catalog_engine)
    out = run_lists(catalog_engine, redis_client, tmp_path)
    assert "Shoes" in out["repeat_categories"] and "Electronics" not in out["repeat_categories"]
    api, close = await app_client(api_settings)
    try:
        r = await api.get("/recommendations/buy-again", params={"user_id": 20})
        assert r.status_code == 200, r.text
        body = BuyAgainResponse.model_validate(r.json())
        assert body.user_id == 20 and body.request_id == r.headers["x-request-id"]
        assert [(i.product_id, i.reason) for i in body.items] == [(pid("Shoes", 3), "Buy it again"),
                                                                   (pid("Shoes", 4), "Buy it again")]
        rate = 2 / 6  # Shoes: 6 (customer, shoe) pairs, 2 bought again; the interval 30 days
        assert body.items[0].score == pytest.approx(rate, abs=0.01)
        assert body.items[1].score == pytest.approx(rate * 3 / 30, abs=0.01)
        assert redis_client.get(purchases_key(20)) is not None  # kept for the next requests
        r = await api.get("/recommendations/buy-again", params={"user_id": 424242})
        assert r.status_code == 200 and r.json()["items"] == []
        for bad in ({"user_id": 0}, {"user_id": "x"}, {}, {"user_id": 20, "num_items": 101}):
            r = await api.get("/recommendations/buy-again", params=bad)
            assert r.status_code == 422 and r.json()["detail"], bad
    finally:
        await close()


async def test_buy_again_slots_lead_recommendations_and_a_purchase_takes_the_item_out(
        catalog_engine, redis_client, api_settings, tmp_path):
    repurchase_history(catalog_engine)
    run_lists(catalog_engine, redis_client, tmp_path)
    plain, close = await app_client(api_settings)
    try:  # the default: off, and a purchased product is never recommended
        assert pid("Shoes", 3) not in {i.product_id for i in (await get_recs(plain, 20)).items}
    finally:
        await close()
    api, close = await app_client(api_settings.model_copy(update={"buy_again_slots": 2}))
    try:
        body = await get_recs(api, 20)
        assert (body.items[0].product_id, body.items[0].reason) == (pid("Shoes", 3), "Buy it again")
        assert [i.reason for i in body.items].count("Buy it again") == 1  # shoe 4 is not due yet
        assert len(body.items) == 10 and body.source in ("category", "trending")
        r = await api.post("/events/purchase", json={"user_id": 20, "product_id": pid("Shoes", 3), "price": 30.0,
                                                      "timestamp": now_ms()})
        assert r.status_code == 200, r.text
        assert redis_client.get(purchases_key(20)) is None  # the purchase deleted the kept purchases
        body = await get_recs(api, 20)
        assert "Buy it again" not in {i.reason for i in body.items}  # bought just now: not due again
    finally:
        await close()


async def test_buy_again_leads_a_cached_answer_too(catalog_engine, redis_client, api_settings, tmp_path):
    repurchase_history(catalog_engine)
    run_lists(catalog_engine, redis_client, tmp_path)
    listed = [pid("Home", j) for j in (1, 2, 3)] + [pid("Books", j) for j in (1, 2, 3)]
    write_user_recs(redis_client, 20, listed, n_events=60, model_version="model-a")
    api, close = await app_client(api_settings.model_copy(update={"buy_again_slots": 1}))
    try:
        answers = []
        for _ in range(4):  # seeds the session; works the answer out and writes it back; then the cached answer
            with tier_work(api.app) as calls:
                answers.append((await get_recs(api, 20, n=5), len(calls)))
            if not calls:
                break
        (cached, worked), (before, _) = answers[-1], answers[-2]
        assert worked == 0 and len(answers) >= 3  # the last one was the cached answer, sent without the tiers
        for body, _ in answers:
            assert body.source == "personalized" and body.model_version == "model-a"
            assert (body.items[0].product_id, body.items[0].reason) == (pid("Shoes", 3), "Buy it again")
        assert [i.model_dump() for i in cached.items] == [i.model_dump() for i in before.items]
        assert {i.product_id for i in cached.items[1:]} <= set(listed) and len(cached.items) == 5
        third = cached
        r = await api.get("/recommendations", params={"user_id": 20, "num_items": 5, "reasons": "false"})
        assert r.json()["items"][0] == {"product_id": pid("Shoes", 3), "score": third.items[0].score}
    finally:
        await close()


# --- recently viewed -----------------------------------------------------------------------------
async def test_recent_from_the_session_then_the_event_log(api, catalog_engine, monkeypatch):
    books = [pid("Books", j) for j in (1, 2, 3)]
    insert_events(catalog_engine, 40, books, "VIEW", start_ms=now_ms() - 2 * MS_PER_DAY)  # 3 is the newest
    insert_events(catalog_engine, 40, [pid("Home", 1)], "PURCHASE", start_ms=now_ms() - MS_PER_DAY)
    for j in (1, 2):
        r = await api.post("/events/click", json={"user_id": 40, "product_id": pid("Shoes", j), "timestamp": now_ms(),
                                                  "session_id": "s-40"})
        assert r.status_code == 200, r.text
    r = await api.get("/recommendations/recent", params={"user_id": 40})
    assert r.status_code == 200, r.text
    body = RecentResponse.model_validate(r.json())
    assert body.user_id == 40 and body.sources == ["session", "events"]
    assert [i.product_id for i in body.items] == [pid("Shoes", 2), pid("Shoes", 1), *reversed(books)]
    assert {i.reason for i in body.items} == {"Recently viewed"}
    assert [i.score for i in body.items] == sorted((i.score for i in body.items), reverse=True)

    trips = RoundTrips(monkeypatch, api.app.state.serving.db.engine)
    r = await api.get("/recommendations/recent", params={"user_id": 40, "num_items": 2})
    assert [i["product_id"] for i in r.json()["items"]] == [pid("Shoes", 2), pid("Shoes", 1)]
    assert r.json()["sources"] == ["session"] and trips.sql == 0  # the session had enough: no query

    r = await api.get("/recommendations/recent", params={"user_id": 41})
    assert r.json()["items"] == [] and r.json()["sources"] == []
    insert_events(catalog_engine, 41, books[:2], "CLICK")
    r = await api.get("/recommendations/recent", params={"user_id": 41})
    assert [i["product_id"] for i in r.json()["items"]] == [books[1], books[0]] and r.json()["sources"] == ["events"]
    for bad in ({"user_id": 0}, {"user_id": 2**63}, {"user_id": 40, "num_items": 0}):
        r = await api.get("/recommendations/recent", params=bad)
        assert r.status_code == 422 and r.json()["detail"], bad


async def test_the_lists_are_in_the_openapi_contract(api):
    spec = (await api.get("/openapi.json")).json()
    for path, model in (("/recommendations/basket", "BasketResponse"), ("/recommendations/buy-again",
                                                                       "BuyAgainResponse"),
                        ("/recommendations/recent", "RecentResponse")):
        get = spec["paths"][path]["get"]
        assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert {"401", "422", "429"} <= set(get["responses"])
    basket = {p["name"]: p for p in spec["paths"]["/recommendations/basket"]["get"]["parameters"]}
    assert basket["product_ids"]["required"] and basket["product_ids"]["schema"]["pattern"]
    assert "404" in spec["paths"]["/recommendations/basket"]["get"]["responses"]


# --- Redis or the database down ------------------------------------------------------------------
async def test_the_lists_answer_with_redis_or_the_database_down(catalog_engine, redis_client, api_settings, tmp_path):
    from test_api_faults import degraded, kill_database, kill_redis

    repurchase_history(catalog_engine)
    insert_events(catalog_engine, 20, [pid("Books", 1)], "VIEW")
    run_lists(catalog_engine, redis_client, tmp_path)
    api, close = await app_client(api_settings.model_copy(update={"buy_again_slots": 1}))
    try:
        r = await api.post("/events/click", json={"user_id": 20, "product_id": pid("Home", 2), "timestamp": now_ms()})
        assert r.status_code == 200
        kill_database(api.app)  # the session and the kept lists answer
        r = await api.get("/recommendations/recent", params={"user_id": 20})
        assert r.status_code == 200 and r.json()["sources"] == ["session"]
        assert [i["product_id"] for i in r.json()["items"]] == [pid("Home", 2)]
        r = await api.get("/recommendations/buy-again", params={"user_id": 20})
        assert r.status_code == 200 and r.json()["items"] == []  # the purchases are in the database only
        assert (await api.get("/recommendations", params={"user_id": 20})).status_code == 200
        assert degraded((await api.get("/metrics")).text, "database") >= 2
    finally:
        await close()
    api, close = await app_client(api_settings.model_copy(update={"buy_again_slots": 1}))
    try:
        kill_redis(api.app)  # the in-process lists and the database answer
        r = await api.get("/recommendations/basket", params={"product_ids": pid("Shoes", 1), "num_items": 3})
        assert r.status_code == 200 and r.json()["source"] == "category"
        assert [i["reason"] for i in r.json()["items"]] == ["Popular in Shoes"] * 3
        r = await api.get("/recommendations/recent", params={"user_id": 20})
        assert r.json()["sources"] == ["events"]
        assert [i["product_id"] for i in r.json()["items"]] == [pid("Home", 2), pid("Books", 1)]
        r = await api.get("/recommendations/buy-again", params={"user_id": 20})
        assert [i["product_id"] for i in r.json()["items"]] == [pid("Shoes", 3), pid("Shoes", 4)]
        r = await api.get("/recommendations", params={"user_id": 20})
        assert r.status_code == 200 and r.json()["items"][0]["reason"] == "Buy it again"
        assert degraded((await api.get("/metrics")).text, "redis") >= 3
    finally:
        await close()
