"""Cached final answers (``answer:{user_id}``): the same bytes the tiers would send, and when they are
not used (session, catalog, list, age, settings), on the oracle's corpus and through the API."""

from __future__ import annotations

import random

import orjson
import pytest

from api_helpers import (
    ALL_PRODUCTS, catalog_rows, get_recs, now_ms, open_client, pid, tier_work, write_lists, write_user_recs,
)
from recsys.api.app import create_app
from recsys.keys import answer_key, decode_answer, encode_answer, recommendations_body, recs_key
from recsys.serving.answers import ANSWER_ITEMS, answer_basis, build_answer, response_items
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.tiers import personalized
from test_api_tiers_reference import CORPUS

pytestmark = pytest.mark.anyio


def test_the_first_n_items_of_the_full_answer_are_the_answer_of_n():
    """What lets one cached answer serve every num_items: the re-ranked order does not depend on n."""
    for seed, case in enumerate(CORPUS):
        ctx = case["ctx"]
        full = personalized(ctx, case["products"], case["scores"], case["reasons"], ANSWER_ITEMS)
        for n in (1, 3, 10, 37, ANSWER_ITEMS):
            assert personalized(ctx, case["products"], case["scores"], case["reasons"], n) == full[:n], seed


def test_a_cached_answer_gives_the_bytes_of_the_encoded_response():
    rng = random.Random(5)
    for seed in range(0, len(CORPUS), 7):
        case = CORPUS[seed]
        items, value = build_answer(case["ctx"], case["products"], case["scores"], case["reasons"], "m-1", "b" * 32)
        cached = decode_answer(value)
        assert cached.products == [c.product_id for c in items] and cached.basis == "b" * 32
        for n in (1, 2, 10, 100):
            rid = rng.choice(("", "r-1", "é\"\\"))
            expected = orjson.dumps({"items": response_items(items[:n]), "model_version": "m-1",
                                     "source": "personalized", "request_id": rid})
            assert recommendations_body(cached.items_bytes(n), "m-1", "personalized", rid) == expected, seed


def test_values_of_another_format_are_no_answer():
    assert decode_answer(None) is None and decode_answer(b"") is None
    assert decode_answer(b'{"products": [1]}') is None  # a JSON list, not an answer
    assert decode_answer(b'{"basis": "x"}\n') is None  # header without its fields
    value = encode_answer([{"product_id": 1, "score": 0.5, "reason": "r"}], basis="x", at_ms=1, model_version=None)
    assert decode_answer(value).items_bytes(5) == b'{"product_id":1,"score":0.5,"reason":"r"}'


def test_the_basis_covers_the_list_bytes_and_the_session_fields_tier_1_reads():
    session = {b"cats": b"Shoes", b"bought": b"1", b"viewed": b"5", b"ts": b"1"}
    base = answer_basis(b"ctx", b"[1]", session)
    assert answer_basis(b"ctx", b"[1]", {**session, b"viewed": b"6", b"ts": b"2", b"sid": b"s"}) == base
    assert answer_basis(b"ctx", b"[1]", {k.decode(): v for k, v in session.items()}) == base  # str keys
    for changed in ({**session, b"cats": b"Home"}, {**session, b"bought": b"2"}, {**session, b"seen": b""}):
        assert answer_basis(b"ctx", b"[1]", changed) != base
    assert answer_basis(b"ctx", b"[2]", session) != base and answer_basis(b"ctx2", b"[1]", session) != base


async def _served(app, client, user: int, n: int = 10) -> tuple[list, int]:
    """The items of one answer and whether the tiers worked it out (1) or it came from the cache (0)."""
    with tier_work(app) as calls:
        body = await get_recs(client, user, n)
    return [(i.product_id, i.score, i.reason) for i in body.items], len(calls)


async def _warm(app, client, user: int) -> list:
    """Requests until the user's answer is served from the cache (it is written back by the request
    that works it out and lands with the next request's pipeline)."""
    for _ in range(4):
        items, worked = await _served(app, client, user)
        if not worked:
            return items
    raise AssertionError("the answer was never served from the cache")


async def test_an_event_a_catalog_change_or_age_makes_the_api_re_rank(catalog_engine, redis_client, api_settings,
                                                                     monkeypatch):
    write_lists(redis_client)
    write_user_recs(redis_client, 42, ALL_PRODUCTS[:30], n_events=60)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    state = app.state.serving
    try:
        await _warm(app, client, 42)
        cached, worked = await _served(app, client, 42, n=3)
        assert not worked and len(cached) == 3
        # a click: the session's categories changed, the answer no longer holds
        r = await client.post("/events/click", json={"user_id": 42, "product_id": pid("Electronics", 3),
                                                      "timestamp": now_ms()})
        assert r.status_code == 200
        items, worked = await _served(app, client, 42)
        assert worked == 1
        await _warm(app, client, 42)
        # a catalog refresh with another stock: every answer is worked out again
        rows = catalog_rows()
        for row in rows:
            row["in_stock"] = not row["in_stock"]
        state.catalog = CatalogSnapshot.from_rows(rows)
        items, worked = await _served(app, client, 42)
        assert worked == 1
        await _warm(app, client, 42)
        # older than RECSYS_ANSWER_MAX_AGE_SECONDS
        later = state.now_ms() + api_settings.answer_max_age_seconds * 1000 + 1
        monkeypatch.setattr(type(state), "now_ms", staticmethod(lambda: later))
        assert (await _served(app, client, 42))[1] == 1
    finally:
        await close()


async def test_answers_off_and_keys_of_a_previous_release(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    write_user_recs(redis_client, 43, ALL_PRODUCTS[:30], n_events=60)
    redis_client.set("answer:43", b"stale bytes of another format")  # no hash tag: never read
    settings = api_settings.model_copy(update={"answer_max_age_seconds": 0})
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        for _ in range(4):
            assert (await _served(app, client, 43))[1] == 1
        assert not redis_client.exists(answer_key(43))
    finally:
        await close()


async def test_a_hit_logs_its_impression_with_the_ab_arm(catalog_engine, redis_client, api_settings):
    import datetime as dt

    from recsys.serving.assignment import assign_arm
    from recsys.keys import KEY_IMPRESSIONS

    write_lists(redis_client)
    write_user_recs(redis_client, 44, ALL_PRODUCTS[:30], n_events=60)
    payload = {"products": ALL_PRODUCTS[10:40], "scores": [1.0 - i / 60 for i in range(30)],
               "model_version": "model-b", "updated_at": "2026-11-27T00:00:00+00:00"}
    redis_client.set(recs_key(44, "model-b"), orjson.dumps(payload))
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    state = app.state.serving
    try:
        state.live_model = {"model_id": "model-a"}  # the list's model is the LIVE one: the control arm's
        state.ab_test = {"test_id": 9, "status": "RUNNING", "treatment_fraction": 0.5,
                         "control_model_id": "model-a", "treatment_model_id": "model-b",
                         "end_at": dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)}
        arm = assign_arm(9, 44, 0.5)
        await _warm(app, client, 44)
        await state.redis.flush_buffer()  # the earlier answers' impressions
        redis_client.delete(KEY_IMPRESSIONS)
        items, worked = await _served(app, client, 44, n=4)
        assert not worked
        await state.redis.flush_buffer()
        (_, fields), = redis_client.xrange(KEY_IMPRESSIONS)
        fields = {k.decode(): v.decode() for k, v in fields.items()}
        assert fields["uid"] == "44" and fields["arm"] == arm and fields["test"] == "9"
        assert fields["model"] == {"control": "model-a", "treatment": "model-b"}[arm]
        assert fields["src"] == "personalized" and fields["items"] == ",".join(str(p) for p, _, _ in items)
    finally:
        await close()


async def test_the_fast_route_hands_everything_else_to_the_declared_one(api, redis_client):
    write_user_recs(redis_client, 45, ALL_PRODUCTS[:30], n_events=60)
    ok = await api.get("/recommendations?user_id=045&num_items=03")  # FastAPI's lax integers
    assert ok.status_code == 200 and len(ok.json()["items"]) == 3
    for query, field in (("user_id=abc", "user_id"), ("user_id=45&num_items=101", "num_items"),
                         ("num_items=3", "user_id"), ("user_id=0", "user_id")):
        r = await api.get(f"/recommendations?{query}")
        assert r.status_code == 422 and r.json()["field"] == field, (query, r.text)
    r = await api.get("/recommendations?user_id=45", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("ApiKey")
    assert (await api.head("/recommendations?user_id=45")).status_code == 405


async def test_the_rate_limit_rides_with_the_read(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    settings = api_settings.model_copy(update={"rate_limit_per_second": 0.01, "rate_limit_burst": 2})
    app = create_app(settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        assert [(await client.get("/recommendations?user_id=46")).status_code for _ in range(2)] == [200, 200]
        r = await client.get("/recommendations?user_id=46")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["detail"]
    finally:
        await close()
