"""Merchandising rules through the real API on PostgreSQL and Redis (issue 24): each rule type created through
the admin endpoints changes /recommendations (a cached answer too), expire ends it, the preview shows a list with
and without the rules, bad rules are 4xx, and a rule created through one API process changes a second process's
answers within a minute."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from api_helpers import open_client, pid, tier_work, write_lists, write_user_recs
from asgi_client import KEY_HEADERS
from recsys.api.app import create_app
from recsys.api.schemas import RecommendationsResponse
from recsys.ranking.merch_rules import REASON_FEATURED
from serve_helpers import start_serve, stop, wait_healthy
from test_api_serve_command import free_port

pytestmark = pytest.mark.anyio
TOKEN = "merch-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
HOME = [pid("Home", j) for j in (1, 2, 3)]
BOOKS = [pid("Books", j) for j in (1, 2, 3)]
USER = 7


@pytest.fixture
async def api(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    write_user_recs(redis_client, USER, HOME + BOOKS, n_events=60, model_version="model-a")
    app = create_app(api_settings.model_copy(update={"admin_token": TOKEN}), refresh_in_background=False)
    client, close = await open_client(app)
    client.app = app
    yield client
    await close()


async def items(api, n: int = 6, user: int = USER) -> list[tuple[int, str]]:
    r = await api.get("/recommendations", params={"user_id": user, "num_items": n})
    assert r.status_code == 200, r.text
    return [(i.product_id, i.reason) for i in RecommendationsResponse.model_validate(r.json()).items]


async def create(api, **rule) -> dict:
    r = await api.post("/admin/rules", json={"name": f"test {rule['action']}", **rule}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def cached(api) -> list[tuple[int, str]]:
    """The user's answer, once it is the cached one (seeded, worked out and written back first)."""
    for _ in range(4):
        with tier_work(api.app) as calls:
            got = await items(api)
        if not calls:
            return got
    raise AssertionError("the answer was never cached")


async def test_block_applies_to_a_cached_answer_and_expire_ends_it(api):
    before = await cached(api)
    assert {p for p, _ in before} == set(HOME + BOOKS)
    rule = await create(api, action="block", categories=["Books"])
    assert rule["live"] and rule["revision"] == 1 and rule["created_by"].startswith("admin@")
    with tier_work(api.app) as calls:
        after = await items(api)
    assert len(calls) == 1 and not {p for p, _ in after} & set(BOOKS)  # the cached answer no longer holds
    assert [p for p, _ in after[:3]] == [p for p, _ in before if p in HOME]
    r = await api.post(f"/admin/rules/{rule['rule_id']}/expire", headers=ADMIN)
    assert r.status_code == 200 and r.json()["expired_at"] and not r.json()["live"] and r.json()["revision"] == 2
    assert {p for p, _ in await items(api)} == set(HOME + BOOKS)
    listed = (await api.get("/admin/rules", headers=ADMIN)).json()
    assert [x["rule_id"] for x in listed["rules"]] == [rule["rule_id"]] and listed["version"]


async def test_boost_and_bury_move_products_before_diversity(api):
    plain = [p for p, _ in await items(api)]
    assert plain[-1] != BOOKS[2] or plain[0] != BOOKS[2]
    boost = await create(api, action="boost", products=[BOOKS[2]], weight=2.0)
    assert [p for p, _ in await items(api)][0] == BOOKS[2]
    await api.post(f"/admin/rules/{boost['rule_id']}/expire", headers=ADMIN)
    await create(api, action="bury", price_max=10.0, weight=2.0)  # the 1st of each category: 10.0
    got = [p for p, _ in await items(api)]
    assert set(got[-2:]) == {HOME[0], BOOKS[0]} and set(got) == set(plain)


async def test_pin_and_promote_place_featured_products(api):
    tv = pid("Electronics", 1)
    await create(api, action="pin", products=[tv], slot=2)
    got = await items(api)
    assert got[1] == (tv, REASON_FEATURED) and len(got) == 6
    rule = await create(api, action="promote", categories=["Fashion"], share=0.3)
    got = await items(api, n=10)
    featured = [i for i, (p, reason) in enumerate(got) if reason == REASON_FEATURED]
    fashion = [i for i, (p, _) in enumerate(got) if p // 100 == 2]
    assert len(fashion) == 3 and set(fashion) <= set(featured)  # 3 of 10 slots (0.3, rounded up)
    assert got[1] == (tv, REASON_FEATURED)  # the pin keeps its slot
    assert len({p for p, _ in got}) == 10
    r = await api.patch(f"/admin/rules/{rule['rule_id']}", json={"share": 0.5}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.json()["share"] == 0.5
    assert sum(p // 100 == 2 for p, _ in await items(api, n=10)) == 5


async def test_a_time_window_and_the_preview(api):
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    later = await create(api, action="block", categories=["Home"], starts_at=future.isoformat())
    assert not later["live"] and {p for p, _ in await items(api)} == set(HOME + BOOKS)
    await create(api, action="block", products=[HOME[0]])
    r = await api.get("/admin/rules/preview", params={"user_id": USER, "num_items": 6}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert HOME[0] in {i["product_id"] for i in body["without_rules"]}
    assert HOME[0] not in {i["product_id"] for i in body["with_rules"]}
    assert [x["action"] for x in body["live_rules"]] == ["block"]
    assert (await api.get("/admin/rules/preview", params={"user_id": USER})).status_code == 401


async def test_bad_rules_are_a_4xx(api):
    bad = [{"action": "boost", "products": [101]},  # no weight
           {"action": "pin", "products": [101]},  # no slot
           {"action": "promote", "categories": ["Shoes"]},  # no share
           {"action": "block"},  # matches nothing
           {"action": "explode", "products": [101]},
           {"action": "block", "price_min": 50, "price_max": 10},
           {"action": "block", "products": [0]},
           {"action": "promote", "categories": ["Shoes"], "share": 1.5},
           {"action": "block", "products": [101], "starts_at": "2026-12-10T00:00:00Z", "ends_at": "2026-12-09T00:00:00Z"},
           {"action": "block", "products": [101], "starts_at": "2026-12-10T00:00:00" + "0" * 60 + "Z"},
           {"action": "block", "products": [101], "starts_at": "2026-12-10T00:00:00"},  # no time zone
           {"action": "block", "products": [101], "colour": "red"}]
    for rule in bad:
        r = await api.post("/admin/rules", json={"name": "bad", **rule}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["detail"], rule
    assert (await api.post("/admin/rules", json={"name": "x", "action": "block", "products": [101]})).status_code == 401
    r = await api.post("/admin/rules", json={"name": "x", "action": "block", "products": [101]},
                       headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    assert (await api.post("/admin/rules/999/expire", headers=ADMIN)).status_code == 404
    rule = await create(api, action="boost", products=[101], weight=1.0)
    r = await api.patch(f"/admin/rules/{rule['rule_id']}", json={"weight": 0}, headers=ADMIN)
    assert r.status_code == 422 and "weight" in r.json()["detail"]


def test_a_rule_created_through_one_process_changes_a_second_process_within_a_minute(
        catalog_engine, redis_client, pg_url, tmp_path):
    write_lists(redis_client)
    write_user_recs(redis_client, USER, HOME + BOOKS, n_events=60, model_version="model-a")
    env = {"RECSYS_ADMIN_TOKEN": TOKEN, "RECSYS_MERCH_RULES_POLL_SECONDS": "5"}
    ports = [free_port(), free_port()]
    for i in range(2):
        (tmp_path / f"p{i}").mkdir()
    procs = [start_serve(pg_url, tmp_path / f"p{i}", port, workers=1, **env) for i, port in enumerate(ports)]
    try:
        first, second = (f"http://127.0.0.1:{port}" for port in ports)
        for proc, url in zip(procs, (first, second)):
            wait_healthy(url, proc)

        def products(url: str) -> set[int]:
            r = httpx.get(url + "/recommendations", params={"user_id": USER, "num_items": 6}, headers=KEY_HEADERS)
            assert r.status_code == 200, r.text
            return {i["product_id"] for i in r.json()["items"]}

        assert products(second) == set(HOME + BOOKS)
        r = httpx.post(first + "/admin/rules", json={"name": "no books", "action": "block", "categories": ["Books"]},
                       headers=ADMIN)
        assert r.status_code == 201, r.text
        assert not products(first) & set(BOOKS)  # the node that took the change: at once
        created = time.monotonic()
        while products(second) & set(BOOKS):
            assert time.monotonic() - created < 60, "the second process still serves the blocked products"
            time.sleep(0.5)
        assert time.monotonic() - created < 60
    finally:
        for proc in procs:
            stop(proc)
