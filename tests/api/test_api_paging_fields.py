"""Paging without repeats (``after=<request_id>``) and optional product fields (``fields=name,price,category``)
through the real API on PostgreSQL and Redis (issue 24)."""

from __future__ import annotations

import pytest

from api_helpers import CATEGORIES, get_recs, pid, tier_work, write_user_recs
from recsys.api.schemas import RecommendationsResponse
from recsys.constants import REASON_LIKE_YOU
from recsys.keys import page_key

pytestmark = pytest.mark.anyio
LISTED = [pid(c, j) for j in (1, 2, 3, 4, 6, 7) for c in CATEGORIES]  # 30 in-stock products, 6 per category


async def page(api, user_id: int, n: int, after: str | None = None, **params) -> RecommendationsResponse:
    query = {"user_id": user_id, "num_items": n, **({"after": after} if after else {}), **params}
    r = await api.get("/recommendations", params=query)
    assert r.status_code == 200, r.text
    body = RecommendationsResponse.model_validate(r.json())
    assert body.request_id == r.headers["x-request-id"] and "filters" not in r.json()
    return body



@pytest.fixture
def api_settings(api_settings):
    """Paging on, as a shop turns it on (RECSYS_PAGE_TTL_SECONDS=1800; off by default)."""
    return api_settings.model_copy(update={"page_ttl_seconds": 1800})

async def test_pages_follow_the_same_ranking_and_never_repeat(api, redis_client):
    write_user_recs(redis_client, 9, LISTED, n_events=60, model_version="model-a")
    for _ in range(3):  # seeds the session, then writes the answer back
        await get_recs(api, 9, n=30)
    full = await get_recs(api, 9, n=30)  # the whole ranking, from the cached answer
    assert len(full.items) == 30
    ranking = [i.product_id for i in full.items]

    first = await page(api, 9, 8)
    assert [i.product_id for i in first.items] == ranking[:8]
    seen = [i.product_id for i in first.items]
    previous = first.request_id
    with tier_work(api.app) as calls:
        for k in (1, 2):
            nxt = await page(api, 9, 8, after=previous)
            assert [i.product_id for i in nxt.items] == ranking[8 * k:8 * (k + 1)], k
            assert nxt.source == "personalized" and nxt.request_id != previous
            seen += [i.product_id for i in nxt.items]
            previous = nxt.request_id
    assert not calls  # the cached answer's next items, not a re-rank
    last = await page(api, 9, 8, after=previous)  # 6 of the ranking left: the fallback tiers fill the page
    assert [i.product_id for i in last.items[:6]] == ranking[24:]
    assert len(last.items) == 8 and {i.reason for i in last.items[:6]} == {REASON_LIKE_YOU}
    seen += [i.product_id for i in last.items]
    assert len(seen) == len(set(seen)) == 32  # never a repeat across the four pages

    # an earlier page asked again gives the same next page; the request ids stay signed
    again = await page(api, 9, 8, after=first.request_id)
    assert [i.product_id for i in again.items] == ranking[8:16]
    assert api.app.state.request_ids.verify(again.request_id)
    await api.app.state.serving.redis.flush_buffer()  # the page record rides with the next pipeline
    assert 1700 < redis_client.ttl(page_key(again.request_id)) <= 1800


async def test_after_must_be_a_signed_id_that_served_this_user(api, redis_client):
    write_user_recs(redis_client, 9, LISTED, n_events=60)
    mine = await page(api, 9, 5)
    forged = "0" * 32
    for after, status, words in ((forged, 422, "not a request id"), ("xyz", 422, "after"),
                                 (api.app.state.request_ids.new(), 404, "no page")):
        r = await api.get("/recommendations", params={"user_id": 9, "after": after})
        assert r.status_code == status, (after, r.text)
        assert r.json()["field"] == "after" and words in r.json()["detail"]
    r = await api.get("/recommendations", params={"user_id": 10, "after": mine.request_id})  # another user's page
    assert r.status_code == 404 and r.json()["field"] == "after"
    r = await api.get("/recommendations", params={"user_id": 9, "after": mine.request_id, "category": "Books"})
    body = RecommendationsResponse.model_validate(r.json())
    assert body.filters.category == ["Books"] and not {i.product_id for i in mine.items} & {
        i.product_id for i in body.items}
    assert {i.product_id // 100 for i in body.items} == {4}


async def test_fields_add_the_products_name_price_and_category(api, redis_client):
    write_user_recs(redis_client, 9, LISTED, n_events=60)
    r = await api.get("/recommendations", params={"user_id": 9, "num_items": 3, "fields": "name,price,category"})
    assert r.status_code == 200, r.text
    for item in r.json()["items"]:
        j, c = item["product_id"] % 100, CATEGORIES[item["product_id"] // 100 - 1]
        assert (item["name"], item["price"], item["category"]) == (f"{c} item {j}", 10.0 * j, c)
    r = await api.get("/recommendations", params=[("user_id", 9), ("num_items", 3), ("fields", "price"),
                                                  ("reasons", "false")])
    assert all(set(i) == {"product_id", "score", "price"} for i in r.json()["items"])
    plain = (await api.get("/recommendations", params={"user_id": 9, "num_items": 3})).json()
    assert all(set(i) == {"product_id", "score", "reason"} for i in plain["items"])

    r = await api.get("/recommendations/trending", params={"num_items": 2, "fields": "category"})
    assert [i["category"] for i in r.json()["items"]] == ["Shoes", "Fashion"]
    r = await api.get("/recommendations/similar", params={"product_id": pid("Books", 1), "num_items": 2,
                                                          "fields": "name"})
    assert [i["name"] for i in r.json()["items"]] == ["Books item 2", "Books item 3"]
    r = await api.get("/recommendations/basket", params={"product_ids": pid("Home", 1), "num_items": 1,
                                                         "fields": "price", "price_min": 30})
    assert r.json()["items"] == [{"product_id": pid("Home", 3), "score": r.json()["items"][0]["score"],
                                  "reason": "Popular in Home", "price": 30.0}]
    for path, base in (("/recommendations", {"user_id": 9}), ("/recommendations/recent", {"user_id": 9})):
        r = await api.get(path, params={**base, "fields": "name,margin"})
        assert r.status_code == 422 and r.json()["field"] == "fields" and "margin" in r.json()["detail"]
    spec = (await api.get("/openapi.json")).json()
    params = {p["name"] for p in spec["paths"]["/recommendations"]["get"]["parameters"]}
    assert {"fields", "after"} <= params
    assert "price" in spec["components"]["schemas"]["RecItem"]["properties"]


async def test_paging_off_writes_no_page_record(catalog_engine, redis_client, api_settings):
    from api_helpers import open_client, write_lists
    from recsys.api.app import create_app

    write_lists(redis_client)
    write_user_recs(redis_client, 9, LISTED, n_events=60)
    app = create_app(api_settings.model_copy(update={"page_ttl_seconds": 0}), refresh_in_background=False)
    api, close = await open_client(app)
    try:
        body = await page(api, 9, 5)
        await app.state.serving.redis.flush_buffer()
        assert not redis_client.exists(page_key(body.request_id))
        r = await api.get("/recommendations", params={"user_id": 9, "after": body.request_id})
        assert r.status_code == 404 and "paging is off" in r.json()["detail"]
    finally:
        await close()
