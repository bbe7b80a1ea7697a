"""Request-time filters through the real API on PostgreSQL and Redis (issue 24): ``category``, ``price_min`` /
``price_max``, ``in_stock_only`` and ``exclude`` on every list endpoint. A filter narrows every tier, a tier it
leaves short is filled by the next (each item keeps its reason), the answer names the filters applied, and a
cached answer serves a filtered request only when enough of it passes."""

from __future__ import annotations

import pytest

from api_helpers import CATEGORIES, get_recs, insert_events, now_ms, pid, tier_work, write_user_recs
from recsys.api.schemas import (
    BasketResponse, RecentResponse, RecommendationsResponse, SimilarResponse, TrendingResponse,
)
from recsys.constants import REASON_LIKE_YOU

pytestmark = pytest.mark.anyio
HOME = [pid("Home", j) for j in (1, 2, 3)]
BOOKS = [pid("Books", j) for j in (1, 2, 3)]
PRICE = {pid(c, j): 10.0 * j for c in CATEGORIES for j in range(1, 11)}  # api_helpers.catalog_rows


async def recs(api, user_id: int, **params) -> RecommendationsResponse:
    r = await api.get("/recommendations", params={"user_id": user_id, **params})
    assert r.status_code == 200, r.text
    body = RecommendationsResponse.model_validate(r.json())
    assert body.request_id == r.headers["x-request-id"]
    return body


def model_user(redis_client, user_id: int = 7) -> int:
    """A user with a cached model list of three Home and three Books products and enough events for Tier 1."""
    write_user_recs(redis_client, user_id, HOME + BOOKS, n_events=60, model_version="model-a")
    return user_id


async def test_a_category_filter_narrows_tier_1_and_the_category_tier_fills_it(api, redis_client):
    user = model_user(redis_client)
    body = await recs(api, user, category="Home", num_items=6)
    assert body.source == "personalized" and body.model_version == "model-a"
    assert body.filters is not None and body.filters.category == ["Home"]
    assert [(i.product_id, i.reason) for i in body.items] == [
        *((p, REASON_LIKE_YOU) for p in HOME),  # the model's Home products first, with the model's reason
        *((pid("Home", j), "Popular in Home") for j in (4, 6, 7))]  # then Home's bestsellers (5: out of stock)
    plain = await recs(api, user, num_items=6)
    assert "filters" not in (await api.get("/recommendations", params={"user_id": user})).json()
    assert plain.filters is None and {i.product_id for i in plain.items} == set(HOME + BOOKS)


async def test_a_filter_that_empties_the_personalised_tier_is_filled_by_the_next_tier(api, redis_client):
    user = model_user(redis_client)
    body = await recs(api, user, category="Electronics", num_items=5)
    assert body.source == "category" and body.model_version is None
    assert [(i.product_id, i.reason) for i in body.items] == [
        (pid("Electronics", j), "Popular in Electronics") for j in (1, 2, 3, 4, 6)]
    # no category tier for a price filter and no browsed category: trending (and new arrivals) fill it
    body = await recs(api, user, price_min=95, num_items=3)
    assert body.source == "trending" and body.filters.price_min == 95
    assert len(body.items) == 3 and all(PRICE[i.product_id] == 100 for i in body.items)  # the 10th: new arrivals
    assert {i.reason for i in body.items} == {"New arrival"}


async def test_price_range_in_stock_only_and_exclude(api, redis_client):
    user = model_user(redis_client)
    body = await recs(api, user, price_min=20, price_max=30, num_items=8)
    assert body.items and all(20 <= PRICE[i.product_id] <= 30 for i in body.items)
    assert body.source == "personalized" and [i.product_id for i in body.items[:4]] == [
        pid("Home", 2), pid("Home", 3), pid("Books", 2), pid("Books", 3)]
    assert body.filters.model_dump(exclude_none=True) == {"price_min": 20.0, "price_max": 30.0}

    r = await api.get("/recommendations", params=[("user_id", user), ("num_items", 6), ("exclude", HOME[0]),
                                                  ("exclude", f"{HOME[1]},{BOOKS[0]}")])
    body = RecommendationsResponse.model_validate(r.json())
    assert body.filters.exclude == sorted([HOME[0], HOME[1], BOOKS[0]])
    assert not {HOME[0], HOME[1], BOOKS[0]} & {i.product_id for i in body.items} and len(body.items) == 6
    assert [i.product_id for i in body.items[:3]] == [HOME[2], BOOKS[1], BOOKS[2]]

    # Books 5 is out of stock: demoted to the end by default, gone with in_stock_only
    r = await api.get("/recommendations/trending", params={"category": "Books", "num_items": 20})
    assert r.json()["items"][-1]["product_id"] == pid("Books", 5)
    r = await api.get("/recommendations/trending", params={"category": "Books", "num_items": 20,
                                                           "in_stock_only": "true"})
    body = TrendingResponse.model_validate(r.json())
    assert pid("Books", 5) not in {i.product_id for i in body.items} and len(body.items) == 8
    assert body.filters.in_stock_only is True and body.category == "Books"
    body = await recs(api, user, category="Books", in_stock_only="true", num_items=20)
    assert pid("Books", 5) not in {i.product_id for i in body.items}
    assert {i.product_id // 100 for i in body.items} == {4}


async def test_a_cached_answer_serves_a_filter_only_when_enough_of_it_passes(api, redis_client):
    user = model_user(redis_client)
    for _ in range(3):  # seeds the session, then writes the answer back
        await get_recs(api, user, n=6)
    with tier_work(api.app) as calls:
        plain = await get_recs(api, user, n=6)
    assert not calls  # the cached answer
    with tier_work(api.app) as calls:
        body = await recs(api, user, category="Home,Books", num_items=5, exclude=BOOKS[2])
    assert not calls and body.source == "personalized"  # 5 of the answer's 6 pass: sent from it
    assert [i.model_dump() for i in body.items] == [i.model_dump() for i in plain.items if i.product_id != BOOKS[2]]
    assert body.filters.exclude == [BOOKS[2]]
    with tier_work(api.app) as calls:
        body = await recs(api, user, category="Home", num_items=6)
    assert len(calls) == 1 and len(body.items) == 6  # three of the answer pass: worked out from the candidates
    with tier_work(api.app) as calls:
        again = await get_recs(api, user, n=6)
    assert not calls and again == plain.model_copy(update={"request_id": again.request_id})  # nothing overwritten


async def test_the_other_lists_take_the_filters(api, catalog_engine):
    r = await api.get("/recommendations/similar", params={"product_id": pid("Shoes", 1), "num_items": 4})
    assert {i["reason"] for i in r.json()["items"]} == {"Popular in Shoes"} and "filters" not in r.json()
    r = await api.get("/recommendations/similar", params={"product_id": pid("Shoes", 1), "num_items": 4,
                                                          "category": "Books", "price_max": 40})
    body = SimilarResponse.model_validate(r.json())
    assert [(i.product_id, i.reason) for i in body.items] == [(pid("Books", j), "Popular in Books") for j in (1, 2, 3, 4)]
    assert body.filters.category == ["Books"] and body.filters.price_max == 40

    r = await api.get("/recommendations/basket", params={"product_ids": pid("Books", 1), "num_items": 3,
                                                         "price_min": 60, "category": "Books,Home"})
    body = BasketResponse.model_validate(r.json())
    assert [(i.product_id, i.reason) for i in body.items] == [
        (pid("Books", 6), "Popular in Books"), (pid("Books", 7), "Popular in Books"),
        (pid("Books", 8), "Popular in Books")]
    assert body.filters.category == ["Books", "Home"]

    insert_events(catalog_engine, 40, [*BOOKS, *HOME], "VIEW", start_ms=now_ms() - 100_000)
    r = await api.get("/recommendations/recent", params={"user_id": 40, "category": "Books", "exclude": BOOKS[2]})
    body = RecentResponse.model_validate(r.json())
    assert [i.product_id for i in body.items] == [BOOKS[1], BOOKS[0]] and body.filters.exclude == [BOOKS[2]]
    r = await api.get("/recommendations/trending", params={"category": ["Books", "Home"], "price_max": 10})
    body = TrendingResponse.model_validate(r.json())
    assert {i.product_id for i in body.items} == {pid("Books", 1), pid("Home", 1)} and body.category == "Books,Home"


@pytest.mark.parametrize("path, base", [
    ("/recommendations", {"user_id": 7}), ("/recommendations/trending", {}),
    ("/recommendations/similar", {"product_id": 101}), ("/recommendations/basket", {"product_ids": "101"}),
    ("/recommendations/buy-again", {"user_id": 7}), ("/recommendations/recent", {"user_id": 7})])
async def test_bad_filters_are_a_4xx_naming_the_parameter(api, path, base):
    bad = [({"price_min": 50, "price_max": 10}, 422, "price_min"), ({"price_min": -1}, 422, "price_min"),
           ({"price_max": "cheap"}, 422, "price_max"), ({"price_max": "inf"}, 422, "price_max"),
           ({"exclude": "12,abc"}, 422, "exclude"), ({"exclude": "0"}, 422, "exclude"),
           ({"exclude": "\u00b2"}, 422, "exclude"),  # a digit to str.isdigit, not to int()
           ({"exclude": ",".join(str(i) for i in range(1, 202))}, 422, "exclude"),
           ({"category": "Shoes,,Home"}, 422, "category"), ({"category": "x" * 129}, 422, "category"),
           ({"category": ",".join(f"c{i}" for i in range(21))}, 422, "category"),
           ({"category": "Spaceships"}, 404, "category"), ({"in_stock_only": "maybe"}, 422, "in_stock_only")]
    for params, status, field in bad:
        r = await api.get(path, params={**base, **params})
        assert r.status_code == status, (params, r.text)
        assert r.json()["field"] == field and r.json()["detail"], params
    assert "Spaceships" in (await api.get(path, params={**base, "category": "Spaceships"})).json()["detail"]


async def test_the_filters_are_in_the_openapi_contract(api):
    spec = (await api.get("/openapi.json")).json()
    for path in ("/recommendations", "/recommendations/trending", "/recommendations/similar",
                 "/recommendations/basket", "/recommendations/buy-again", "/recommendations/recent"):
        get = spec["paths"][path]["get"]
        params = {p["name"]: p for p in get["parameters"]}
        assert {"category", "price_min", "price_max", "in_stock_only", "exclude"} <= set(params), path
        assert params["price_min"]["schema"]["anyOf"][0]["minimum"] == 0, path
        assert params["category"]["description"] and {"404", "422"} <= set(get["responses"]), path
    assert "AppliedFilters" in spec["components"]["schemas"]
