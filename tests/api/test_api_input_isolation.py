"""One client's bad input never affects another: ids bounded to the database's range on every route,
the circuit breaker opens on connectivity failures only, reserved event types and ids, unknown
fields and bodies that are not UTF-8 answered with a documented 422."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from api_helpers import now_ms, pid
from recsys.constants import MAX_DB_INT
from recsys.db.errors import is_connectivity_error, is_input_error
from recsys.serving.errors import DependencyDown, InvalidInputError
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.db_store import DbStore

pytestmark = pytest.mark.anyio
TOO_BIG = MAX_DB_INT + 1  # 9223372036854775808
ADMIN_TOKEN = "isolation-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api_settings(api_settings):
    """The A/B reads need the admin token before their path is validated."""
    return api_settings.model_copy(update={"admin_token": ADMIN_TOKEN})


def click(user_id: int, **extra) -> dict:
    return {"user_id": user_id, "product_id": pid("Shoes", 1), "timestamp": now_ms(), **extra}


@pytest.mark.parametrize("method, path, kwargs, field", [
    ("get", "/recommendations", {"params": {"user_id": TOO_BIG}}, "user_id"),
    ("get", "/recommendations", {"params": {"user_id": 1, "num_items": TOO_BIG}}, "num_items"),
    ("get", "/recommendations/similar", {"params": {"product_id": TOO_BIG}}, "product_id"),
    ("get", "/recommendations/trending", {"params": {"num_items": 101}}, "num_items"),
    ("get", f"/ab-tests/{TOO_BIG}", {"headers": ADMIN}, "test_id"),
    ("get", f"/ab-tests/{TOO_BIG}/dashboard", {"headers": ADMIN}, "test_id"),
    ("post", "/events/click", {"json": click(TOO_BIG)}, "user_id"),
    ("post", "/events/click", {"json": {**click(1), "product_id": TOO_BIG}}, "product_id"),
    ("post", "/events/click", {"json": {**click(1), "timestamp": TOO_BIG}}, "timestamp"),
])
async def test_every_id_beyond_the_database_range_is_422(api, method, path, kwargs, field):
    r = await getattr(api, method)(path, **kwargs)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


async def test_the_largest_id_the_database_holds_is_served(api):
    r = await api.get("/recommendations", params={"user_id": MAX_DB_INT})
    assert r.status_code == 200, r.text


async def test_the_bounds_are_in_the_openapi_contract(api):
    spec = (await api.get("/openapi.json")).json()
    params = {p["name"]: p["schema"] for p in spec["paths"]["/recommendations"]["get"]["parameters"]}
    assert params["user_id"]["maximum"] == MAX_DB_INT and params["num_items"]["maximum"] == 100
    event = spec["components"]["schemas"]["ClickEventIn"]
    assert event["properties"]["user_id"]["maximum"] == MAX_DB_INT
    assert event["additionalProperties"] is False


async def test_one_bad_request_opens_no_breaker_while_many_clients_post_events(api, catalog_engine):
    """Issue 11: a huge user_id (and a value PostgreSQL refuses) once opened the database breaker,
    and every client's events answered 503 for about 2 s."""
    breaker = api.app.state.serving.db.breaker

    async def client(n: int) -> list[int]:
        codes = []
        for k in range(4):
            r = await api.post("/events/click", json=click(1000 + n, event_id=f"c{n}-{k}"))
            codes.append(r.status_code)
        return codes

    async def bad() -> list[int]:
        codes = []
        for _ in range(4):
            codes.append((await api.get("/recommendations", params={"user_id": TOO_BIG})).status_code)
            # passes the schema, refused by PostgreSQL (NUL in text): the database's own DataError
            r = await api.post("/events/click", json=click(77, session_id="a\x00b"))
            codes.append(r.status_code)
            if r.status_code == 422:
                assert "refused a value" in r.json()["detail"]
        return codes

    async def bad_batch() -> list[dict]:
        """A batch whose first event PostgreSQL refuses (NUL in text), the second fine, and a batch with an id
        beyond the database's range: only that event, and only that request, is refused."""
        out = []
        for k in range(4):
            events = [{**click(78, session_id="a\x00b"), "event_type": "CLICK", "event_id": f"bad-{k}"},
                      {**click(79), "event_type": "CLICK", "event_id": f"ok-{k}"}]
            r = await api.post("/events/batch", json={"events": events})
            assert r.status_code == 200, r.text
            out.append(r.json())
            r = await api.post("/events/batch", json={"events": [{**events[1], "user_id": TOO_BIG}]})
            assert r.status_code == 422 and "user_id" in r.json()["field"], r.text
        return out

    results = await asyncio.gather(bad(), bad_batch(), *[client(n) for n in range(24)])
    bad_codes, batches, good = results[0], results[1], [c for codes in results[2:] for c in codes]
    assert set(bad_codes) == {422}
    assert [[(e["status"], e.get("code")) for e in b["results"]] for b in batches] == [
        [("rejected", 422), ("logged", None)]] * 4
    assert good == [200] * len(good)
    assert breaker.failures == 0 and breaker.available()
    r = await api.post("/events/click", json=click(5))
    assert r.status_code == 200


def _data_error() -> DataError:
    return DataError("SELECT", {}, OverflowError("value out of int64 range"))


def test_errors_are_told_apart():
    assert is_input_error(_data_error()) and not is_connectivity_error(_data_error())
    assert is_input_error(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert is_input_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
    down = OperationalError("SELECT", {}, ConnectionRefusedError("refused"))
    assert is_connectivity_error(down) and not is_input_error(down)
    assert is_connectivity_error(asyncio.TimeoutError()) and is_connectivity_error(ConnectionResetError())


async def test_the_breaker_opens_for_an_outage_and_not_for_a_value():
    store = DbStore.__new__(DbStore)
    store.breaker = CircuitBreaker("database", cooldown_seconds=60)

    async def refused():
        raise _data_error()

    async def unreachable():
        raise OperationalError("SELECT", {}, ConnectionRefusedError("refused"))

    with pytest.raises(InvalidInputError):
        await store._guard(refused)
    assert store.breaker.available() and store.breaker.failures == 0
    with pytest.raises(DependencyDown):
        await store._guard(unreachable)
    assert not store.breaker.available()


@pytest.mark.parametrize("path, body, field, words", [
    ("/events", {"event_type": "IMPRESSION"}, "event_type", "logged by the server"),
    ("/events", {"event_type": " impression "}, "event_type", "logged by the server"),
    ("/events/click", {"event_id": "imp:1700000000000-0:0"}, "event_id", "reserved"),
    ("/events/click", {"event_id": "IMP:1-0:0"}, "event_id", "reserved"),
    ("/events/click", {"extra_field": "x" * 1000}, "extra_field", "Extra inputs are not permitted"),
    ("/events/purchase", {"price": 5.0, "sesion_id": "typo"}, "sesion_id", "Extra inputs are not permitted"),
])
async def test_reserved_and_unknown_event_fields_are_422_with_a_message(api, catalog_engine, path, body, field,
                                                                        words):
    r = await api.post(path, json={**click(12), **body})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["detail"]


async def test_a_body_that_is_not_utf8_is_a_documented_422(api):
    r = await api.post("/events/click", content=b'{"user_id": 1, "session_id": "\xff\xfe"}',
                       headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body" and "not valid UTF-8" in r.json()["detail"]
    assert r.json()["request_id"] == r.headers["x-request-id"]
    spec = (await api.get("/openapi.json")).json()
    for path in ("/events/click", "/events/purchase", "/events"):
        assert "422" in spec["paths"][path]["post"]["responses"]
        assert "400" not in spec["paths"][path]["post"]["responses"]
    assert (await api.get("/no-such-route")).status_code == 404  # other HTTP errors keep FastAPI's answer
