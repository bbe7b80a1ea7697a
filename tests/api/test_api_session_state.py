"""session:{user_id} hash and the user:events counter: pure parsing and the Lua update on real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from recsys.constants import ADD_TO_CART, CLICK, EXCLUDE_INTERACTED, IMPRESSION, PURCHASE, RETURN, VIEW
from recsys.keys import ab_key, events_key, recs_key, session_key
from recsys.ranking.seen import seen_event_types
from recsys.serving.session_state import (
    MAX_VIEWED,
    SEP,
    parse_session,
    seed_fields,
    update_args,
)
from recsys.serving.stores.redis_store import RedisStore

from api_helpers import REDIS_URL

pytestmark = pytest.mark.anyio


def test_parse_session_reads_bytes_and_orders_most_recent_first():
    raw = {b"cats": f"Shoes{SEP}Books".encode(), b"viewed": f"3{SEP}2{SEP}x".encode(), b"bought": b"9",
           b"sid": b"s1", b"ts": b"1700000000000"}
    state = parse_session(raw)
    assert state.categories == ("Shoes", "Books")
    assert state.viewed == (3, 2)  # a corrupt id is skipped, not fatal
    assert state.purchased == (9,)
    assert state.session_id == "s1" and state.updated_at_ms == 1_700_000_000_000
    assert state.exists and not state.empty


def test_parse_session_of_nothing_is_the_empty_state():
    assert not parse_session({}).exists
    assert parse_session(None).empty


def test_seed_fields_from_history_newest_first():
    category = {1: "Shoes", 2: "Books", 3: "Shoes", 4: "Home"}.get
    recent = [(1, VIEW), (2, CLICK), (3, PURCHASE), (4, RETURN), (4, PURCHASE), (1, CLICK)]
    fields = seed_fields(recent, lambda p: category(p, ""))
    assert fields["seeded"] == "1"
    assert fields["cats"].split(SEP) == ["Shoes", "Books"]
    assert fields["viewed"].split(SEP) == ["1", "2"]
    assert fields["bought"].split(SEP) == ["3"]  # product 4 was returned


def test_seed_fields_of_a_user_without_history_still_marks_the_hash():
    assert seed_fields([], lambda p: "") == {"seeded": "1"}


@pytest.fixture
async def store(redis_client):
    client = Redis.from_url(REDIS_URL)
    yield RedisStore(client)
    await client.aclose()


def _args(event_type, product_id, category, n=None, sid="s1"):
    return update_args(event_type, product_id, category, sid, now_ms=123, session_ttl=600, n_events=n,
                       counter_ttl=900)


async def test_lua_update_keeps_recent_distinct_lists(store, redis_client):
    for product, cat in [(1, "Shoes"), (2, "Books"), (1, "Shoes")]:
        await store.record_event(7, _args(CLICK, product, cat))
    state = parse_session(redis_client.hgetall(session_key(7)))
    assert state.categories == ("Shoes", "Books")
    assert state.viewed == (1, 2)
    assert state.session_id == "s1" and state.updated_at_ms == 123
    assert 0 < redis_client.ttl(session_key(7)) <= 600


async def test_lua_update_caps_the_viewed_list(store, redis_client):
    for product in range(1, MAX_VIEWED + 6):
        await store.record_event(7, _args(VIEW, product, "Home"))
    viewed = parse_session(redis_client.hgetall(session_key(7))).viewed
    assert len(viewed) == MAX_VIEWED and viewed[0] == MAX_VIEWED + 5


async def test_purchase_and_return(store, redis_client):
    await store.record_event(7, _args(PURCHASE, 5, "Shoes"))
    await store.record_event(7, _args(PURCHASE, 6, "Books"))
    state = parse_session(redis_client.hgetall(session_key(7)))
    assert state.purchased == (6, 5)
    assert state.categories == ()  # buying is not browsing: no session boost for more of the same
    await store.record_event(7, _args(RETURN, 6, "Books"))
    assert parse_session(redis_client.hgetall(session_key(7))).purchased == (5,)


async def test_impression_changes_no_list(store, redis_client):
    await store.record_event(7, _args(IMPRESSION, 5, "Shoes"))
    assert parse_session(redis_client.hgetall(session_key(7))).empty


async def test_counter_only_grows_and_gets_a_ttl(store, redis_client):
    await store.record_event(7, _args(CLICK, 1, "Shoes", n=12))
    await store.record_event(7, _args(CLICK, 2, "Shoes", n=11))  # a slower concurrent write
    assert int(redis_client.get(events_key(7))) == 12
    assert 0 < redis_client.ttl(events_key(7)) <= 900
    await store.record_event(7, _args(CLICK, 3, "Shoes", n=13))
    assert int(redis_client.get(events_key(7))) == 13


async def test_seed_never_overwrites_fresher_values(store, redis_client):
    await store.record_event(7, _args(CLICK, 1, "Shoes", n=60))
    await store.seed_user(7, 40, {"seeded": "1", "cats": "Books", "bought": "9"}, session_ttl=600, counter_ttl=900)
    state = parse_session(redis_client.hgetall(session_key(7)))
    assert int(redis_client.get(events_key(7))) == 60
    assert state.categories == ("Shoes",)  # the live session wins
    assert state.purchased == (9,)  # a missing field is filled


async def test_read_user_view_is_one_pipeline(store, redis_client):
    redis_client.set(recs_key(7), '{"products": [1, 2], "scores": [0.5, 0.4], "model_version": "m1"}')
    redis_client.set(ab_key(7), '{"test_id": 1, "model_id": "m2", "arm": "treatment"}')
    redis_client.set(recs_key(7, "m2"), '{"products": [3], "scores": [0.9], "model_version": "m2"}')
    redis_client.set(events_key(7), 55)
    await store.record_event(7, _args(CLICK, 1, "Shoes"))
    view = await store.read_user_view(7, model_id="m2")
    assert view.recs["products"] == [1, 2]
    assert view.model_recs["products"] == [3]
    assert view.ab["arm"] == "treatment"
    assert view.n_events == 55 and view.session.categories == ("Shoes",)


async def test_read_user_view_takes_a_key_of_another_type_for_missing(store, redis_client):
    """The strings are read with one MGET, which answers nil for a key that is not a string."""
    redis_client.hset(recs_key(8), "products", "[1]")
    redis_client.set(events_key(8), 60)
    view = await store.read_user_view(8)
    assert view.recs is None and view.n_events == 60 and not view.session.exists


async def test_seed_gives_every_key_it_writes_a_ttl_and_keeps_a_live_one(store, redis_client):
    await store.seed_user(9, 0, {"seeded": "1"}, session_ttl=600, counter_ttl=900)
    assert 0 < redis_client.ttl(session_key(9)) <= 600 and 0 < redis_client.ttl(events_key(9)) <= 900
    redis_client.hset(session_key(10), "cats", "Shoes")  # a hash left without a TTL (an older version)
    await store.seed_user(10, 0, {"seeded": "1", "cats": "Books"}, session_ttl=600, counter_ttl=900)
    assert 0 < redis_client.ttl(session_key(10)) <= 600 and parse_session(redis_client.hgetall(session_key(10))).categories == ("Shoes",)
    redis_client.expire(session_key(10), 5000)  # a live session keeps its own lifetime
    await store.seed_user(10, 0, {"seeded": "1"}, session_ttl=600, counter_ttl=900)
    assert redis_client.ttl(session_key(10)) > 600
def test_seed_fields_keep_the_other_seen_event_types():
    recent = [(1, VIEW), (2, CLICK), (3, PURCHASE), (1, ADD_TO_CART), (5, IMPRESSION)]
    assert "seen" not in seed_fields(recent, lambda p: "Home")  # default: purchases only, in "bought"
    fields = seed_fields(recent, lambda p: "Home", seen_event_types(EXCLUDE_INTERACTED))
    state = parse_session(fields)
    assert state.seen == (1, 2)  # newest first, distinct; the purchase stays in "bought"
    assert state.already_seen(seen_event_types(EXCLUDE_INTERACTED)) == {1, 2, 3}
    views_only = parse_session(seed_fields(recent, lambda p: "Home", (VIEW,)))
    assert views_only.seen == (1,) and views_only.already_seen((VIEW,)) == {1}  # purchases not named: kept
    assert parse_session(seed_fields(recent, lambda p: "Home")).already_seen() == {3}


async def test_lua_update_records_seen_products_of_the_configured_types(store, redis_client):
    interacted = seen_event_types(EXCLUDE_INTERACTED)
    await store.record_event(7, update_args(VIEW, 1, "Shoes", "s1", now_ms=1, session_ttl=600, n_events=None,
                                            counter_ttl=900, seen_types=interacted))
    await store.record_event(7, update_args(PURCHASE, 2, "Shoes", "s1", now_ms=2, session_ttl=600, n_events=None,
                                            counter_ttl=900, seen_types=interacted))
    await store.record_event(7, _args(CLICK, 3, "Books"))  # default types: not "seen"
    state = parse_session(redis_client.hgetall(session_key(7)))
    assert state.seen == (1,) and state.purchased == (2,)
    assert state.already_seen(interacted) == {1, 2}
