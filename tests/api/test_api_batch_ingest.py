"""POST /events/batch: every event by the rules of POST /events, through the same group commit; one result
per event, the whole request 503 when a transaction failed, nothing stored for a body the schema refuses."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import ProgrammingError

import recsys.serving.stores.db_store as db_store
from api_helpers import now_ms, pid
from recsys.api.schemas import EventBatchLogged
from recsys.db.models import UserEvent
from recsys.keys import events_key, session_key
from recsys.serving.session_state import SEP
from test_api_event_batch import rows as stored
from test_api_faults import kill_database

pytestmark = pytest.mark.anyio


def event(user_id: int, k: int, **extra) -> dict:
    return {"user_id": user_id, "product_id": pid("Books", 1 + k % 3), "timestamp": now_ms() - k,
            "event_type": ("VIEW", "CLICK", "ADD_TO_CART")[k % 3], "event_id": f"bt-{user_id}-{k}", **extra}


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(UserEvent)).scalar()


async def post_batch(api, events: list[dict]):
    return await api.post("/events/batch", json={"events": events})


async def test_a_batch_is_stored_once_each_and_its_retry_is_all_duplicate(api, catalog_engine, redis_client):
    events = [event(u, k) for u in (11, 12) for k in range(5)] + [
        {**event(13, 0), "event_type": "PURCHASE", "price": 12.5}]
    r = await post_batch(api, events)
    assert r.status_code == 200, r.text
    body = EventBatchLogged.model_validate(r.json())
    assert body.request_id == r.headers["x-request-id"]
    assert [(x.status, x.duplicate) for x in body.results] == [("logged", False)] * len(events)
    for sent, result in zip(events, body.results):  # each result names its own row, in request order
        (row,) = stored(catalog_engine, event_id=result.event_id)
        assert (row.client_event_id, row.user_id, row.product_id, row.event_type, row.timestamp) == (
            sent["event_id"], sent["user_id"], sent["product_id"], sent["event_type"], sent["timestamp"])
        assert row.request_id == body.request_id
    assert stored(catalog_engine, user_id=13)[0].price == 12.5
    assert count(catalog_engine) == len(events)
    assert int(redis_client.get(events_key(11))) == 5

    again = (await post_batch(api, events)).json()
    assert [(x["status"], x["duplicate"]) for x in again["results"]] == [("logged", True)] * len(events)
    assert [x["event_id"] for x in again["results"]] == [x.event_id for x in body.results]
    assert count(catalog_engine) == len(events)
    assert int(redis_client.get(events_key(11))) == 5  # a duplicate changes no session


async def test_an_event_refused_on_its_own_is_rejected_and_the_others_are_stored(api, catalog_engine):
    assert (await api.post("/events", json=event(21, 0))).status_code == 200
    events = [event(22, k) for k in range(6)]
    events[1] = {**event(21, 0), "product_id": pid("Home", 1)}  # a reused id for a different event
    events[3] = {**events[3], "product_id": 999_999}  # unknown product
    events[4] = {**events[4], "event_type": "PURCHASE"}  # no price
    r = await post_batch(api, events)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["logged", "rejected", "logged", "rejected", "rejected", "logged"]
    assert (results[1]["code"], results[1]["field"]) == (409, "event_id")
    assert (results[3]["code"], results[3]["field"]) == (422, "product_id") and "999999" in results[3]["detail"]
    assert (results[4]["code"], results[4]["field"]) == (422, "price")
    assert sorted(row.client_event_id for row in stored(catalog_engine, user_id=22)) == [
        "bt-22-0", "bt-22-2", "bt-22-5"]
    assert stored(catalog_engine, client_event_id="bt-21-0")[0].product_id == event(21, 0)["product_id"]


async def test_the_same_event_id_twice_in_a_batch_is_logged_then_duplicate_or_conflict(api, catalog_engine):
    same = event(23, 0)
    events = [same, event(23, 1), same, {**same, "product_id": pid("Home", 2)}]
    results = (await post_batch(api, events)).json()["results"]
    assert [(x["status"], x.get("duplicate"), x.get("code")) for x in results] == [
        ("logged", False, None), ("logged", False, None), ("logged", True, None), ("rejected", None, 409)]
    assert results[0]["event_id"] == results[2]["event_id"]
    assert len(stored(catalog_engine, client_event_id=same["event_id"])) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"timestamp": "yesterday"}, "events[3].timestamp"),
    ({"event_id": None}, "events[3].event_id"),  # required in a batch: its retry must be safe
    ({"event_type": "IMPRESSION"}, "events[3].event_type"),
    ({"colour": "red"}, "events[3].colour"),
])
async def test_a_schema_invalid_element_is_422_naming_it_and_nothing_is_stored(api, catalog_engine, change, field):
    events = [event(24, k) for k in range(5)]
    events[3] = {k: v for k, v in {**events[3], **change}.items() if v is not None}
    r = await post_batch(api, events)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert r.json()["detail"].startswith(field)
    assert count(catalog_engine) == 0


async def test_an_empty_a_malformed_and_a_too_large_batch_are_422(api, catalog_engine):
    r = await post_batch(api, [])
    assert r.status_code == 422 and r.json()["field"] == "events"
    r = await api.post("/events/batch", json=[event(25, 0)])  # a list, not {"events": [...]}
    assert r.status_code == 422 and r.json()["field"] == "body"
    limit = api.app.state.serving.settings.event_batch_max
    r = await post_batch(api, [event(25, k, event_type="VIEW") for k in range(limit + 1)])
    assert r.status_code == 422 and r.json()["field"] == "events"
    assert f"at most {limit} events (RECSYS_EVENT_BATCH_MAX), got {limit + 1}" in r.json()["detail"]
    assert count(catalog_engine) == 0


async def test_a_batch_updates_the_sessions_as_single_events_do(api, catalog_engine, redis_client):
    single = {"user_id": 31, "product_id": pid("Shoes", 1), "timestamp": now_ms(), "session_id": "s-1"}
    assert (await api.post("/events/click", json=single)).status_code == 200
    events = [{**single, "user_id": 32, "event_type": "CLICK", "event_id": "bt-32-0"},
              {**single, "user_id": 33, "product_id": pid("Home", 3), "event_type": "VIEW", "event_id": "bt-33-0"},
              {**single, "user_id": 33, "product_id": pid("Books", 2), "event_type": "CLICK", "event_id": "bt-33-1"}]
    assert (await post_batch(api, events)).status_code == 200

    def session(user_id: int) -> dict:
        return {k: v for k, v in redis_client.hgetall(session_key(user_id)).items() if k != b"ts"}

    assert session(32) == session(31) and session(31)[b"sid"] == b"s-1"
    assert int(redis_client.get(events_key(32))) == int(redis_client.get(events_key(31))) == 1
    assert session(33)[b"cats"].decode().split(SEP)[:2] == ["Books", "Home"]  # in order, latest first
    assert int(redis_client.get(events_key(33))) == 2


async def test_a_failed_transaction_is_a_503_and_the_retry_answers_the_committed_events_duplicate(
        api, catalog_engine, monkeypatch):
    real = db_store.write_event_batch

    async def fails_with_the_fourth_event(conn, dialect, rows, **options):
        written = await real(conn, dialect, rows, **options)
        if any(r["client_event_id"] == "bt-41-3" for r in rows):
            raise ProgrammingError("COMMIT", {}, Exception("injected failure"))
        return written

    monkeypatch.setattr(db_store, "write_event_batch", fails_with_the_fourth_event)
    api.app.state.serving.db.events.max_batch = 3  # two transactions: events 0-2 commit, 3-5 fail
    events = [event(41, k) for k in range(6)]
    r = await post_batch(api, events)
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert [row.client_event_id for row in stored(catalog_engine)] == ["bt-41-0", "bt-41-1", "bt-41-2"]
    monkeypatch.setattr(db_store, "write_event_batch", real)
    results = (await post_batch(api, events)).json()["results"]  # the client's retry of the whole batch
    assert [(x["status"], x["duplicate"]) for x in results] == [("logged", True)] * 3 + [("logged", False)] * 3
    assert count(catalog_engine) == 6


async def test_the_database_down_is_a_503(api, catalog_engine):
    kill_database(api.app)
    r = await post_batch(api, [event(42, k) for k in range(3)])
    assert r.status_code == 503 and r.json()["detail"].startswith("database unavailable")


async def test_a_batch_needs_an_api_key(api, catalog_engine):
    r = await api.post("/events/batch", json={"events": [event(43, 0)]}, headers={"X-API-Key": ""})
    assert r.status_code == 401
    assert count(catalog_engine) == 0


async def test_batches_and_single_events_sent_together_are_all_stored_once(api, catalog_engine):
    batches = [[event(50 + b, k) for k in range(25)] for b in range(4)]
    singles = [event(60 + k % 5, 100 + k) for k in range(40)]
    replies = await asyncio.gather(*(post_batch(api, b) for b in batches),
                                   *(api.post("/events", json=e) for e in singles))
    assert [r.status_code for r in replies] == [200] * (len(batches) + len(singles))
    logged = [x for r in replies[:len(batches)] for x in r.json()["results"]] + [r.json() for r in replies[4:]]
    assert all(x["status"] == "logged" and not x["duplicate"] for x in logged)
    rows = stored(catalog_engine)
    assert len(rows) == 4 * 25 + 40 == len({row.client_event_id for row in rows})
    assert {row.event_id for row in rows} == {x["event_id"] for x in logged}


async def test_the_readme_batch_example_is_a_batch_the_api_logs(api, catalog_engine):
    """The README's curl, its body as bash builds it; only the product is one of the test catalog's."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "/events/batch" in b)
    assert command.startswith('curl -H "X-API-Key: $SHOP_KEY" -H "Content-Type: application/json" ')
    data = command.split(" -d ", 1)[1]
    body = subprocess.run(["bash", "-c", f"printf %s {data}"], capture_output=True, text=True, check=True).stdout
    events = [{**e, "product_id": pid("Shoes", 1)} for e in json.loads(body)["events"]]
    r = await post_batch(api, events)
    assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == ["logged"] * len(events), r.text
