"""Group commit of ``POST /events*``: concurrent events share one transaction, each answered after it
committed; duplicates, conflicts, a refused row and a failed transaction inside one batch.
On PostgreSQL through the API, and on SQLite (the ``make run`` default) through the store."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import ProgrammingError

import recsys.serving.stores.db_store as db_store
from api_helpers import now_ms, pid
from recsys.db.models import User, UserEvent
from recsys.keys import events_key, session_key
from recsys.serving.errors import DependencyDown, InvalidInputError
from recsys.serving.stores.db_store import DbStore, make_async_engine

pytestmark = pytest.mark.anyio


def one_batch_of(api, n: int):
    """The next ``n`` requests meet in one batch: it leaves when it is full (the wait is long)."""
    events = api.app.state.serving.db.events
    events.max_batch, events.max_wait_s = n, 30.0
    return events


def event(user_id: int, k: int, **extra) -> dict:
    return {"user_id": user_id, "product_id": pid("Books", 1 + k % 3), "timestamp": now_ms() - k,
            "event_type": ("VIEW", "CLICK", "ADD_TO_CART")[k % 3], **extra}


def rows(engine, **where) -> list:
    with engine.connect() as conn:
        stmt = select(UserEvent)
        for col, value in where.items():
            stmt = stmt.where(getattr(UserEvent, col) == value)
        return conn.execute(stmt.order_by(UserEvent.event_id)).all()


async def test_concurrent_events_share_one_transaction_and_are_counted_per_user(api, catalog_engine, redis_client):
    bodies = [event(u, k, **({"event_id": f"b-{u}-{k}"} if k % 2 else {})) for u in (31, 32, 33) for k in range(8)]
    batcher = one_batch_of(api, len(bodies))
    replies = await asyncio.gather(*(api.post("/events", json=b) for b in bodies))
    assert [r.status_code for r in replies] == [200] * len(bodies)
    assert all(r.json()["status"] == "logged" and not r.json()["duplicate"] for r in replies)
    assert batcher.batches == 1
    event_ids = [r.json()["event_id"] for r in replies]
    for body, event_id in zip(bodies, event_ids):  # every answer names its own row
        (row,) = rows(catalog_engine, event_id=event_id)
        assert (row.user_id, row.product_id, row.event_type, row.timestamp, row.client_event_id) == (
            body["user_id"], body["product_id"], body["event_type"], body["timestamp"], body.get("event_id"))
    with catalog_engine.connect() as conn:
        assert conn.execute(select(User.user_id).order_by(User.user_id)).scalars().all() == [31, 32, 33]
    for u in (31, 32, 33):  # the session counter ends at the user's stored count
        assert int(redis_client.get(events_key(u))) == 8
        assert redis_client.hget(session_key(u), "viewed")


async def test_the_same_event_id_twice_in_one_batch_is_logged_once_then_duplicate_or_conflict(api, catalog_engine):
    same = event(40, 0, event_id="dup-40")
    other = {**same, "product_id": pid("Home", 2)}
    batcher = one_batch_of(api, 5)
    replies = await asyncio.gather(*(api.post("/events", json=b) for b in (same, event(41, 1), same, other, same)))
    codes = [r.status_code for r in replies]
    assert codes == [200, 200, 200, 409, 200]
    first, retry, again = replies[0].json(), replies[2].json(), replies[4].json()
    assert (first["duplicate"], retry["duplicate"], again["duplicate"]) == (False, True, True)
    assert first["event_id"] == retry["event_id"] == again["event_id"]
    assert replies[3].json()["field"] == "event_id"
    assert len(rows(catalog_engine, client_event_id="dup-40")) == 1
    assert batcher.batches == 4  # one with the first "dup-40", then one for each of its repeats


async def test_a_row_the_database_refuses_fails_alone_in_its_batch(api, catalog_engine):
    good = [event(50 + k, k, event_id=f"good-{k}") for k in range(9)]
    bad = event(60, 0, session_id="nul\x00byte")  # passes the schema, PostgreSQL refuses it
    batcher = one_batch_of(api, 10)
    replies = await asyncio.gather(*(api.post("/events", json=b) for b in [*good[:4], bad, *good[4:]]))
    codes = [r.status_code for r in replies]
    assert codes == [200] * 4 + [422] + [200] * 5
    assert "refused a value" in replies[4].json()["detail"]
    assert batcher.batches == 1  # one batch, bisected to find the bad row
    assert len(rows(catalog_engine)) == 9 and rows(catalog_engine, user_id=60) == []
    assert api.app.state.serving.db.breaker.available()


async def test_a_failed_transaction_answers_503_to_every_request_in_it_and_stores_none(api, catalog_engine,
                                                                                       monkeypatch):
    real = db_store.write_event_batch

    async def fails_after_writing(conn, dialect, batch, **options):
        await real(conn, dialect, batch, **options)  # the rows are written, then the transaction fails: rolled back
        raise ProgrammingError("COMMIT", {}, Exception("injected failure"))

    monkeypatch.setattr(db_store, "write_event_batch", fails_after_writing)
    bodies = [event(70 + k, k, event_id=f"lost-{k}") for k in range(6)]
    batcher = one_batch_of(api, 6)
    replies = await asyncio.gather(*(api.post("/events", json=b) for b in bodies))
    assert [r.status_code for r in replies] == [503] * 6
    assert batcher.batches == 1
    assert rows(catalog_engine) == []
    monkeypatch.setattr(db_store, "write_event_batch", real)
    retried = await asyncio.gather(*(api.post("/events", json=b) for b in bodies))  # the client's retry
    assert [(r.status_code, r.json()["duplicate"]) for r in retried] == [(200, False)] * 6
    assert len(rows(catalog_engine)) == 6


async def test_group_commit_on_sqlite(sqlite_engine):
    """Ids and no ids, a retry and a reuse in one batch, then one bad row (an int SQLite cannot bind)."""
    store = DbStore(make_async_engine(str(sqlite_engine.url)), batch_wait_ms=100)
    base = {"session_id": None, "price": None, "request_id": None, "timestamp": now_ms()}

    def row(user_id, product_id, cid=None, etype="VIEW"):
        return {**base, "user_id": user_id, "product_id": product_id, "event_type": etype, "client_event_id": cid}

    try:
        batch = [row(1, 10, "s-1"), row(1, 11), row(2, 10, "s-2"), row(1, 10, "s-1"), row(1, 12, "s-1"),
                 row(2, 12), row(1, 13, etype="CLICK")]
        results = await asyncio.gather(*(store.insert_event(r) for r in batch), return_exceptions=True)
        assert [(w.inserted, w.same_event) for w in results] == [
            (True, True), (True, True), (True, True), (False, True), (False, False), (True, True), (True, True)]
        assert results[3].event_id == results[0].event_id
        assert [results[i].n_events for i in (0, 1, 2, 5, 6)] == [1, 2, 1, 2, 3]  # the count as of each event
        assert store.events.batches == 3  # "s-1" three times: one batch each, in order
        bad = row(3, 2**64)
        results = await asyncio.gather(store.insert_event(bad), store.insert_event(row(3, 14, "s-3")),
                                       return_exceptions=True)
        assert isinstance(results[0], InvalidInputError) and results[1].inserted
    finally:
        await store.engine.dispose()
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UserEvent)).scalar() == 6
        assert conn.execute(select(User.user_id).order_by(User.user_id)).scalars().all() == [1, 2, 3]


@pytest.mark.parametrize("cap", [3, 11, 12, 20, None])
async def test_a_capped_count_puts_every_event_on_the_same_side_of_the_threshold(catalog_engine, cap):
    """User 500 has 10 counted events and 2 impressions, user 501 one event; one batch adds two counted events
    and an impression of 500 and one event of 501. Exact counts as of each event: 11, 12 and 2. With a cap
    (the personalisation threshold) the count stops reading at it, yet each event is exact below the cap and
    at least the cap at or past it."""
    history = [(500, "VIEW")] * 10 + [(500, "IMPRESSION")] * 2 + [(501, "CLICK")]
    with catalog_engine.begin() as conn:
        conn.execute(User.__table__.insert(), [{"user_id": u} for u in (500, 501)])
        conn.execute(UserEvent.__table__.insert(), [
            {"user_id": u, "product_id": pid("Books", 1), "event_type": t, "timestamp": now_ms() - 1000 - i}
            for i, (u, t) in enumerate(history)])
    store = DbStore(make_async_engine(str(catalog_engine.url.render_as_string(hide_password=False))),
                    batch_wait_ms=200, count_cap=cap)
    base = {"session_id": None, "price": None, "request_id": None, "timestamp": now_ms(), "product_id": pid("Books", 2)}
    batch = [{**base, "user_id": 500, "event_type": "VIEW", "client_event_id": "cap-1"},
             {**base, "user_id": 501, "event_type": "VIEW", "client_event_id": "cap-2"},
             {**base, "user_id": 500, "event_type": "IMPRESSION", "client_event_id": "cap-3"},
             {**base, "user_id": 500, "event_type": "CLICK", "client_event_id": "cap-4"}]
    try:
        results = await asyncio.gather(*(store.insert_event(r) for r in batch))
    finally:
        await store.engine.dispose()
    assert store.events.batches == 1
    counted = [results[i].n_events for i in (0, 1, 3)]
    exact = [11, 2, 12]
    if cap is None:
        assert counted == exact
    for n, true in zip(counted, exact):
        assert n == true if cap is None or true < cap else n >= cap, (cap, counted)


async def test_an_unreachable_database_answers_every_waiter_with_dependency_down():
    store = DbStore(make_async_engine("postgresql://nobody@127.0.0.1:1/none", 0.5), batch_wait_ms=50)
    try:
        results = await asyncio.gather(*(store.insert_event({"user_id": k, "product_id": 1, "event_type": "VIEW",
                                                             "timestamp": now_ms(), "client_event_id": f"x{k}"})
                                         for k in range(5)), return_exceptions=True)
        assert [type(r) for r in results] == [DependencyDown] * 5
        assert store.events.batches == 1 and not store.breaker.available()
    finally:
        await store.engine.dispose()
