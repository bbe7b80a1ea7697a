"""API keys, rate limits, the body limit, signed request ids, bounded strings (README "Security")."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import select

from api_helpers import metric, now_ms, open_client, pid, write_lists
from asgi_client import KEY_HEADERS, TEST_API_KEY
from recsys.abtest.request_ids import RequestIdSigner
from recsys.api.app import create_app
from recsys.db.models import UserEvent
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.redis_store import RedisStore
from recsys.settings import ConfigurationError, Settings

pytestmark = pytest.mark.anyio
SHOP_KEY, SHOP_KEY_NEW, BENCH_KEY = "shop-key-aaaaaaaaaaaaaaaa", "shop-key-bbbbbbbbbbbbbbbb", "bench-key-cccccccccccccc"


@pytest.fixture
async def app_with(catalog_engine, redis_client, api_settings):
    """``await app_with(**settings)``: a client (no key sent by default) on an app with those settings."""
    write_lists(redis_client)
    closers = []

    async def build(headers=None, **update):
        settings = api_settings.model_copy(update=update)
        client, close = await open_client(create_app(settings, refresh_in_background=False), headers=headers or {})
        closers.append(close)
        return client

    yield build
    for close in closers:
        await close()


async def test_every_endpoint_but_health_needs_a_key(app_with):
    api = await app_with()
    calls = [("GET", "/recommendations?user_id=1"), ("GET", "/recommendations/trending"),
             ("GET", f"/recommendations/similar?product_id={pid('Shoes', 1)}"), ("GET", "/models/status"),
             ("GET", "/metrics"), ("POST", "/events/click"), ("POST", "/events/purchase"), ("POST", "/events"),
             ("POST", "/events/batch")]
    for method, path in calls:
        r = await api.request(method, path, json={})
        assert r.status_code == 401, path
        assert r.json()["detail"] == "send your API key in the X-API-Key header"
        assert r.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
        r = await api.request(method, path, json={}, headers={"X-API-Key": "guessed-key-0123456789"})
        assert r.status_code == 401 and r.json()["detail"] == "unknown API key", path
    assert (await api.get("/health")).status_code == 200
    assert (await api.get("/recommendations/trending", headers=KEY_HEADERS)).status_code == 200


async def test_metrics_can_be_public(app_with):
    api = await app_with(metrics_public=True)
    assert (await api.get("/metrics")).status_code == 200
    assert (await api.get("/models/status")).status_code == 401


async def test_metrics_take_the_key_as_a_bearer_token_as_prometheus_sends_it(app_with):
    api = await app_with(api_keys=[f"shop:{SHOP_KEY}", f"prometheus:{BENCH_KEY}"])
    r = await api.get("/metrics", headers={"Authorization": f"Bearer {BENCH_KEY}"})
    assert r.status_code == 200 and "recsys_requests_total" in r.text
    assert (await api.get("/metrics", headers={"Authorization": "Bearer guessed-key-0123456789"})).status_code == 401
    assert (await api.get("/metrics")).status_code == 401
    assert (await api.get("/models/status", headers={"Authorization": f"Bearer {BENCH_KEY}"})).status_code == 401
    text = (await api.get("/metrics", headers={"X-API-Key": SHOP_KEY})).text
    assert metric(text, 'recsys_requests_total{endpoint="/metrics",key="prometheus",status="200"}') == 1


async def test_two_keys_of_one_name_during_rotation_and_the_name_in_logs_and_metrics(app_with, caplog):
    api = await app_with(api_keys=[f"shop:{SHOP_KEY}", f"shop:{SHOP_KEY_NEW}", f"bench:{BENCH_KEY}"])
    caplog.set_level(logging.INFO, logger="recsys.api.middleware")
    for key in (SHOP_KEY, SHOP_KEY_NEW, BENCH_KEY):
        assert (await api.get("/recommendations/trending", headers={"X-API-Key": key})).status_code == 200
    text = (await api.get("/metrics", headers={"X-API-Key": BENCH_KEY})).text
    assert metric(text, 'recsys_requests_total{endpoint="/recommendations/trending",key="shop",status="200"}') == 2
    assert metric(text, 'recsys_requests_total{endpoint="/recommendations/trending",key="bench",status="200"}') == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "recsys.api.middleware"]
    assert sum("GET /recommendations/trending 200" in line and "key=shop " in line for line in lines) == 2
    assert not any(k in line for line in lines for k in (SHOP_KEY, SHOP_KEY_NEW, BENCH_KEY))


def test_keys_are_checked_when_the_settings_are_read(monkeypatch):
    for bad in ("shop", "shop:short", "bad name:0123456789abcdef0", f"a:{SHOP_KEY},b:{SHOP_KEY}"):
        monkeypatch.setenv("RECSYS_API_KEYS", bad)
        with pytest.raises(ValidationError, match="api_keys"):
            Settings()
    monkeypatch.setenv("RECSYS_API_KEYS", f"shop:{SHOP_KEY}, shop:{SHOP_KEY_NEW}")
    assert Settings().api_key_pairs == [("shop", SHOP_KEY), ("shop", SHOP_KEY_NEW)]


def test_production_refuses_placeholder_secrets_and_an_api_without_keys():
    with pytest.raises(ValidationError, match="RECSYS_REQUEST_ID_SECRET"):  # the placeholder (the suite sets a secret)
        Settings(environment="production", api_keys=[f"shop:{SHOP_KEY}"], request_id_secret="changethis")
    with pytest.raises(ValidationError, match="RECSYS_REQUEST_ID_SECRET"):
        Settings(environment="production", request_id_secret="too-short")
    with pytest.raises(ValidationError, match="RECSYS_ADMIN_TOKEN"):
        Settings(environment="production", request_id_secret="x" * 32, admin_token="admin")
    prod = Settings(environment="production", request_id_secret="x" * 32, api_keys=[])
    with pytest.raises(ConfigurationError, match="RECSYS_API_KEYS"):
        create_app(prod)
    create_app(prod.model_copy(update={"api_keys": [f"shop:{SHOP_KEY}"]}))  # builds (nothing starts yet)


async def test_rate_limit_per_key_with_retry_after(app_with):
    api = await app_with(api_keys=[f"shop:{SHOP_KEY}", f"bench:{BENCH_KEY}"], rate_limit_per_second=0.5,
                         rate_limit_burst=3)
    shop, bench = {"X-API-Key": SHOP_KEY}, {"X-API-Key": BENCH_KEY}
    codes = [(await api.get("/recommendations/trending", headers=shop)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await api.get("/recommendations/trending", headers=shop)
    assert r.status_code == 429 and r.headers["retry-after"] == "2" and "'shop'" in r.json()["detail"]
    assert (await api.get("/recommendations/trending", headers=bench)).status_code == 200  # its own bucket
    assert (await api.get("/health")).status_code == 200
    text = (await api.get("/metrics", headers=bench)).text
    assert metric(text, 'recsys_rate_limited_total{key="shop"}') == 2
    api = await app_with(api_keys=[f"shop:{SHOP_KEY}", f"bench:{BENCH_KEY}"], rate_limit_per_second=0.001,
                         rate_limit_burst=3, rate_limits={"bench": (0, 1)})  # RECSYS_RATE_LIMITS: none for bench
    assert {(await api.get("/recommendations/trending", headers=bench)).status_code for _ in range(8)} == {200}
    assert (await api.get("/recommendations/trending", headers=shop)).status_code == 429  # its bucket is empty


async def test_a_batch_costs_one_token_per_event(app_with, catalog_engine):
    api = await app_with(api_keys=[f"shop:{SHOP_KEY}"], rate_limit_per_second=0.001, rate_limit_burst=10)
    shop = {"X-API-Key": SHOP_KEY}

    def batch(first: int, n: int) -> dict:
        return {"events": [{"user_id": 5, "product_id": pid("Shoes", 1), "timestamp": now_ms(), "event_type": "VIEW",
                            "event_id": f"rl-{first + k}"} for k in range(n)]}

    r = await api.post("/events/batch", json=batch(0, 11), headers=shop)  # more than the bucket ever holds
    assert r.status_code == 422 and r.json()["field"] == "events" and "at most 10 events" in r.json()["detail"]
    assert (await api.post("/events/batch", json=batch(0, 6), headers=shop)).status_code == 200
    r = await api.post("/events/batch", json=batch(6, 4), headers=shop)  # the 422 took 1, the batch 6: 3 left
    assert r.status_code == 429 and "retry-after" in r.headers
    assert (await api.post("/events/batch", json=batch(6, 2), headers=shop)).status_code == 200
    with catalog_engine.connect() as conn:
        assert [row.client_event_id for row in conn.execute(select(UserEvent).order_by(UserEvent.event_id))] == [
            f"rl-{k}" for k in range(8)]


def test_rate_limits_per_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_RATE_LIMITS", '{"bench": [1000, 2000]}')
    assert Settings().rate_limits == {"bench": (1000.0, 2000)}
    monkeypatch.setenv("RECSYS_RATE_LIMITS", '{"bench": [10, 0]}')
    with pytest.raises(ValidationError, match="rate_limits"):
        Settings()


async def test_rate_limit_fails_open_when_redis_is_down(app_with):
    api = await app_with(rate_limit_per_second=0.001, rate_limit_burst=1)
    state = api._transport.app.state
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    state.rate_limiter.redis = RedisStore(dead, CircuitBreaker("redis", 0))
    state.rate_limiter._script = dead.register_script("return {1, 0}")
    for _ in range(3):
        assert (await api.get("/recommendations/trending", headers=KEY_HEADERS)).status_code == 200
    assert metric((await api.get("/metrics", headers=KEY_HEADERS)).text, "recsys_rate_limit_unavailable_total") == 4
    await dead.aclose()


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(app_with):
    app = (await app_with())._transport.app
    sent, read = [], []

    async def receive():
        read.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/events/click", "raw_path": b"/events/click",
             "query_string": b"", "root_path": "", "scheme": "http", "server": ("api.test", 80),
             "client": ("1.2.3.4", 5), "http_version": "1.1", "asgi": {"version": "3.0"},
             "headers": [(b"content-length", b"70000"), (b"x-api-key", TEST_API_KEY.encode())]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 413 and read == []
    assert b"RECSYS_MAX_BODY_BYTES" in sent[1]["body"]


async def test_a_chunked_body_is_cut_off_at_the_limit(app_with, catalog_engine):
    api = await app_with(headers=KEY_HEADERS, max_body_bytes=4096)
    chunks = []

    async def body():
        yield b'{"user_id": 7, "product_id": %d, "timestamp": %d, "padding": "' % (pid("Shoes", 1), now_ms())
        for _ in range(1000):
            chunks.append(1)
            yield b"x" * 1024
        yield b'"}'

    r = await api.post("/events/click", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "4096 bytes" in r.json()["detail"] and r.json()["request_id"]
    assert len(chunks) <= 5  # stopped reading right after the limit
    with catalog_engine.connect() as conn:
        assert conn.execute(UserEvent.__table__.select()).first() is None  # nothing stored
    small = {"user_id": 7, "product_id": pid("Shoes", 1), "timestamp": now_ms()}
    assert (await api.post("/events/click", json=small)).status_code == 200


async def test_recommendations_answer_with_a_signed_request_id(app_with, catalog_engine):
    api = await app_with(headers=KEY_HEADERS)
    signer = RequestIdSigner(api._transport.app.state.serving.settings.request_id_secret)
    r = await api.get("/recommendations", params={"user_id": 5})
    assert signer.verify(r.json()["request_id"]) and r.headers["x-request-id"] == r.json()["request_id"]
    # a client's own trace id is not signed: the list gets a new signed id (the impression's)
    r = await api.get("/recommendations", params={"user_id": 5}, headers={"X-Request-ID": "trace-7"})
    assert signer.verify(r.json()["request_id"]) and r.headers["x-request-id"] == r.json()["request_id"]
    # an event posted with a client trace id and no request_id in its body is stored without one
    event = {"user_id": 5, "product_id": pid("Shoes", 1), "timestamp": now_ms()}
    r = await api.post("/events/click", json=event, headers={"X-Request-ID": "trace-8"})
    assert r.status_code == 200 and r.json()["request_id"] == "trace-8"
    with catalog_engine.connect() as conn:
        assert conn.execute(UserEvent.__table__.select()).one().request_id is None


def test_signer_refuses_forged_and_malformed_ids():
    signer, other = RequestIdSigner("secret-one-0123456789"), RequestIdSigner("secret-two-0123456789")
    rid = signer.new()
    assert len(rid) == 32 and signer.verify(rid) and not other.verify(rid)
    forged = rid[:16] + ("0" if rid[16] != "0" else "1") + rid[17:]
    assert not any(signer.verify(x) for x in (forged, rid.upper(), rid[:31], None, 5, "r1", "z" * 32))


def test_every_string_field_of_a_request_is_bounded():
    from fastapi.openapi.utils import get_openapi

    app = create_app(Settings(api_keys=[f"shop:{SHOP_KEY}"]))
    spec = get_openapi(title="t", version="1", routes=app.routes)
    unbounded = []

    def walk(schema, where):
        schema = resolve(schema)
        if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema \
                and "const" not in schema:
            unbounded.append(where)
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                walk(sub, f"{where}[{i}]")
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")

    def resolve(schema):
        ref = schema.get("$ref")
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema

    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                walk(param["schema"], f"{method} {path} {param['name']}")
            for media in op.get("requestBody", {}).get("content", {}).values():
                walk(media["schema"], f"{method} {path} body")
    assert unbounded == []


def test_openapi_documents_the_key_and_the_admin_credentials():
    spec = create_app(Settings(api_keys=[f"shop:{SHOP_KEY}"])).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": "the caller's key from RECSYS_API_KEYS"}
    assert schemes["AdminToken"]["scheme"] == "bearer" and schemes["AdminCookie"]["in"] == "cookie"
    recs = spec["paths"]["/recommendations"]["get"]
    assert recs["security"] == [{"ApiKey": []}] and {"401", "429"} <= set(recs["responses"])
    assert "security" not in spec["paths"]["/health"]["get"]
    assert {"AdminToken", "AdminCookie"} == {k for s in spec["paths"]["/ab-tests"]["get"]["security"] for k in s}
    click = set(spec["paths"]["/events/click"]["post"]["responses"])
    assert {"413", "422"} <= click and "400" not in click  # a body that is not UTF-8 is the documented 422


def test_serve_access_log_is_the_line_with_the_key_name(capsys):
    import logging.config

    from recsys.cli import serve_log_config

    assert serve_log_config(False)["loggers"]["recsys.api.middleware"]["level"] == "WARNING"
    logging.config.dictConfig(serve_log_config(True))
    try:
        logging.getLogger("recsys.api.middleware").info("GET /x 200 1.0ms key=shop request_id=r")
        assert "key=shop" in capsys.readouterr().err
    finally:
        logger = logging.getLogger("recsys.api.middleware")
        logger.handlers.clear()
        logger.propagate, logger.level = True, logging.NOTSET


def raw_request(base: str, target: bytes, request_id: str) -> int:
    """One request with the bytes of ``target`` as its path, as a client may send them; the answer's status."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: api\r\nX-Request-ID: " + request_id.encode()
                     + b"\r\nConnection: close\r\n\r\n")
        return int(conn.makefile("rb").readline().split()[1])


@pytest.mark.parametrize("target, logged", [
    (b"/health%0a127.0.0.1%20GET%20/admin%20200", "/health%0a127.0.0.1%20GET%20/admin%20200"),  # a forged line
    (b"/health%0d%0aX%00%1b[31m%7f", "/health%0d%0aX%00%1b%5B31m%7f"),
    (b"/health%e2%80%a8%c2%85", "/health%e2%80%a8%c2%85"),  # Unicode line and next-line separators
    (b"/health/%2e%2e;%25?q=%0a", "/health/%2e%2e;%25"),  # the path as sent, without its query
])
def test_the_access_log_escapes_the_path_a_line_per_request(api_settings, catalog_engine, caplog, target, logged):
    from asgi_client import ServerThread

    request_id = f"log-{target.hex()[-40:]}"
    with caplog.at_level(logging.INFO, logger="recsys.api.middleware"):
        with ServerThread(create_app(api_settings, refresh_in_background=False)) as base:
            assert raw_request(base, target, request_id) == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "recsys.api.middleware"]
    mine = [line for line in lines if request_id in line]
    assert len(mine) == 1 and mine[0].startswith(f"GET {logged} 404 ")
    assert all(" " <= c <= "~" for line in lines for c in line), lines  # printable ASCII only: one line each


def test_a_path_without_raw_bytes_is_escaped_all_the_same():
    from recsys.api.middleware import logged_path

    assert logged_path({"path": "/a\nGET /b 200\r\u2028\x1b"}) == "/a%0AGET%20/b%20200%0D%E2%80%A8%1B"
    assert logged_path({"path": "/decoded", "raw_path": b"/raw%0a?x=\n"}) == "/raw%0a"
