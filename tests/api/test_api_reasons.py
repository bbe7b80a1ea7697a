"""What the reasons of ``GET /recommendations`` reveal: RECSYS_REASONS=personal names the user's latest
purchase per category and the product just viewed, generic never names the user's products, and
``reasons=false`` answers without reasons. A cached answer made under one mode is never served under
another (README "Security")."""

from __future__ import annotations

import orjson
import pytest

from api_helpers import open_client, pid, tier_work, write_lists, write_user_recs
from recsys.api.app import create_app
from recsys.keys import answer_key, decode_answer, recs_key, session_key
from recsys.pipeline.answers import serving_context, write_block

pytestmark = pytest.mark.anyio
USER = 61
BOUGHT = pid("Electronics", 3)  # its name, "Electronics item 3", is what a personal reason shows
VIEWED_NAME = "Shoes item 1"
PERSONAL_GOES_WITH, GENERIC_GOES_WITH = "Goes with your Electronics item 3", "Goes with your recent purchase"


def shopper(redis_client, reasons: list[str] | None = None) -> None:
    """A Tier-1 user with a model list and a session that bought ``BOUGHT`` (cross-sell: Books, Home)."""
    write_lists(redis_client)
    products = [pid("Electronics", j) for j in (1, 2, 4, 6, 7, 8, 9)] + [pid("Fashion", 1), pid("Shoes", 2)]
    write_user_recs(redis_client, USER, products, n_events=80, reasons=reasons)
    redis_client.hset(session_key(USER), mapping={"cats": "Electronics", "bought": str(BOUGHT)})


async def answer(app, client, **params) -> tuple[dict, int]:
    """One ``GET /recommendations`` body and whether the tiers worked it out (1) or a cached answer was sent (0)."""
    with tier_work(app) as calls:
        r = await client.get("/recommendations", params={"user_id": USER, "num_items": 10, **params})
    assert r.status_code == 200, r.text
    return r.json(), len(calls)


async def cached(app, client, **params) -> dict:
    """Requests until the answer comes from ``answer:{user}`` (written back by the request that worked it out)."""
    for _ in range(4):
        body, worked = await answer(app, client, **params)
        if not worked:
            return body
    raise AssertionError("the answer was never served from the cache")


@pytest.fixture
async def apps(catalog_engine, redis_client, api_settings):
    """``await apps(mode)``: (app, client) with RECSYS_REASONS=mode, on the same Redis and database."""
    closers = []

    async def build(mode: str):
        app = create_app(api_settings.model_copy(update={"reasons": mode}), refresh_in_background=False)
        client, close = await open_client(app)
        closers.append(close)
        return app, client

    yield build
    for close in closers:
        await close()


async def test_generic_reasons_never_name_the_users_products(apps, redis_client):
    shopper(redis_client)
    personal_app, personal = await apps("personal")
    generic_app, generic = await apps("generic")
    mine, _ = await answer(personal_app, personal)
    theirs, worked = await answer(generic_app, generic)
    assert worked == 1  # the personal app's answer was written back: not served under generic
    assert PERSONAL_GOES_WITH in {i["reason"] for i in mine["items"]}
    assert GENERIC_GOES_WITH in {i["reason"] for i in theirs["items"]}
    assert "Electronics item" not in orjson.dumps(theirs).decode()
    same = [(i["product_id"], i["score"]) for i in mine["items"]]
    assert [(i["product_id"], i["score"]) for i in theirs["items"]] == same  # only the texts differ


async def test_a_cached_answer_of_one_mode_is_never_served_in_the_other(apps, redis_client):
    shopper(redis_client)
    personal_app, personal = await apps("personal")
    generic_app, generic = await apps("generic")
    for _ in range(2):  # personal -> generic -> personal -> generic, each time after the other's answer is cached
        mine = await cached(personal_app, personal)
        assert PERSONAL_GOES_WITH in {i["reason"] for i in mine["items"]}
        body, worked = await answer(generic_app, generic)
        assert worked == 1 and GENERIC_GOES_WITH in {i["reason"] for i in body["items"]}
        theirs = await cached(generic_app, generic)
        assert "Electronics item" not in orjson.dumps(theirs).decode()
        body, worked = await answer(personal_app, personal)
        assert worked == 1 and PERSONAL_GOES_WITH in {i["reason"] for i in body["items"]}


async def test_a_stored_reason_naming_the_product_just_viewed_is_made_generic(apps, redis_client):
    stored = [f"Because you just viewed {VIEWED_NAME}"] * 9  # what precompute writes for a sequential list
    shopper(redis_client, reasons=stored)
    redis_client.hset(session_key(USER), mapping={"cats": "", "bought": ""})  # nothing else names anything
    generic_app, generic = await apps("generic")
    for body in (await answer(generic_app, generic))[0], await cached(generic_app, generic):
        reasons = {i["reason"] for i in body["items"]}
        assert "Because of what you just viewed" in reasons and VIEWED_NAME not in orjson.dumps(body).decode()
    personal_app, personal = await apps("personal")
    body, _ = await answer(personal_app, personal)
    assert f"Because you just viewed {VIEWED_NAME}" in {i["reason"] for i in body["items"]}


@pytest.mark.parametrize("mode", ["personal", "generic"])
async def test_reasons_false_answers_without_reasons_and_keeps_the_cached_answer(apps, redis_client, mode):
    shopper(redis_client)
    app, client = await apps(mode)
    full = await cached(app, client)  # the answer of this mode is in answer:{user}
    bare, worked = await answer(app, client, reasons="false")
    assert worked == 0 and bare["source"] == "personalized"
    assert [set(i) for i in bare["items"]] == [{"product_id", "score"}] * 10
    assert [(i["product_id"], i["score"]) for i in bare["items"]] == [(i["product_id"], i["score"])
                                                                     for i in full["items"]]
    redis_client.delete(answer_key(USER))
    bare, worked = await answer(app, client, reasons="false")  # worked out by the tiers
    assert worked == 1 and all("reason" not in i for i in bare["items"])
    again = await cached(app, client)  # the answer written back by the bare request keeps its reasons
    assert again["items"] == full["items"]
    trending, _ = await answer(app, client, reasons="false", user_id=999)
    assert trending["source"] == "trending" and all("reason" not in i for i in trending["items"])


def test_the_openapi_documents_reasons(api_settings):
    spec = create_app(api_settings).openapi()
    params = {p["name"]: p for p in spec["paths"]["/recommendations"]["get"]["parameters"]}
    assert params["reasons"]["schema"]["type"] == "boolean" and params["reasons"]["schema"]["default"] is True
    item = spec["components"]["schemas"]["RecItem"]
    assert set(item["required"]) == {"product_id", "score"}
    assert "reasons=false" in item["properties"]["reason"]["description"]


@pytest.mark.parametrize("mode, other", [("generic", "personal"), ("personal", "generic")])
async def test_precompute_answers_carry_their_mode_and_only_an_api_of_that_mode_serves_them(
        apps, catalog_engine, redis_client, api_settings, mode, other):
    """Precompute's answer (``pipeline.answers.write_block``, with the context it reads as the API does) is in
    the mode of its settings; an API of that mode sends it as it is, an API of the other mode re-ranks."""
    shopper(redis_client)
    settings = api_settings.model_copy(update={"reasons": mode})
    context = serving_context(catalog_engine, redis_client, settings)
    assert write_block(redis_client, [recs_key(USER)], [USER], [redis_client.get(recs_key(USER))], 600, context) == 1
    written = decode_answer(redis_client.get(answer_key(USER)))
    texts = {i["reason"] for i in orjson.loads(b"[" + written.items_bytes(10) + b"]")}
    assert (PERSONAL_GOES_WITH if mode == "personal" else GENERIC_GOES_WITH) in texts
    same_app, same = await apps(mode)
    body, worked = await answer(same_app, same)
    assert worked == 0 and {i["reason"] for i in body["items"]} <= texts
    other_app, other_client = await apps(other)
    body, worked = await answer(other_app, other_client)
    assert worked == 1 and (GENERIC_GOES_WITH if mode == "personal" else PERSONAL_GOES_WITH) in {
        i["reason"] for i in body["items"]}
